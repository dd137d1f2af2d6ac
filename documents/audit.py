"""The audit log: security-relevant events, who caused them, and from where."""

from datetime import datetime
from typing import Any

from beanie import Document, PydanticObjectId
from pydantic import BaseModel, ConfigDict, Field
from pymongo import ASCENDING, DESCENDING, IndexModel

from documents.users import utc_now


class AuditEntry(Document):
    at: datetime = Field(default_factory=utc_now)
    action: str  # e.g. "login.failed", "collection.update"
    actor: str | None = None  # a user or API key id; None when anonymous
    target: str | None = None
    address: str | None = None
    detail: dict[str, Any] = {}
    # Retention: MongoDB deletes the entry once this moment has passed.
    expires_at: datetime

    class Settings:
        name = "audit"
        indexes = [
            IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0),
            IndexModel([("action", ASCENDING), ("at", DESCENDING)]),
        ]


class AuditPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: PydanticObjectId
    at: datetime
    action: str
    actor: str | None
    target: str | None
    address: str | None
    detail: dict[str, Any]
