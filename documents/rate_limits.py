"""Request counters shared by every API process, one per key and time window."""

from datetime import datetime

from beanie import Document
from pymongo import ASCENDING, IndexModel


class RateCounter(Document):
    # `id` is the key and window, e.g. "login:alice@example.com|10.0.0.1:2959721".
    id: str  # type: ignore[assignment]
    hits: int
    expires_at: datetime

    class Settings:
        name = "rate_limits"
        indexes = [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)]
