"""JSON log lines, one per event, carrying the request id where there is one."""

import json
import logging
from datetime import UTC, datetime

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


# Made once: json.dumps with any option builds a new encoder per line, and a line is logged per
# request. Values JSON has no type for (ids, dates) are written as their text.
_ENCODER = json.JSONEncoder(default=str)


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        # Set up in every process that logs this way, uvicorn's workers included.
        skip_unlogged_record_fields()

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return _ENCODER.encode(line)


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
