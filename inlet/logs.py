"""Structured logging: one JSON object per line on stderr.

Formatting and writing happen on a background thread (``_LineWriter``), so a log call in a
request handler costs an enqueue, not a JSON encode and a synchronous write; the thread writes
whatever queued up meanwhile in one write (under load, one syscall for many lines, not one each).
It is stopped at exit, which writes every queued line first. The Kafka clients' repeated
warnings are collapsed there too (``_log_repeats.py``): a line when a failure starts, one when it
stops, with the count.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import sys
import threading
import time
from typing import Any, TextIO

import msgspec

from inlet._log_repeats import Repeats

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


class _LineWriter:
    """Formats queued records and writes them, a burst at a time, on its own thread."""

    _STOP: Any = object()
    _MAX_BURST = 1000
    _SWEEP_S = 1.0  # how soon "stopped repeating" is written when nothing else is logged

    def __init__(
        self, stream: TextIO, formatter: logging.Formatter, repeats: Repeats | None = None
    ) -> None:
        self.records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self._stream = stream
        self._formatter = formatter
        self._repeats = repeats or Repeats()
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            burst: list[logging.LogRecord] = []
            try:
                burst.append(self.records.get(timeout=self._SWEEP_S))
                while len(burst) < self._MAX_BURST:
                    burst.append(self.records.get_nowait())
            except queue.Empty:
                pass
            lines: list[str] = []
            for record in burst:
                if record is self._STOP:
                    stopping = True
                else:
                    lines.extend(self._line(line) for line in self._admitted(record))
            lines.extend(self._line(line) for line in self._repeats.sweep(everything=stopping))
            if lines:
                try:
                    self._stream.write("".join(lines))
                    self._stream.flush()
                except (OSError, ValueError):  # stderr closed or gone: nowhere left to say it
                    pass

    def _admitted(self, record: logging.LogRecord) -> list[logging.LogRecord]:
        try:
            return self._repeats.admit(record)
        except Exception:  # noqa: BLE001 - an odd record is written as it is
            return [record]

    def _line(self, record: logging.LogRecord) -> str:
        try:
            return self._formatter.format(record) + "\n"
        except Exception as exc:  # noqa: BLE001 - a bad log call must not stop all logging
            problem = {"level": "error", "logger": "inlet.logs", "msg": f"unloggable: {exc!r}"}
            return _encoder.encode(problem).decode() + "\n"

    def stop(self) -> None:
        """Write every queued line, then end the thread."""
        self.records.put(self._STOP)
        self._thread.join(timeout=5)


_writer: _LineWriter | None = None


def _stop_writer() -> None:
    global _writer  # noqa: PLW0603 - one writer per process
    if _writer is not None:
        _writer.stop()
        _writer = None


def setup_logging(level: str = "INFO", service: str = "inlet") -> None:
    global _writer  # noqa: PLW0603 - one writer per process
    previous = _writer
    _writer = _LineWriter(sys.stderr, JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [_EnqueueHandler(_writer.records)]
    root.setLevel(level)
    # What no line shows is not collected per call (the logging HOWTO's "Optimization" section).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # no caller lookup (file, line) per call
    if previous is not None:
        previous.stop()
    logging.getLogger("inlet").info("logging ready", extra={"service": service})


atexit.register(_stop_writer)


def silence_server_access_log() -> None:
    """Turn off uvicorn's own access log: it prints request paths, and ingest paths hold tokens.

    uvicorn logs access lines whenever ``uvicorn.access`` has a handler (its own, the root's by
    propagation, or one a tool attaches), so the logger is disabled outright. Inlet's apps write
    their own access lines, without secrets.
    """
    logging.getLogger("uvicorn.access").disabled = True
