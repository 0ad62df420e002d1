"""Structured logging on stderr: one JSON object per line, or a short line a person reads.

JSON lines are for machines (the default when stderr is not a terminal); on a terminal, or with
``INLET_LOG_FORMAT=text``, each line is ``time level [service] logger: message key=value…``. Both
show the same fields: what a log call passes, never more (settings and secrets are not logged).

Formatting and writing happen on a background thread (``_LineWriter``), so a log call in a
request handler costs an enqueue, not a JSON encode and a synchronous write; the thread writes
whatever queued up meanwhile in one write (under load, one syscall for many lines, not one each).
``flush_logs`` waits until every line queued so far is written (before a process ends without
running ``atexit``); at exit the writer is stopped, which writes every queued line first.
The Kafka clients' repeated warnings are collapsed there too (``_log_repeats.py``): a line when
a failure starts, one when it stops, with the count.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import sys
import threading
import time
from typing import Any, Literal, TextIO

import msgspec

from inlet._log_repeats import Repeats

_encoder = msgspec.json.Encoder()
# Attributes every LogRecord has; anything else passed via ``extra=`` becomes a JSON field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# uvicorn's copy of a message with terminal colour codes: the same words again.
_NOT_SHOWN = _STANDARD | {"color_message"}

LogFormat = Literal["auto", "json", "text"]


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


class TextFormatter(logging.Formatter):
    """``12:00:26.514 INFO  [gateway] inlet.cli: stopping signal=SIGTERM``: local time, for a
    person at a terminal; the service names the process, as ``inlet up`` interleaves several."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        level = "WARN" if record.levelname == "WARNING" else record.levelname
        parts = [
            f"{clock}.{int(record.msecs):03d} {level:<5} [{self._service}] {record.name}:",
            record.getMessage(),
        ]
        parts.extend(
            f"{k}={_text_value(v)}" for k, v in vars(record).items() if k not in _NOT_SHOWN
        )
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _text_value(value: object) -> str:
    """A value as one token: bare when it is one word, else quoted as JSON would."""
    if isinstance(value, str) and value and not any(c.isspace() or c in '"=' for c in value):
        return value
    try:
        return _encoder.encode(value).decode()
    except (TypeError, ValueError):  # not JSON-encodable: its repr, quoted
        return _encoder.encode(repr(value)).decode()


class _EnqueueHandler(logging.handlers.QueueHandler):
    """Hands records to the listener as they are: the listener's handler does the formatting.

    The stock ``prepare`` formats on the calling thread (and folds a traceback into the message);
    here only the message is resolved now, so later changes to its arguments cannot alter it.
    """

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record.msg = record.getMessage()
        record.args = None
        return record


class _Flushed(threading.Event):
    """Queued behind the lines to flush; set once they are written."""


class _LineWriter:
    """Formats queued records and writes them, a burst at a time, on its own thread."""

    _STOP: Any = object()
    _MAX_BURST = 1000
    _SWEEP_S = 1.0  # how soon "stopped repeating" is written when nothing else is logged
    # After the first line of a burst, how long the thread lets more gather before it writes.
    # While it waits for a line, every line logged wakes it, and the woken thread then takes the
    # GIL from the event loop: at a gateway's thousands of access lines a second that cost the
    # loop ~20-35 µs per request (bench/request_bench.py). Asleep, a line is only appended.
    _GATHER_S = 0.02

    def __init__(
        self, stream: TextIO, formatter: logging.Formatter, repeats: Repeats | None = None
    ) -> None:
        self.records: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stream = stream
        self._formatter = formatter
        self._repeats = repeats or Repeats()
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            burst: list[Any] = []
            try:
                burst.append(self.records.get(timeout=self._SWEEP_S))
                if burst[0] is not self._STOP:
                    time.sleep(self._GATHER_S)
                while len(burst) < self._MAX_BURST:
                    burst.append(self.records.get_nowait())
            except queue.Empty:
                pass
            lines: list[str] = []
            flushed = []
            for record in burst:
                if record is self._STOP:
                    stopping = True
                elif isinstance(record, _Flushed):
                    flushed.append(record)
                else:
                    lines.extend(self._line(line) for line in self._admitted(record))
            lines.extend(self._line(line) for line in self._repeats.sweep(everything=stopping))
            if lines:
                try:
                    self._stream.write("".join(lines))
                    self._stream.flush()
                except (OSError, ValueError):  # stderr closed or gone: nowhere left to say it
                    pass
            for done in flushed:
                done.set()

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

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every line queued before this call is written; False if that took too long."""
        done = _Flushed()
        self.records.put(done)
        return done.wait(timeout_s) if self._thread.is_alive() else False

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


def flush_logs(timeout_s: float = 5.0) -> None:
    """Write every line logged so far: before an exit that skips ``atexit`` (``os._exit``)."""
    if _writer is not None:
        _writer.flush(timeout_s)


def formatter_for(log_format: LogFormat, service: str, stream: TextIO) -> logging.Formatter:
    """JSON lines, unless asked for text or ``auto`` and ``stream`` is a terminal."""
    if log_format == "auto":
        try:
            log_format = "text" if stream.isatty() else "json"
        except (AttributeError, ValueError):  # a replaced or closed stream: not a terminal
            log_format = "json"
    return TextFormatter(service) if log_format == "text" else JsonFormatter()


def setup_logging(
    level: str = "INFO", service: str = "inlet", log_format: LogFormat = "auto"
) -> None:
    global _writer  # noqa: PLW0603 - one writer per process
    previous = _writer
    _writer = _LineWriter(sys.stderr, formatter_for(log_format, service, sys.stderr))
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
