"""Sign-in sessions: issuing token pairs, rotating refresh tokens, and revoking sessions."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from beanie import PydanticObjectId
from bson import ObjectId
from pymongo import ReadPreference, ReturnDocument

from api import audit, security
from api.inserts import insert_document
from api.problems import unauthorized
from api.settings import Settings
from api.watched_cache import Forgetting, WatchedCache
from documents.sessions import Session, TokenPair
from documents.users import User, utc_now

INVALID_REFRESH = "Invalid or expired refresh token"


def _token_pair(user_id: str, session_id: str, refresh_token: str, settings: Settings) -> TokenPair:
    access_token = security.create_access_token(
        user_id=user_id,
        session_id=session_id,
        key=settings.signing_key(),
        issuer=settings.issuer,
        audience=settings.audience,
        ttl=settings.access_token_ttl,
    )
    return TokenPair(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_in=settings.access_token_ttl,
    )


async def start_session(user: User, settings: Settings) -> TokenPair:
    assert user.id is not None
    refresh_token = security.new_refresh_token()
    session = Session(
        user_id=str(user.id),
        token_hash=security.hash_token(refresh_token),
        roles=user.roles,
        expires_at=utc_now() + timedelta(seconds=settings.refresh_token_ttl),
    )
    await insert_document(session)
    # An admin's change, or a password change, made while this sign-in was checking the
    # password reached only the sessions that existed then; now that this one exists, read the
    # user again.
    current = await User.get(user.id)
    if current is None or current.disabled:
        await revoke_user_sessions(user.id)
        raise unauthorized("Incorrect email or password")
    if current.password_hash != user.password_hash:
        # The password that was checked is no longer the account's: the change ended every
        # other session, and this one may not outlive it.
        await _revoke(session.id)
        raise unauthorized("Incorrect email or password")
    if current.roles != user.roles:
        await set_session_roles(user.id, current.roles)
    return _token_pair(str(user.id), str(session.id), refresh_token, settings)


def _is_live(session: dict) -> bool:
    expires_at = session["expires_at"]
    # The TTL monitor runs about once a minute, so expiry is checked here too.
    return not session.get("revoked") and (
        isinstance(expires_at, datetime) and expires_at > datetime.now(UTC)
    )


async def rotate_session(refresh_token: str, settings: Settings, address: str) -> TokenPair:
    """Swaps a refresh token for a new pair; a replayed, spent token revokes its whole session."""
    presented = security.hash_token(refresh_token)
    new_token = security.new_refresh_token()
    sessions = Session.get_pymongo_collection()
    # The condition on the current hash makes rotation atomic: of two concurrent uses of one
    # token, only one can win; the other then finds it spent and is treated as a replay.
    rotated = await sessions.find_one_and_update(
        {"token_hash": presented, "revoked": False, "expires_at": {"$gt": datetime.now(UTC)}},
        {
            "$set": {"token_hash": security.hash_token(new_token)},
            "$push": {"spent_hashes": presented},
        },
        return_document=ReturnDocument.AFTER,
    )
    if rotated is not None and _is_live(rotated):
        user = await User.get(PydanticObjectId(rotated["user_id"]))
        if user is None or user.disabled:
            raise unauthorized(INVALID_REFRESH)
        if rotated.get("roles") != user.roles:  # kept in step, whatever changed them
            await set_session_roles(PydanticObjectId(rotated["user_id"]), user.roles)
        return _token_pair(str(user.id), str(rotated["_id"]), new_token, settings)
    with _sessions_written() as written:
        replayed = await sessions.find_one_and_update(
            {"spent_hashes": presented}, {"$set": {"revoked": True}}, {"user_id": 1}
        )
        if replayed is not None:
            written.only(_with_id(replayed["_id"]))
    if replayed is not None:
        await audit.record(
            "refresh.reuse", actor=replayed["user_id"], target=str(replayed["_id"]), address=address
        )
    raise unauthorized(INVALID_REFRESH)


async def end_session(refresh_token: str) -> None:
    presented = security.hash_token(refresh_token)
    with _sessions_written() as written:
        ended = await Session.get_pymongo_collection().find_one_and_update(
            {"$or": [{"token_hash": presented}, {"spent_hashes": presented}]},
            {"$set": {"revoked": True}},
            {"_id": 1},
        )
        if ended is not None:
            written.only(_with_id(ended["_id"]))


async def _revoke(session_id: object) -> None:
    with _sessions_written() as written:
        written.only(_with_id(session_id))
        await Session.get_pymongo_collection().update_one(
            {"_id": session_id}, {"$set": {"revoked": True}}
        )


async def revoke_user_sessions(
    user_id: PydanticObjectId, *, except_session: ObjectId | None = None
) -> None:
    query: dict = {"user_id": str(user_id)}
    if except_session is not None:
        query["_id"] = {"$ne": except_session}
    with _sessions_written() as written:
        written.only(_of_user(user_id))
        await Session.get_pymongo_collection().update_many(query, {"$set": {"revoked": True}})


async def live_session(
    session_id: ObjectId, user_id: ObjectId, cache: WatchedCache | None = None
) -> dict | None:
    """The session, if it is still live: not ended, revoked, or past its lifetime.

    From `cache` while its change stream vouches for it; the returned mapping is shared.
    """
    session = cache.get(session_id) if cache is not None else None
    if session is None:
        generation = cache.generation if cache is not None else 0
        # From the primary: a lagging secondary read after a change's event could be kept.
        sessions = Session.get_pymongo_collection().with_options(
            read_preference=ReadPreference.PRIMARY
        )
        session = await sessions.find_one(
            {"_id": session_id}, {"user_id": 1, "revoked": 1, "expires_at": 1, "roles": 1}
        )
        if session is None:
            return None
        if cache is not None:
            cache.put(session_id, session_id, session, generation)
    return session if session["user_id"] == str(user_id) and _is_live(session) else None


async def set_session_roles(user_id: PydanticObjectId, roles: list[str]) -> None:
    """Gives a user's sessions their new roles: a grant or removal applies to the next request."""
    with _sessions_written() as written:
        written.only(_of_user(user_id))
        await Session.get_pymongo_collection().update_many(
            {"user_id": str(user_id)}, {"$set": {"roles": roles}}
        )


def _sessions_written() -> Forgetting:
    """Around a write to sessions: this process's next request reads the changed ones afresh."""
    return Forgetting(Session.get_pymongo_collection().name)


def _with_id(session_id: object) -> Callable[[dict], bool]:
    return lambda session: bool(session["_id"] == session_id)


def _of_user(user_id: PydanticObjectId) -> Callable[[dict], bool]:
    return lambda session: bool(session["user_id"] == str(user_id))
