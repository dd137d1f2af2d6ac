"""First-start work done once, before the API serves: the admin account."""

import secrets
from dataclasses import dataclass

from pymongo.errors import DuplicateKeyError

from api import passwords
from api.sessions import set_session_roles
from api.settings import Settings
from documents.users import ADMIN_ROLE, User

DEVELOPMENT_ADMIN_EMAIL = "admin@example.com"
CREDENTIALS_FILE = "admin-credentials.txt"


@dataclass(frozen=True, slots=True)
class AdminAccount:
    email: str
    password: str | None  # None when the account already existed: its password is kept
    created: bool


async def ensure_admin(email: str, password: str) -> AdminAccount:
    """Makes `email` an admin, creating the account if absent; never overwrites a password."""
    email = email.lower()
    existing = await User.find_one(User.email == email)
    if existing is None:
        user = User(
            email=email,
            name="Administrator",
            password_hash=await passwords.hash_password(password),
            roles=[ADMIN_ROLE],
        )
        try:
            await user.insert()
            return AdminAccount(email, password, created=True)
        except DuplicateKeyError:  # another process created it first
            existing = await User.find_one(User.email == email)
    if existing is not None and ADMIN_ROLE not in existing.roles:
        roles = [*existing.roles, ADMIN_ROLE]
        await existing.set({User.roles: roles})
        assert existing.id is not None
        await set_session_roles(existing.id, roles)
    return AdminAccount(email, None, created=False)


async def ensure_first_admin(settings: Settings) -> AdminAccount | None:
    """The configured admin, or in development a generated one when no admin exists yet."""
    if settings.admin_email and settings.admin_password:
        return await ensure_admin(settings.admin_email, settings.admin_password)
    if settings.env != "development":
        return None
    if await User.find_one({"roles": ADMIN_ROLE}) is not None:
        return None
    account = await ensure_admin(DEVELOPMENT_ADMIN_EMAIL, secrets.token_urlsafe(12))
    if account.created and account.password:
        path = settings.data_dir / CREDENTIALS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(f"email: {account.email}\npassword: {account.password}\n")
    return account
