"""User administration: list, read, change roles or disable, and delete accounts (admins only)."""

from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel

from api import audit, sessions
from api.cursors import CursorError, decode_cursor, encode_cursor, query_fingerprint
from api.deps import AdminUser, ClientAddress, Principal, SettingsDep, TargetUser
from api.problems import Problem
from documents.users import ADMIN_ROLE, User, UserAdminUpdate, UserPublic

router = APIRouter(prefix="/users", tags=["users"])
USERS_QUERY = query_fingerprint("users", "_id")


class UserList(BaseModel):
    items: list[UserPublic]
    next_cursor: str | None


@router.get("")
async def list_users(
    _: AdminUser,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
) -> UserList:
    """List accounts, oldest first, a page at a time."""
    query: dict = {}
    if cursor:
        try:
            (after,) = decode_cursor(cursor, USERS_QUERY, settings.signing_key())
        except (CursorError, ValueError) as error:
            raise Problem(400, "Invalid cursor") from error
        query = {"_id": {"$gt": after}}
    users = await User.find(query).sort("+_id").limit(limit + 1).to_list()
    page, more = users[:limit], len(users) > limit
    next_cursor = (
        encode_cursor([page[-1].id], USERS_QUERY, settings.signing_key()) if more else None
    )
    return UserList(items=[UserPublic.of(user) for user in page], next_cursor=next_cursor)


@router.get("/{user_id}")
async def read_user(user: TargetUser) -> UserPublic:
    """One account."""
    return UserPublic.of(user)


def _refuse_self_lockout(admin: Principal, target: User, changes: dict) -> None:
    if admin.id != str(target.id):
        return
    if changes.get("disabled") or ("roles" in changes and ADMIN_ROLE not in changes["roles"]):
        raise Problem(409, "Administrators cannot disable themselves or drop their own admin role")


@router.patch("/{user_id}")
async def update_user(
    body: UserAdminUpdate, user: TargetUser, admin: AdminUser, address: ClientAddress
) -> UserPublic:
    """Change an account's name, roles or disabled flag; it applies to its tokens at once."""
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "roles" in changes:
        changes["roles"] = list(dict.fromkeys(changes["roles"]))
    _refuse_self_lockout(admin, user, changes)
    if changes:
        await user.set(changes)
    if changes.get("disabled"):
        assert user.id is not None
        await sessions.revoke_user_sessions(user.id)
    if changes:
        await audit.record(
            "user.update", actor=admin.id, target=str(user.id), address=address, detail=changes
        )
    return UserPublic.of(user)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(user: TargetUser, admin: AdminUser, address: ClientAddress) -> None:
    """Delete an account and end all its sessions."""
    if admin.id == str(user.id):
        raise Problem(409, "Administrators cannot delete themselves")
    assert user.id is not None
    await sessions.revoke_user_sessions(user.id)
    await user.delete()
    await audit.record(
        "user.delete",
        actor=admin.id,
        target=str(user.id),
        address=address,
        detail={"email": user.email},
    )
