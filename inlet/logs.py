"""Structured logging: one JSON object per line on stderr.

Formatting and writing happen on a background thread (``QueueListener``), so a log call in a
request handler costs an enqueue, not a JSON encode and a synchronous write. The listener is
stopped at exit, which writes every queued line first.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import sys
import time
from typing import Any

import msgspec

_encoder = msgspec.json.Encoder()
# Attributes every LogRecord has; anything else passed via ``extra=`` becomes a JSON field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return _encoder.encode(line).decode()


class _EnqueueHandler(logging.handlers.QueueHandler):
    """Hands records to the listener as they are: the listener's handler does the formatting.

    The stock ``prepare`` formats on the calling thread (and folds a traceback into the message);
    here only the message is resolved now, so later changes to its arguments cannot alter it.
    """

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record.msg = record.getMessage()
        record.args = None
        return record


_listener: logging.handlers.QueueListener | None = None


def _stop_listener() -> None:
    global _listener  # noqa: PLW0603 - one listener per process
    if _listener is not None:
        _listener.stop()  # writes what is queued, then joins the thread
        _listener = None


def setup_logging(level: str = "INFO", service: str = "inlet") -> None:
    global _listener  # noqa: PLW0603 - one listener per process
    previous = _listener
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _listener = logging.handlers.QueueListener(records, handler)
    _listener.start()
    root = logging.getLogger()
    root.handlers[:] = [_EnqueueHandler(records)]
    root.setLevel(level)
    if previous is not None:
        previous.stop()
    logging.getLogger("inlet").info("logging ready", extra={"service": service})


atexit.register(_stop_listener)


def silence_server_access_log() -> None:
    """Turn off uvicorn's own access log: it prints request paths, and ingest paths hold tokens.

    uvicorn logs access lines whenever ``uvicorn.access`` has a handler (its own, the root's by
    propagation, or one a tool attaches), so the logger is disabled outright. Inlet's apps write
    their own access lines, without secrets.
    """
    logging.getLogger("uvicorn.access").disabled = True
