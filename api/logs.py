"""JSON log lines, one per event, carrying the request id where there is one."""

import json
import logging
import math
import select
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}
# A record carrying this attribute (a list of (time, fields) pairs) stands for that many events
# of one kind, written as a line each: the access log's batch of requests, which as a record
# each cost ~16 µs a request (made, handled, formatted and written one by one), and ~7 µs so.
EVENTS = "cabinet_events"
Event = tuple[float, dict[str, Any]]  # when it happened (from time.time()), and its fields
# Up to this many bytes, a write to a pipe is never interleaved with another process's: several
# workers share the service's standard error, and a line must not be split by another's.
ATOMIC_WRITE_BYTES = getattr(select, "PIPE_BUF", 512)  # 512: the least POSIX allows


# Made once: json.dumps with any option builds a new encoder per line, and a line is logged per
# request. Values JSON has no type for (ids, dates) are written as their text.
_ENCODER = json.JSONEncoder(default=str)


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        # Set up in every process that logs this way, uvicorn's workers included.
        skip_unlogged_record_fields()
        self._second = (0, _second_text(0))  # the last second written, made once a second

    def format(self, record: logging.LogRecord) -> str:
        head = {
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if record.exc_info:
            extra["error"] = self.formatException(record.exc_info)
        events = extra.get(EVENTS)
        if isinstance(events, list) and events:
            del extra[EVENTS]
            return "\n".join(
                _ENCODER.encode({"time": self._time(at), **head, **extra, **fields})
                for at, fields in events
            )
        return _ENCODER.encode({"time": self._time(record.created), **head, **extra})

    def _time(self, created: float) -> str:
        """ISO 8601 in UTC to the millisecond, as `datetime.isoformat` writes it."""
        second = math.floor(created)
        micro = round((created - second) * 1_000_000)  # rounded as datetime rounds it
        if micro == 1_000_000:
            second, micro = second + 1, 0
        known = self._second  # read once: a handler on another thread may replace it meanwhile
        if known[0] != second:
            known = self._second = (second, _second_text(second))
        return f"{known[1]}.{micro // 1000:03d}+00:00"


class WholeLinesHandler(logging.StreamHandler):
    """Writes a record of several lines (a batch of access lines) in pieces of whole lines of
    at most ATOMIC_WRITE_BYTES each, flushed one by one: workers sharing a pipe then never split
    each other's lines, as when each line was a write of its own. A longer line goes alone."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            for piece in _pieces(self.format(record) + self.terminator, ATOMIC_WRITE_BYTES):
                self.stream.write(piece)
                self.flush()
        except RecursionError:  # as StreamHandler.emit does
            raise
        except Exception:
            self.handleError(record)


def _pieces(text: str, limit: int) -> Iterator[str]:
    """`text` as pieces of whole lines, each at most `limit` bytes in UTF-8 where lines allow."""
    if text.isascii() and len(text) <= limit:  # JSON lines are ASCII; most records one short line
        yield text
        return
    piece: list[str] = []
    size = 0
    for line in text.splitlines(keepends=True):
        length = len(line) if line.isascii() else len(line.encode(errors="replace"))
        if piece and size + length > limit:
            yield "".join(piece)
            piece, size = [], 0
        piece.append(line)
        size += length
    if piece:
        yield "".join(piece)


def _second_text(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def skip_unlogged_record_fields() -> None:
    """Stops every log record from looking up what JsonFormatter never writes: the calling
    source line (a walk up the stack), thread, process and multiprocessing names. The access log
    makes a record for every batch of requests (the logging HOWTO, "Optimization")."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def configure_logging(level: str = "INFO") -> dict:
    """The logging config for the service and for uvicorn (a dictConfig mapping)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": {"class": "api.logs.WholeLinesHandler", "formatter": "json"}},
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn.access": {"level": "WARNING"},
            "pymongo": {"level": "WARNING"},
        },
    }
