"""Fixed-window rate limits kept in MongoDB, so every API process counts against the same limit.

A process adds its requests to the shared counter in batches while the caller is far from the
limit (under half of it, and at least once a second), and on every request once near it: far
from the limit a request costs no database round trip, near it the count is exact. Small limits
(sign-in, sign-up, token refresh: tens a minute) are counted exactly from the first request, as
each of N processes holding back half of one would let N/2 times it through.
"""

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo import ReturnDocument

from documents.rate_limits import RateCounter

# How long a process may hold counts back from the shared counter.
FLUSH_SECONDS = 1.0
# Limits of at most this many requests a window are never held back.
EXACT_UP_TO = 100
# Past this many keys, the entries of finished windows are forgotten.
MAX_LOCAL_KEYS = 10_000


@dataclass(frozen=True, slots=True)
class Limit:
    requests: int
    window: int  # seconds


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__("rate limited")
        self.retry_after = retry_after


@dataclass(slots=True)
class _Tally:
    """One key's window as this process sees it: the shared count when last read, plus its own
    requests not yet added to it."""

    window: int
    shared: int = 0
    held: int = 0
    flushed_at: float = 0.0


_tallies: dict[tuple[str, int], _Tally] = {}


async def hit(key: str, limit: Limit, cost: int = 1) -> None:
    """Counts `cost` requests against `key`; RateLimited once the window's budget is spent."""
    now = time.time()
    window = int(now // limit.window)
    tally = _tallies.get((key, limit.window))
    if tally is None or tally.window != window:
        _forget_finished_windows(now)
        tally = _tallies[(key, limit.window)] = _Tally(window, flushed_at=now)
    if (
        limit.requests > EXACT_UP_TO
        and 2 * (tally.shared + tally.held + cost) <= limit.requests
        and now - tally.flushed_at < FLUSH_SECONDS
    ):
        tally.held += cost
        return
    window_end = (window + 1) * limit.window
    counter = await RateCounter.get_pymongo_collection().find_one_and_update(
        {"_id": f"{key}:{window}"},
        {
            "$inc": {"hits": tally.held + cost},
            "$setOnInsert": {"expires_at": datetime.fromtimestamp(window_end, UTC)},
        },
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    tally.shared = counter["hits"] if counter is not None else tally.held + cost
    tally.held, tally.flushed_at = 0, now
    if tally.shared > limit.requests:
        raise RateLimited(retry_after=max(1, math.ceil(window_end - now)))


def _forget_finished_windows(now: float) -> None:
    if len(_tallies) < MAX_LOCAL_KEYS:
        return
    for (key, seconds), tally in list(_tallies.items()):
        if tally.window != int(now // seconds):
            del _tallies[(key, seconds)]
