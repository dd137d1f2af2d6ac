"""The Beanie documents of the system collections: the one list the app, seed and tests use."""

from beanie import Document

from documents.api_keys import ApiKey
from documents.audit import AuditEntry
from documents.collections import CollectionDef
from documents.rate_limits import RateCounter
from documents.sessions import Session
from documents.users import User

MODELS: list[type[Document]] = [User, Session, RateCounter, CollectionDef, ApiKey, AuditEntry]

__all__ = ["MODELS", "ApiKey", "AuditEntry", "CollectionDef", "RateCounter", "Session", "User"]
