"""User administration: list, read, change roles or disable, and delete accounts (admins only)."""

from fastapi import APIRouter, status
from pydantic import BaseModel

from api import audit, sessions
from api.deps import AdminUser, ClientAddress, Principal, SettingsDep, TargetUser
from api.id_pages import PageCursor, PageLimit, id_page
from api.problems import Problem
from api.routes.common import METERED, V1
from documents.users import ADMIN_ROLE, User, UserAdminUpdate, UserPublic

router = APIRouter(prefix=f"{V1}/users", tags=["users"], responses=METERED)


class UserList(BaseModel):
    items: list[UserPublic]
    next_cursor: str | None


@router.get("")
async def list_users(
    _: AdminUser, settings: SettingsDep, limit: PageLimit = 50, cursor: PageCursor = None
) -> UserList:
    """List accounts, oldest first, a page at a time."""
    page, next_cursor = await id_page(
        User, {}, limit=limit, cursor=cursor, key=settings.signing_key()
    )
    return UserList(
        items=[UserPublic.model_validate(user) for user in page], next_cursor=next_cursor
    )


@router.get("/{user_id}")
async def read_user(user: TargetUser) -> UserPublic:
    """One account."""
    return UserPublic.model_validate(user)


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
    assert user.id is not None
    if changes.get("disabled"):
        await sessions.revoke_user_sessions(user.id)
    if "roles" in changes:
        await sessions.set_session_roles(user.id, changes["roles"])
    if changes:
        await audit.record(
            "user.update", actor=admin.id, target=str(user.id), address=address, detail=changes
        )
    return UserPublic.model_validate(user)


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
