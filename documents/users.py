"""User accounts: the stored document and the models the API reads and returns."""

from datetime import UTC, datetime
from typing import Annotated

from beanie import Document, Indexed, PydanticObjectId
from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, field_validator

Role = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
Password = Annotated[str, Field(min_length=8, max_length=256)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
ADMIN_ROLE = "admin"


def to_milliseconds(moment: datetime) -> datetime:
    """`moment` as MongoDB keeps it: to the millisecond."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def utc_now() -> datetime:
    # Truncated here, what we return equals what we store.
    return to_milliseconds(datetime.now(UTC))


class User(Document):
    email: Annotated[str, Indexed(unique=True)]
    name: str | None = None
    password_hash: str
    roles: list[str] = []
    disabled: bool = False
    created: datetime = Field(default_factory=utc_now)

    class Settings:
        name = "users"

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles


class Strict(BaseModel):
    """A request body: unknown keys are refused, so nobody can slip in `roles` or `disabled`."""

    model_config = ConfigDict(extra="forbid", strict=True, str_max_length=1024)


class Credentials(Strict):
    email: EmailStr
    password: Password

    @field_validator("email")
    @classmethod
    def lower_case(cls, email: str) -> str:
        return email.lower()


class UserRegister(Credentials):
    name: Name | None = None


class UserSelfUpdate(Strict):
    name: Name | None = None


class UserAdminUpdate(Strict):
    name: Name | None = None
    roles: Annotated[list[Role], Field(max_length=32)] | None = None
    disabled: bool | None = None


class PasswordChange(Strict):
    current_password: Annotated[str, Field(max_length=256)]
    new_password: Password


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: PydanticObjectId
    email: str
    name: str | None
    roles: list[str]
    disabled: bool
    created: datetime
