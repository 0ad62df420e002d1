"""The Kafka clients' repeated warnings and errors, collapsed: a line when a failure starts, a
count while it goes on, a line when it stops.

While a broker is down, aiokafka (the state-log readers) and librdkafka (``inlet.rdkafka``) log
the same failure several times a second from every client: about 3,300 ERROR lines in a 25-40 s
outage, which bury whatever else happened. ``Repeats`` keeps the first line of each failure, counts
its repeats, writes one line with the count every ``every_s`` while they go on, and one when they
have stopped for ``quiet_s`` (the client reconnected). Lines are told apart by logger, level and
message with its numbers blanked, so "node 1", "node 2" and "after 12ms" count as one failure.

Pure and single-threaded: the log writer thread (``inlet/logs.py``) calls it, with its own clock.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

# The loggers whose warnings repeat per retry; Inlet's own lines are never collapsed.
NOISY_LOGGERS = ("aiokafka", "inlet.rdkafka")
_NUMBERS = re.compile(r"\d+")
_MAX_FAILURES = 1000  # distinct lines followed at once; past it, lines are written as they come


@dataclass
class _Failure:
    first: logging.LogRecord
    since: float  # when the last line about it was written
    last: float  # when it last repeated
    repeats: int = 0  # since the last line about it


class Repeats:
    def __init__(
        self,
        *,
        loggers: tuple[str, ...] = NOISY_LOGGERS,
        quiet_s: float = 10.0,
        every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._prefixes = loggers
        self._quiet_s = quiet_s
        self._every_s = every_s
        self._clock = clock
        self._failures: dict[tuple[str, int, str], _Failure] = {}

    def admit(self, record: logging.LogRecord) -> list[logging.LogRecord]:
        """The lines to write for ``record``: itself, nothing (a repeat), or a count of repeats."""
        if record.levelno < logging.WARNING or not self._noisy(record.name):
            return [record]
        now = self._clock()
        key = (record.name, record.levelno, _NUMBERS.sub("#", record.getMessage()))
        failure = self._failures.get(key)
        if failure is None:
            if len(self._failures) < _MAX_FAILURES:
                self._failures[key] = _Failure(record, since=now, last=now)
            return [record]
        failure.repeats += 1
        failure.last = now
        if now - failure.since < self._every_s:
            return []
        line = _summary(failure, record.levelno, now, "repeating")
        failure.repeats, failure.since = 0, now
        return [line]

    def sweep(self, *, everything: bool = False) -> list[logging.LogRecord]:
        """Lines for the failures that stopped (all of them with ``everything``, at exit)."""
        now = self._clock()
        lines = []
        for key, failure in list(self._failures.items()):
            if everything or now - failure.last >= self._quiet_s:
                del self._failures[key]
                if failure.repeats:
                    lines.append(_summary(failure, logging.INFO, now, "stopped"))
        return lines

    def _noisy(self, name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in self._prefixes)


def _summary(failure: _Failure, level: int, now: float, state: str) -> logging.LogRecord:
    first = failure.first
    verb = "repeated" if state == "repeating" else "stopped after repeating"
    return logging.makeLogRecord(
        {
            "name": first.name,
            "levelno": level,
            "levelname": logging.getLevelName(level),
            "msg": f"{verb} {failure.repeats} times in {now - failure.since:.0f} s: "
            f"{first.getMessage()}",
            "repeats": failure.repeats,
            "repeat_state": state,
        }
    )
