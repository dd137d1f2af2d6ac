"""Login sessions: one per sign-in, holding the hash of its current refresh token."""

from datetime import datetime
from typing import Annotated

from beanie import Document, Indexed
from pydantic import BaseModel, Field
from pymongo import ASCENDING, IndexModel

from documents.users import Strict, utc_now


class Session(Document):
    """A refresh-token family (RFC 9700 §4.14.2).

    Each refresh rotates `token_hash`; the spent hashes stay in `spent_hashes` so that a replay of
    one is recognised as theft and revokes the whole session.
    """

    # References to other documents are kept as the id strings the API speaks, as `_owner` is.
    user_id: Annotated[str, Indexed()]
    token_hash: Annotated[str, Indexed(unique=True)]
    spent_hashes: list[str] = []
    # The user's roles, kept here so that one read authenticates a request; every change of a
    # user's roles is written to their sessions too (api/sessions.py, set_session_roles).
    roles: list[str] = []
    revoked: bool = False
    created: datetime = Field(default_factory=utc_now)
    expires_at: datetime

    class Settings:
        name = "sessions"
        indexes = [
            IndexModel([("spent_hashes", ASCENDING)]),
            # MongoDB deletes a session once its refresh lifetime is over.
            IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0),
        ]


class RefreshRequest(Strict):
    refresh_token: Annotated[str, Field(min_length=1, max_length=256)]


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int
