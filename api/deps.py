"""Dependencies the routes declare: settings, the authenticated caller, and the guards on them."""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import jwt
from beanie import PydanticObjectId
from bson import ObjectId
from bson.errors import InvalidId
from fastapi import Depends, Request

from api import security
from api.catalog import Collection, load_collection
from api.problems import Problem, not_found, unauthorized
from api.rate_limits import Limit, hit
from api.sessions import live_session
from api.settings import Settings
from documents.api_keys import ApiKey
from documents.users import ADMIN_ROLE, User

COLLECTION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# Where a request's scope keeps its caller once worked out.
CALLER_KEY = "cabinet.caller"


def settings_of(request: Request) -> Settings:
    """The app's settings, for the dependencies on every request's path: each dependency in the
    graph costs FastAPI work on every request, so they take the request rather than SettingsDep."""
    settings: Settings = request.app.state.settings
    return settings


# Dependencies are `async def` even without I/O: FastAPI runs a plain `def` dependency in a
# worker thread, a hand-off that costs far more than the work itself on every request.
async def get_settings(request: Request) -> Settings:
    return settings_of(request)


SettingsDep = Annotated[Settings, Depends(get_settings)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _client_address(request: Request) -> str:
    return client_address(request)


ClientAddress = Annotated[str, Depends(_client_address)]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a signed-in user's session, or an API key.

    `id` is what the caller's writes record as `_owner` and what the `owner` grant matches.
    """

    id: str
    roles: tuple[str, ...]
    session_id: ObjectId | None = None
    api_key: ApiKey | None = None

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles


def parse_object_id(value: str) -> PydanticObjectId | None:
    try:
        return PydanticObjectId(value)
    except (InvalidId, TypeError, ValueError):
        return None


async def _key_principal(key: str, address: str, settings: Settings) -> Principal:
    # Guessing keys costs a lookup each; past the sign-in rate of misses an address gets 429
    # before any lookup (a zero-cost hit only checks the budget).
    misses = f"api-key-misses:{address}"
    limit = Limit(*settings.login_limit)
    await hit(misses, limit, cost=0)
    api_key = await ApiKey.find_one(ApiKey.key_hash == security.hash_token(key))
    # Revoked keys are deleted; expiry is checked here as TTL clean-up is not immediate.
    expires = api_key.expires_at if api_key is not None else None
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)  # stored dates are UTC, however they are read
    if api_key is None or (expires is not None and expires <= datetime.now(UTC)):
        await hit(misses, limit)
        raise unauthorized("Invalid or expired API key")
    return Principal(id=str(api_key.id), roles=tuple(api_key.roles), api_key=api_key)


# The dependencies that call `caller`: the OpenAPI document lists the sign-in schemes on every
# route whose graph holds one (api/openapi_security.py).
IDENTIFYING: set[Callable[..., Any]] = set()
Dependency = TypeVar("Dependency", bound=Callable[..., Any])


def identifying(dependency: Dependency) -> Dependency:
    IDENTIFYING.add(dependency)
    return dependency


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer …` header, as OAuth2PasswordBearer reads it."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials if scheme.lower() == "bearer" and credentials else None


@identifying
async def caller(request: Request) -> Principal | None:
    """Who is calling, from the bearer token or the API key; None if the request has neither.

    The first time a request asks, its caller is worked out and the request is counted against
    their shared budget (429 once it is spent), or the client address's when anonymous. Every
    route but sign-in and health asks before it reads anything of its own. The answer is kept
    in the request's scope: the guards and routes call this rather than declaring it, because
    each dependency in a route's graph costs FastAPI bookkeeping on every request.
    """
    scope = request.scope
    if CALLER_KEY not in scope:
        identified = await identify(request)
        settings = settings_of(request)
        key = _budget_key(identified, client_address(request))
        await hit(key, Limit(*settings.request_limit))
        scope[CALLER_KEY] = identified
    principal: Principal | None = scope[CALLER_KEY]
    return principal


async def identify(request: Request) -> Principal | None:
    """The caller, worked out afresh and not counted: for what sits outside the API's budget."""
    settings = settings_of(request)
    token = bearer_token(request)
    if token is None:
        api_key = request.headers.get("x-api-key")
        return await _key_principal(api_key, client_address(request), settings) if api_key else None
    try:
        claims = security.decode_access_token(
            token, key=settings.signing_key(), issuer=settings.issuer, audience=settings.audience
        )
    except jwt.InvalidTokenError as error:
        raise unauthorized("Invalid or expired access token") from error
    # Checked on every request so that an ended session, a changed role, or a disabled or
    # deleted user (both end every session) take effect now rather than when the token expires:
    # at once in the process that made the change, in the others when its change event arrives.
    session = await live_session(claims.session_id, claims.user_id, request.app.state.sessions)
    if session is None:
        raise unauthorized("Invalid or expired access token")
    return Principal(
        id=session["user_id"],  # the user's id as text, as the session holds it
        roles=tuple(session.get("roles", ())),
        session_id=claims.session_id,
    )


OptionalPrincipal = Annotated[Principal | None, Depends(caller)]


async def current_principal(principal: OptionalPrincipal) -> Principal:
    if principal is None:
        raise unauthorized("Authentication required")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def current_user(principal: CurrentPrincipal) -> User:
    """The signed-in user's account, for the routes about it (API keys have none)."""
    if principal.session_id is None:
        raise Problem(403, "This route is for signed-in users, not API keys")
    user = await User.get(PydanticObjectId(principal.id))
    if user is None or user.disabled:
        raise unauthorized("Invalid or expired access token")
    return user


CurrentUser = Annotated[User, Depends(current_user)]


async def admin_principal(principal: CurrentPrincipal) -> Principal:
    if not principal.is_admin:
        raise Problem(403, "Administrator role required")
    return principal


AdminUser = Annotated[Principal, Depends(admin_principal)]


async def target_user(user_id: str, _: AdminUser) -> User:
    """The user named in the path; a malformed id is answered like a missing one."""
    parsed = parse_object_id(user_id)
    user = await User.get(parsed) if parsed is not None else None
    if user is None:
        raise not_found("User not found")
    return user


TargetUser = Annotated[User, Depends(target_user)]


@identifying
async def collection_by_name(name: str, request: Request) -> Collection:
    """The collection named in the path, with its current definition; 404 if there is none.

    The caller is known first, so that even asking for a missing collection is counted.
    """
    await caller(request)
    cache = request.app.state.definitions
    collection = await load_collection(name, cache) if COLLECTION_NAME.match(name) else None
    if collection is None:
        raise not_found(f"No collection named '{name}'")
    return collection


CollectionDep = Annotated[Collection, Depends(collection_by_name)]


def _budget_key(principal: Principal | None, address: str) -> str:
    return f"caller:{principal.id}" if principal is not None else f"address:{address}"


async def charge(principal: Principal | None, address: str, settings: Settings, cost: int) -> None:
    """Counts `cost` more requests, for work that is many operations in one request."""
    if cost > 0:
        await hit(_budget_key(principal, address), Limit(*settings.request_limit), cost)
