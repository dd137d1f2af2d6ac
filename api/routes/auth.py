"""Sign-up, sign-in, token refresh and sign-out, and the signed-in user's own account."""

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import ValidationError
from pymongo.errors import DuplicateKeyError

from api import audit, passwords, sessions
from api.deps import ClientAddress, CurrentPrincipal, CurrentUser, SettingsDep
from api.problems import Problem, problem_responses, unauthorized
from api.rate_limits import Limit, hit
from api.routes.common import SIGN_IN, V1
from api.settings import Settings
from documents.sessions import RefreshRequest, TokenPair
from documents.users import (
    Credentials,
    PasswordChange,
    User,
    UserPublic,
    UserRegister,
    UserSelfUpdate,
)

router = APIRouter(prefix=f"{V1}/auth", tags=["auth"], responses=SIGN_IN)
INVALID_LOGIN = "Incorrect email or password"
# One address may try several accounts, but not without bound.
ADDRESS_FACTOR = 5


class Registered(TokenPair):
    user: UserPublic


def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


def _address_limit(settings: Settings) -> Limit:
    requests, window = settings.login_limit
    return Limit(requests * ADDRESS_FACTOR, window)


async def _sign_in(email: str, password: str, address: str, settings: Settings) -> TokenPair:
    requests, window = settings.login_limit
    await hit(f"login-address:{address}", _address_limit(settings))
    await hit(f"login:{email}|{address}", Limit(requests, window))
    user = await User.find_one(User.email == email)
    valid = await passwords.verify_password(user.password_hash if user else None, password)
    if user is None or not valid or user.disabled:
        actor = str(user.id) if user is not None else None
        await audit.record("login.failed", actor=actor, address=address, detail={"email": email})
        raise unauthorized(INVALID_LOGIN)
    if passwords.needs_rehash(user.password_hash):
        rehashed = await passwords.hash_password(password)
        # Only over the hash just checked: a password changed meanwhile must not be undone.
        changed = await User.get_pymongo_collection().update_one(
            {"_id": user.id, "password_hash": user.password_hash},
            {"$set": {"password_hash": rehashed}},
        )
        if changed.modified_count:
            user.password_hash = rehashed
    await audit.record("login.ok", actor=str(user.id), address=address)
    return await sessions.start_session(user, settings)


@router.post("/register", status_code=status.HTTP_201_CREATED, responses=problem_responses(409))
async def register(
    body: UserRegister, response: Response, settings: SettingsDep, address: ClientAddress
) -> Registered:
    """Create an account and sign in."""
    if settings.signup == "closed":
        raise Problem(403, "Sign-up is closed")
    await hit(f"register:{address}", _address_limit(settings))
    user = User(
        email=body.email, name=body.name, password_hash=await passwords.hash_password(body.password)
    )
    try:
        await user.insert()
    except DuplicateKeyError as error:
        raise Problem(409, "An account with this email already exists") from error
    tokens = await sessions.start_session(user, settings)
    _no_store(response)
    return Registered(user=UserPublic.model_validate(user), **tokens.model_dump())


@router.post("/login")
async def login(
    body: Credentials, response: Response, settings: SettingsDep, address: ClientAddress
) -> TokenPair:
    """Sign in with email and password."""
    tokens = await _sign_in(body.email, body.password, address, settings)
    _no_store(response)
    return tokens


@router.post("/token")
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    response: Response,
    settings: SettingsDep,
    address: ClientAddress,
) -> TokenPair:
    """Sign in with the OAuth2 password form (used by the docs page's Authorize button)."""
    try:
        credentials = Credentials(email=form.username, password=form.password)
    except ValidationError as error:
        raise unauthorized(INVALID_LOGIN) from error
    tokens = await _sign_in(credentials.email, credentials.password, address, settings)
    _no_store(response)
    return tokens


@router.post("/refresh")
async def refresh(
    body: RefreshRequest, response: Response, settings: SettingsDep, address: ClientAddress
) -> TokenPair:
    """Exchange a refresh token for a new pair; the old refresh token stops working."""
    await hit(f"refresh:{address}", _address_limit(settings))
    tokens = await sessions.rotate_session(body.refresh_token, settings, address)
    _no_store(response)
    return tokens


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(body: RefreshRequest) -> None:
    """End the session a refresh token belongs to."""
    await sessions.end_session(body.refresh_token)


@router.get("/me")
async def read_me(user: CurrentUser) -> UserPublic:
    """The signed-in user's account."""
    return UserPublic.model_validate(user)


@router.patch("/me")
async def update_me(body: UserSelfUpdate, user: CurrentUser) -> UserPublic:
    """Change the signed-in user's own profile (never their roles or disabled flag)."""
    changes = body.model_dump(exclude_unset=True)
    if changes:
        await user.set(changes)
    return UserPublic.model_validate(user)


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(
    body: PasswordChange,
    principal: CurrentPrincipal,
    user: CurrentUser,
    settings: SettingsDep,
    address: ClientAddress,
) -> None:
    """Change the password and end every other session of this user."""
    requests, window = settings.login_limit
    await hit(f"password:{user.id}", Limit(requests, window))
    if not await passwords.verify_password(user.password_hash, body.current_password):
        raise Problem(403, "The current password is not correct")
    await user.set({User.password_hash: await passwords.hash_password(body.new_password)})
    assert user.id is not None
    await sessions.revoke_user_sessions(user.id, except_session=principal.session_id)
    await audit.record("password.change", actor=principal.id, target=principal.id, address=address)
