"""The JSON log lines: one object per line, one line per event."""

import io
import json
import logging
from datetime import UTC, datetime

import pytest

from api.logs import EVENTS, JsonFormatter


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> tuple[logging.Logger, io.StringIO]:
    """A logger writing through the service's formatter into a string, and nowhere else."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("cabinet.tests.logs")
    monkeypatch.setattr(logger, "handlers", [handler])
    monkeypatch.setattr(logger, "propagate", False)
    monkeypatch.setattr(logger, "level", logging.INFO)
    return logger, stream


def _written_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_record_is_one_line_with_its_fields(
    written: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = written
    logger.warning("slow %s", "query", extra={"request_id": "r-1", "ms": 812.5})
    [line] = _written_lines(stream)
    assert line["level"] == "warning" and line["logger"] == "cabinet.tests.logs"
    assert line["message"] == "slow query"
    assert (line["request_id"], line["ms"]) == ("r-1", 812.5)
    assert "error" not in line


def test_a_record_of_several_events_is_written_as_a_line_each_with_its_own_time(
    written: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = written
    events = [
        (1_700_000_000.25, {"request_id": "first", "status": 200}),
        (1_700_000_001.5, {"request_id": "second", "status": 404}),
    ]
    logger.info("request", extra={EVENTS: events, "worker": 3})
    first, second = _written_lines(stream)
    assert first == {
        "time": "2023-11-14T22:13:20.250+00:00",
        "level": "info",
        "logger": "cabinet.tests.logs",
        "message": "request",
        "worker": 3,
        "request_id": "first",
        "status": 200,
    }
    assert (second["time"], second["request_id"], second["status"]) == (
        "2023-11-14T22:13:21.500+00:00",
        "second",
        404,
    )
    assert EVENTS not in first


@pytest.mark.parametrize(
    "created",
    [
        0.0,
        1_700_000_000.0,
        1_700_000_000.001,  # held in binary as a hair under 1 ms
        1_700_000_000.5,
        1_700_000_059.999,
        1_700_000_059.9999996,  # rounds up to the next minute
    ],
)
def test_times_are_utc_to_the_millisecond_as_isoformat_writes_them(created: float) -> None:
    formatter = JsonFormatter()
    formatter.format(logging.makeLogRecord({"created": created - 86_400}))  # another second first
    record = logging.makeLogRecord({"created": created, "msg": "tick"})
    line = json.loads(formatter.format(record))
    expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    assert line["time"] == expected


def test_an_error_carries_its_traceback(written: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = written
    try:
        raise ValueError("the reason")
    except ValueError:
        logger.exception("unhandled error", extra={"request_id": "r-2"})
    [line] = _written_lines(stream)
    assert line["level"] == "error" and line["request_id"] == "r-2"
    assert "ValueError: the reason" in line["error"]
