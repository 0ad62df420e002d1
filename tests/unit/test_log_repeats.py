"""The Kafka clients' repeated errors: one line when a failure starts, a count while it goes on,
one line when it stops; everything else is written as it comes."""

from __future__ import annotations

import io
import json
import logging

from inlet._log_repeats import Repeats
from inlet.logs import JsonFormatter, _LineWriter


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _record(name: str, msg: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.makeLogRecord(
        {"name": name, "levelno": level, "levelname": logging.getLevelName(level), "msg": msg}
    )


def _messages(lines: list[logging.LogRecord]) -> list[str]:
    return [line.getMessage() for line in lines]


def test_an_outage_is_a_line_when_it_starts_and_one_with_the_count_when_it_stops() -> None:
    clock = _Clock()
    repeats = Repeats(quiet_s=10, every_s=60, clock=clock)
    written: list[logging.LogRecord] = []
    for n in range(3_300):  # 33 s of errors, 100 a second, from two nodes
        clock.now = 100 + n / 100
        node = 1 + n % 2
        written += repeats.admit(
            _record("aiokafka.client", f"Unable connect to node with id {node}: [Errno 111]")
        )
        written += repeats.sweep()
    assert _messages(written) == ["Unable connect to node with id 1: [Errno 111]"]
    clock.now += 9
    assert repeats.sweep() == []  # not quiet for long enough yet
    clock.now += 1
    (stopped,) = repeats.sweep()
    assert stopped.levelno == logging.INFO
    assert stopped.__dict__["repeats"] == 3_299
    assert stopped.__dict__["repeat_state"] == "stopped"
    assert "Unable connect to node with id 1" in stopped.getMessage()
    # The next outage starts with its own first line again.
    line = _record("aiokafka.client", "Unable connect to node with id 2: [Errno 111]")
    assert repeats.admit(line) == [line]


def test_a_long_outage_says_it_goes_on_once_a_period_with_the_count() -> None:
    clock = _Clock()
    repeats = Repeats(quiet_s=10, every_s=60, clock=clock)
    written: list[logging.LogRecord] = []
    for second in range(181):
        clock.now = 100 + second
        written += repeats.admit(_record("inlet.rdkafka", "FAIL [rdkafka#producer-1] x"))
    assert len(written) == 4  # the first line, then one a minute
    assert [line.__dict__.get("repeats") for line in written[1:]] == [60, 60, 60]
    assert {line.levelno for line in written} == {logging.ERROR}


def test_lines_of_other_loggers_and_levels_are_never_held_back() -> None:
    repeats = Repeats(clock=_Clock())
    lines = [
        _record("inlet.gateway", "unhandled error"),
        _record("inlet.gateway", "unhandled error"),
        _record("aiokafka.consumer", "fetching", logging.INFO),
        _record("aiokafka.consumer", "fetching", logging.INFO),
        _record("aiokafkaesque", "x"),
        _record("aiokafkaesque", "x"),
    ]
    assert [kept for line in lines for kept in repeats.admit(line)] == lines


def test_the_writer_collapses_repeats_and_writes_the_count_before_it_stops() -> None:
    stream = io.StringIO()
    writer = _LineWriter(stream, JsonFormatter())
    for _ in range(500):
        writer.records.put(_record("aiokafka.conn", "Unable connect to 127.0.0.1:9092"))
    writer.records.put(_record("inlet.gateway", "ingest", logging.INFO))
    writer.stop()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["logger"], line.get("repeats")) for line in lines] == [
        ("aiokafka.conn", None),
        ("inlet.gateway", None),
        ("aiokafka.conn", 499),
    ]
