"""The Beanie documents of the system collections: the one list the app, seed and tests use."""

from beanie import Document

from documents.collections import CollectionDef
from documents.rate_limits import RateCounter
from documents.sessions import Session
from documents.users import User

MODELS: list[type[Document]] = [User, Session, RateCounter, CollectionDef]

__all__ = ["MODELS", "CollectionDef", "RateCounter", "Session", "User"]
