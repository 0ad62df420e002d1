"""Log lines: JSON or readable text, written off the caller's thread, every queued line kept at
stop and at a flush."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import threading

import pytest

from inlet.logs import JsonFormatter, LogFormat, TextFormatter, _LineWriter, formatter_for


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "inlet.test", "levelname": "INFO", "msg": msg})
    record.__dict__.update(extra)
    return record


class _Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no")


def test_lines_are_json_with_their_extras_and_all_are_written_by_stop() -> None:
    stream = io.StringIO()
    writer = _LineWriter(stream, JsonFormatter())
    for n in range(2_500):  # more than one burst
        writer.records.put(_record("ingest", request_id=f"r{n}", status=200))
    writer.stop()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == [f"r{n}" for n in range(2_500)]
    assert {(line["level"], line["logger"], line["msg"], line["status"]) for line in lines} == {
        ("info", "inlet.test", "ingest", 200)
    }
    assert all(line["ts"].endswith("Z") for line in lines)


def test_a_record_that_cannot_be_formatted_does_not_stop_logging() -> None:
    stream = io.StringIO()
    writer = _LineWriter(stream, JsonFormatter())
    writer.records.put(_record("bad", thing=_Unprintable()))
    writer.records.put(_record("after"))
    writer.stop()
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["msg"].startswith("unloggable")
    assert second["msg"] == "after"


def test_text_lines_show_time_level_service_logger_message_and_extras() -> None:
    record = _record("stopping", signal="SIGTERM", exit_codes=[1, 0], note="two words", n=3)
    record.levelname = "WARNING"
    line = TextFormatter("gateway").format(record)
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d\.\d{3} WARN  \[gateway\] inlet\.test: stopping "
        r'signal=SIGTERM exit_codes=\[1,0\] note="two words" n=3',
        line,
    ), line


def test_text_lines_leave_out_uvicorns_coloured_copy_and_keep_tracebacks() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.makeLogRecord(
            {
                "name": "uvicorn.error",
                "levelname": "ERROR",
                "msg": "failed",
                "exc_info": sys.exc_info(),
            }
        )
    record.color_message = "\x1b[31mfailed\x1b[0m"
    first, *rest = TextFormatter("registry").format(record).splitlines()
    assert first.endswith("ERROR [registry] uvicorn.error: failed")
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "ValueError: boom"


def test_values_that_are_not_one_word_are_quoted_so_a_line_splits_back_into_fields() -> None:
    line = TextFormatter("up").format(
        _record("m", empty="", eq="a=b", quote='say "x"', unencodable=_Repr())
    )
    assert line.endswith(' m empty="" eq="a=b" quote="say \\"x\\"" unencodable="<repr>"'), line


class _Repr:
    def __repr__(self) -> str:
        return "<repr>"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("log_format", "terminal", "expected"),
    [
        ("auto", True, TextFormatter),
        ("auto", False, JsonFormatter),
        ("json", True, JsonFormatter),
        ("text", False, TextFormatter),
    ],
)
def test_text_on_a_terminal_json_otherwise_unless_told(
    log_format: LogFormat, terminal: bool, expected: type
) -> None:
    stream = _Terminal() if terminal else io.StringIO()
    assert type(formatter_for(log_format, "gateway", stream)) is expected


class _SlowStream(io.StringIO):
    """A stream whose writes wait until the test lets them through."""

    def __init__(self) -> None:
        super().__init__()
        self.open = threading.Event()

    def write(self, text: str) -> int:
        self.open.wait(10)
        return super().write(text)


def test_a_flush_returns_once_every_line_queued_before_it_is_written() -> None:
    stream = _SlowStream()
    writer = _LineWriter(stream, JsonFormatter())
    for n in range(1_500):
        writer.records.put(_record("queued", n=n))
    assert writer.flush(timeout_s=0.2) is False  # the stream is held: not written yet
    stream.open.set()
    assert writer.flush(timeout_s=10) is True
    assert len(stream.getvalue().splitlines()) == 1_500
    writer.stop()
