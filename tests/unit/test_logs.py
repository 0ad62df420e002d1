"""Structured log lines: JSON, written off the caller's thread, every queued line kept at stop."""

from __future__ import annotations

import io
import json
import logging

from inlet.logs import JsonFormatter, _LineWriter


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
