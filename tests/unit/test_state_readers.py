"""The readers a gateway worker answers for: a dedup reader started while serving counts only once
it has caught up, so turning dedup on does not take every worker out of readiness at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from gateway.state_readers import StateReaders


@dataclass
class _Status:
    caught_up: bool


@dataclass
class _Reader:
    name: str
    caught_up: bool = False

    def status(self) -> _Status:
        return _Status(self.caught_up)


@dataclass
class _Dedup:
    reader: _Reader | None = None


def _names(readers: StateReaders) -> list[str]:
    return [reader.name for reader in readers]


def test_the_dedup_reader_counts_from_its_first_catch_up_and_stays_counted() -> None:
    connectors = _Reader("gateway", caught_up=True)
    dedup = _Dedup()
    readers = StateReaders(cast("Any", connectors), cast("Any", dedup))
    assert _names(readers) == ["gateway"]

    dedup.reader = _Reader("dedup")  # started, still catching up
    assert _names(readers) == ["gateway"]
    dedup.reader.caught_up = True
    assert _names(readers) == ["gateway", "dedup"]
    dedup.reader.caught_up = False  # behind later on: counted, so the worker says so
    assert _names(readers) == ["gateway", "dedup"]

    dedup.reader = _Reader("dedup")  # stopped and started again: a new first catch-up
    assert _names(readers) == ["gateway"]
    dedup.reader = None
    assert _names(readers) == ["gateway"]
