"""The access log: one JSON line per request, with its id, written in batches."""

import asyncio
import json
import logging
import time
import weakref
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from prometheus_client import REGISTRY
from starlette.types import Receive, Scope, Send

from api import access_log as access_log_module
from api.access_log import FLUSH_INTERVAL, MAX_PENDING, AccessLog, Answered
from api.logs import JsonFormatter
from api.middleware import RequestContextMiddleware
from tests.factories import eventually, register


def _answered(request_id: str, ended: float | None = None, status: int = 200) -> Answered:
    scope: dict[str, Any] = {"method": "GET", "path": "/v1/health", "path_params": {}}
    return Answered.of(scope, request_id, status, 0.001, time.time() if ended is None else ended)


def _lines(caplog: pytest.LogCaptureFixture, request_id: str) -> list[dict[str, Any]]:
    """The JSON lines written for the request with this id, as the service's formatter writes
    them from what was logged."""
    formatter = JsonFormatter()
    lines = [
        json.loads(line)
        for record in caplog.records
        if record.getMessage() == "request"
        for line in formatter.format(record).splitlines()
    ]
    return [line for line in lines if line.get("request_id") == request_id]


async def test_each_request_is_logged_once_with_its_id_status_and_duration(
    app: FastAPI, client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    account = await register(client)
    asked = [
        ("GET", "/v1/auth/me", account.headers, 200),
        ("GET", "/v1/auth/me", {}, 401),
        ("DELETE", "/v1/health", {}, 405),
        ("GET", "/v1/nowhere", {}, 404),
    ]
    for number, (method, path, headers, status) in enumerate(asked):
        request_id = f"access-log-{number}"
        response = await client.request(
            method, path, headers={**headers, "X-Request-ID": request_id}
        )
        assert response.status_code == status
    app.state.access_log.flush()
    for number, (method, path, _, status) in enumerate(asked):
        lines = _lines(caplog, f"access-log-{number}")
        assert len(lines) == 1, lines
        [line] = lines
        assert line["request_id"] == f"access-log-{number}"
        assert (line["method"], line["path"], line["status"]) == (method, path, status)
        assert line["level"] == "info" and line["logger"] == "cabinet"
        assert isinstance(line["ms"], float) and line["ms"] >= 0


async def test_what_waits_to_be_logged_holds_nothing_of_its_request(
    app: FastAPI, client: AsyncClient
) -> None:
    """A request's objects are freed when it ends, not at the flush: kept until then, they are
    traced by the collector and promoted to its older generations."""
    app.state.access_log.flush()
    account = await register(client)
    held: list[weakref.ref] = []

    class Belonging:
        """Something of the request's own, in its scope's state."""

    async def keep_watch(scope: Scope, receive: Receive, send: Send) -> None:
        belonging = Belonging()
        held.append(weakref.ref(belonging))
        scope["state"]["belonging"] = belonging
        await inner(scope, receive, send)

    context: Any = app.middleware_stack
    while not isinstance(context, RequestContextMiddleware):
        context = context.app
    inner = context.app
    context.app = keep_watch
    try:
        response = await client.get("/v1/auth/me", headers=account.headers)
    finally:
        context.app = inner
    assert response.status_code == 200
    assert app.state.access_log.pending, "flushed already: nothing to check"
    assert held and held[0]() is None


async def test_lines_are_written_within_the_flush_interval_without_being_asked(
    client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await client.get("/v1/health", headers={"X-Request-ID": "access-log-unasked"})
    assert await eventually(lambda: len(_lines(caplog, "access-log-unasked")) == 1)


async def test_requests_are_counted_with_their_batch_without_a_scrape(
    app: FastAPI, client: AsyncClient
) -> None:
    labels = {"method": "GET", "route": "/v1/health", "status": "200"}

    def counted() -> float:
        return REGISTRY.get_sample_value("cabinet_requests_total", labels) or 0.0

    app.state.access_log.flush()  # what earlier tests left waiting
    before = counted()
    await client.get("/v1/health")
    await client.get("/v1/health")
    assert await eventually(lambda: counted() == before + 2)
    await asyncio.sleep(FLUSH_INTERVAL * 2)
    assert counted() == before + 2  # and only once


def test_a_line_carries_the_time_its_request_ended_not_when_it_was_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    access_log = AccessLog(logging.getLogger("cabinet"))
    ended = 1_700_000_000.75  # long before this test
    access_log.add(_answered("access-log-earlier", ended))
    access_log.flush()
    [line] = _lines(caplog, "access-log-earlier")
    assert line["time"] == "2023-11-14T22:13:20.750+00:00"


def test_a_burst_is_written_at_the_limit_without_waiting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    access_log = AccessLog(logging.getLogger("cabinet"))
    for number in range(MAX_PENDING - 1):
        access_log.add(_answered(f"access-log-burst-{number}"))
    assert not _lines(caplog, "access-log-burst-0")
    access_log.add(_answered("access-log-burst-last"))
    assert access_log.pending == []
    assert len(_lines(caplog, "access-log-burst-0")) == 1
    assert len(_lines(caplog, "access-log-burst-last")) == 1


async def test_what_is_pending_is_written_when_the_flushing_stops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    access_log = AccessLog(logging.getLogger("cabinet"))
    flushing = asyncio.create_task(access_log.keep_flushing())
    await asyncio.sleep(0)
    access_log.add(_answered("access-log-at-shutdown"))
    flushing.cancel()
    await asyncio.gather(flushing, return_exceptions=True)
    assert len(_lines(caplog, "access-log-at-shutdown")) == 1


def test_no_line_is_made_when_info_is_not_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    quiet = logging.getLogger("cabinet.tests.quiet")
    monkeypatch.setattr(quiet, "level", logging.WARNING)
    handled: list[logging.LogRecord] = []
    monkeypatch.setattr(quiet, "handle", handled.append)
    access_log = AccessLog(quiet)
    access_log.add(_answered("access-log-quiet"))
    access_log.flush()
    assert access_log.pending == []
    assert handled == []


def test_a_request_that_cannot_be_counted_costs_the_others_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    def observe(method: str, route: str, status: int, seconds: float) -> None:
        if status == 503:
            raise OSError("the metrics directory is gone")

    monkeypatch.setattr(access_log_module, "observe", observe)
    access_log = AccessLog(logging.getLogger("cabinet"))
    access_log.add(_answered("access-log-before"))
    access_log.add(_answered("access-log-broken", status=503))
    access_log.add(_answered("access-log-after"))
    access_log.flush()
    assert len(_lines(caplog, "access-log-before")) == 1
    assert len(_lines(caplog, "access-log-after")) == 1
    assert not _lines(caplog, "access-log-broken")
    [error] = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert error.getMessage() == "1 of 3 requests not counted or logged"
    assert error.exc_info is not None and isinstance(error.exc_info[1], OSError)


async def _flushes_on_after(
    access_log: AccessLog, caplog: pytest.LogCaptureFixture, failing: list[str], after: str
) -> None:
    """With the flusher running: the `failing` requests' batch goes, and the next request's
    line is written by the same flusher, still running."""
    flushing = asyncio.create_task(access_log.keep_flushing())
    try:
        for request_id in failing:
            access_log.add(_answered(request_id))
        assert await eventually(lambda: access_log.pending == [])
        access_log.add(_answered(after))
        assert await eventually(lambda: len(_lines(caplog, after)) == 1)
        assert not flushing.done()
    finally:
        flushing.cancel()
        await asyncio.gather(flushing, return_exceptions=True)


async def test_the_flusher_outlives_a_failing_batch(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    failures = iter([OSError("once")])

    def observe(method: str, route: str, status: int, seconds: float) -> None:
        if (error := next(failures, None)) is not None:
            raise error

    monkeypatch.setattr(access_log_module, "observe", observe)
    access_log = AccessLog(logging.getLogger("cabinet"))
    await _flushes_on_after(access_log, caplog, ["access-log-lost"], "access-log-next")


async def test_a_batch_that_cannot_be_logged_is_reported_and_the_flushing_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    refusals = iter([OSError("the filter broke")])

    class Refusing(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            if record.getMessage() == "request" and (error := next(refusals, None)):
                raise error
            return True

    logger = logging.getLogger("cabinet.tests.refusing")
    monkeypatch.setattr(logger, "filters", [Refusing()])
    access_log = AccessLog(logger)
    refused = ["access-log-refused-1", "access-log-refused-2"]
    await _flushes_on_after(access_log, caplog, refused, "access-log-after-refusal")
    assert not _lines(caplog, "access-log-refused-1")
    [error] = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert error.getMessage() == "2 of 2 requests not counted or logged"
    assert error.exc_info is not None and isinstance(error.exc_info[1], OSError)
