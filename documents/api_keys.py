"""API keys for servers and import jobs: stored only as hashes, shown once at creation."""

from datetime import datetime
from typing import Annotated

from beanie import Document, Indexed, PydanticObjectId
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from documents.users import Role, Strict, utc_now

KeyName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class ApiKey(Document):
    name: str
    roles: list[str] = []
    key_hash: Annotated[str, Indexed(unique=True)]
    created: datetime = Field(default_factory=utc_now)
    expires_at: datetime | None = None

    class Settings:
        name = "api_keys"


class ApiKeyCreate(Strict):
    name: KeyName
    roles: Annotated[list[Role], Field(max_length=32)] = []
    # JSON has no date type, so this one field is parsed from its ISO 8601 text.
    expires_at: Annotated[AwareDatetime, Field(strict=False)] | None = None


class ApiKeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: PydanticObjectId
    name: str
    roles: list[str]
    created: datetime
    expires_at: datetime | None


class ApiKeyIssued(ApiKeyPublic):
    key: str  # the secret itself, in this one response only
