"""Fixed-window rate limits kept in MongoDB, so every API process counts against the same limit."""

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo import ReturnDocument

from documents.rate_limits import RateCounter


@dataclass(frozen=True, slots=True)
class Limit:
    requests: int
    window: int  # seconds


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__("rate limited")
        self.retry_after = retry_after


async def hit(key: str, limit: Limit, cost: int = 1) -> None:
    """Counts `cost` requests against `key`; RateLimited once the window's budget is spent."""
    now = time.time()
    window = int(now // limit.window)
    window_end = (window + 1) * limit.window
    counter = await RateCounter.get_pymongo_collection().find_one_and_update(
        {"_id": f"{key}:{window}"},
        {
            "$inc": {"hits": cost},
            "$setOnInsert": {"expires_at": datetime.fromtimestamp(window_end, UTC)},
        },
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    if counter is not None and counter["hits"] > limit.requests:
        raise RateLimited(retry_after=max(1, math.ceil(window_end - now)))
