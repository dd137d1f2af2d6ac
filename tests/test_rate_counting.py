"""The shared rate counter: batched far from the limit, exact near it."""

import uuid

import pytest
from fastapi import FastAPI

from api import rate_limits
from api.rate_limits import Limit, RateLimited, hit
from documents.rate_limits import RateCounter

HOUR = Limit(requests=200, window=3600)


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
    for _ in range(120):
        await hit(key, HOUR)
    assert await _shared_count(key) == 120
    for _ in range(80):
        await hit(key, HOUR)
    with pytest.raises(RateLimited) as refused:
        await hit(key, HOUR)
    assert await _shared_count(key) == 201
    assert refused.value.retry_after >= 1


async def test_a_costly_request_is_counted_at_once_when_it_nears_the_limit(app: FastAPI) -> None:
    key = f"test:{uuid.uuid4().hex}"
    await hit(key, HOUR, cost=160)
    assert await _shared_count(key) == 160
    with pytest.raises(RateLimited):
        await hit(key, HOUR, cost=60)


async def test_a_small_limit_holds_across_processes_from_the_first_request(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Four API processes, each with its own tallies, take a burst of sign-ins in turn.
    processes: list[dict] = [{} for _ in range(4)]
    key = f"login:{uuid.uuid4().hex}"
    sign_in = Limit(requests=10, window=3600)
    admitted = 0
    for attempt in range(40):
        monkeypatch.setattr(rate_limits, "_tallies", processes[attempt % 4])
        try:
            await hit(key, sign_in)
        except RateLimited:
            continue
        admitted += 1
    assert admitted == 10
    assert await _shared_count(key) == 40
