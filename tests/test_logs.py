"""The JSON log lines: one object per line, one line per event."""

import io
import json
import logging
from datetime import UTC, datetime

import pytest

from api.logs import ATOMIC_WRITE_BYTES, EVENTS, JsonFormatter, WholeLinesHandler


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
        -1.5,  # before 1970, the second is the one below
        -0.0004,
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


def test_a_record_is_one_of_several_events_only_if_it_carries_a_list_of_them(
    written: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = written
    logger.info("plain", extra={EVENTS: "not a list"})
    logger.info("empty", extra={EVENTS: []})
    plain, empty = _written_lines(stream)
    assert (plain["message"], plain[EVENTS]) == ("plain", "not a list")
    assert (empty["message"], empty[EVENTS]) == ("empty", [])


def test_each_event_of_a_failed_batch_carries_the_error(
    written: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = written
    try:
        raise OSError("disk full")
    except OSError:
        logger.exception("request", extra={EVENTS: [(1.0, {"n": 1}), (2.0, {"n": 2})]})
    lines = _written_lines(stream)
    assert [line["n"] for line in lines] == [1, 2]
    assert all("OSError: disk full" in line["error"] for line in lines)


class _Writes(io.StringIO):
    """A stream that keeps what each write call was handed."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return super().write(text)


def test_a_batch_goes_out_in_writes_of_whole_lines_each_small_enough_to_stay_whole() -> None:
    stream = _Writes()
    handler = WholeLinesHandler(stream)
    handler.setFormatter(JsonFormatter())
    long_path = "/v1/" + "x" * (ATOMIC_WRITE_BYTES + 100)
    events = [(1.0 + n, {"n": n, "path": "/v1/health"}) for n in range(300)]
    events[150] = (151.0, {"n": 150, "path": long_path})
    handler.handle(logging.makeLogRecord({"msg": "request", EVENTS: events}))
    assert len(stream.calls) > 1
    for call in stream.calls:
        assert call.endswith("\n")
        assert len(call.encode()) <= ATOMIC_WRITE_BYTES or call.count("\n") == 1
    lines = [json.loads(line) for line in "".join(stream.calls).splitlines()]
    assert [line["n"] for line in lines] == list(range(300))
    assert lines[150]["path"] == long_path


def test_a_record_of_one_short_line_is_one_write() -> None:
    stream = _Writes()
    handler = WholeLinesHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.handle(logging.makeLogRecord({"msg": "ready, é"}))
    [call] = stream.calls
    assert json.loads(call)["message"] == "ready, é"
