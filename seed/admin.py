"""`seed admin`: create an admin account, or reset one (a forgotten password, a lost role)."""

import secrets
from dataclasses import dataclass

from api import passwords
from api.bootstrap import ensure_admin
from api.sessions import revoke_user_sessions
from documents.users import ADMIN_ROLE, User


@dataclass(frozen=True)
class AdminReset:
    email: str
    password: str
    created: bool
    generated: bool  # the password was made up here, so it must be shown


def new_password() -> str:
    return secrets.token_urlsafe(12)


async def create_or_reset_admin(email: str, password: str | None = None) -> AdminReset:
    """Creates the admin, or gives an existing account this password and the admin role.

    A reset also re-enables the account and ends its sessions, as a password change does.
    """
    email = email.lower()
    chosen = password or new_password()
    account = await ensure_admin(email, chosen)
    if account.created:
        return AdminReset(email, chosen, created=True, generated=password is None)
    user = await User.find_one(User.email == email)
    assert user is not None and user.id is not None  # ensure_admin found or made it
    await user.set(
        {
            User.password_hash: await passwords.hash_password(chosen),
            User.roles: sorted({*user.roles, ADMIN_ROLE}),
            User.disabled: False,
        }
    )
    await revoke_user_sessions(user.id)
    return AdminReset(email, chosen, created=False, generated=password is None)
