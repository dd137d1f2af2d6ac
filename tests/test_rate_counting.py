"""The shared rate counter: batched far from the limit, exact near it."""

import uuid

import pytest
from fastapi import FastAPI

from api.rate_limits import Limit, RateLimited, hit
from documents.rate_limits import RateCounter

HOUR = Limit(requests=100, window=3600)


async def _shared_count(key: str) -> int:
    counters = RateCounter.get_pymongo_collection().find({"_id": {"$regex": f"^{key}:"}})
    return sum([counter["hits"] async for counter in counters])


async def test_requests_far_from_the_limit_are_counted_in_batches(app: FastAPI) -> None:
    key = f"test:{uuid.uuid4().hex}"
    for _ in range(10):
        await hit(key, HOUR)
    assert await _shared_count(key) < 10


async def test_requests_near_the_limit_are_counted_exactly(app: FastAPI) -> None:
    key = f"test:{uuid.uuid4().hex}"
    for _ in range(60):
        await hit(key, HOUR)
    assert await _shared_count(key) == 60
    for _ in range(40):
        await hit(key, HOUR)
    with pytest.raises(RateLimited) as refused:
        await hit(key, HOUR)
    assert await _shared_count(key) == 101
    assert refused.value.retry_after >= 1


async def test_a_costly_request_is_counted_at_once_when_it_nears_the_limit(app: FastAPI) -> None:
    key = f"test:{uuid.uuid4().hex}"
    await hit(key, HOUR, cost=80)
    assert await _shared_count(key) == 80
    with pytest.raises(RateLimited):
        await hit(key, HOUR, cost=30)
