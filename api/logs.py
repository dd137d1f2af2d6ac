"""JSON log lines, one per event, carrying the request id where there is one."""

import json
import logging
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}
# A record carrying this attribute (a list of (time, fields) pairs) stands for that many events
# of one kind, written as a line each: the access log's batch of requests, which as a record
# each cost ~10 µs a request in `logging` alone (made, handled, formatted, written one by one).
EVENTS = "events"
Event = tuple[float, dict[str, Any]]  # when it happened (from time.time()), and its fields


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
        events: list[Event] | None = extra.pop(EVENTS, None)
        if events is not None:
            return "\n".join(
                _ENCODER.encode({"time": self._time(at), **head, **extra, **fields})
                for at, fields in events
            )
        line = {"time": self._time(record.created), **head, **extra}
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return _ENCODER.encode(line)

    def _time(self, created: float) -> str:
        """ISO 8601 in UTC to the millisecond, as `datetime.isoformat` writes it."""
        second = int(created)
        micro = round((created - second) * 1_000_000)  # rounded as datetime rounds it
        if micro == 1_000_000:
            second, micro = second + 1, 0
        if self._second[0] != second:
            self._second = (second, _second_text(second))
        return f"{self._second[1]}.{micro // 1000:03d}+00:00"


def _second_text(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def skip_unlogged_record_fields() -> None:
    """Stops every log record from looking up what JsonFormatter never writes: the calling
    source line (a walk up the stack), thread, process and multiprocessing names. One record is
    made per request, so this is on every request's path (the logging HOWTO, "Optimization")."""
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
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn.access": {"level": "WARNING"},
            "pymongo": {"level": "WARNING"},
        },
    }
