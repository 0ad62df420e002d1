"""The registry's state log: records on compacted topics, folded into memory.

``StateLog.transact`` is the only way to write. It runs a decision function against state that has
caught up with the whole log, writes the records the function returns, and returns only after this
instance's own reader has folded them (read-your-writes). Implementations: ``KafkaStateLog``
(``inlet/statelog/kafka.py``, exclusive writer through a fenced transactional producer) and
``InMemoryStateLog`` below, for unit tests of pure logic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol, TypeVar

T = TypeVar("T")


class Record(NamedTuple):
    topic: str
    key: bytes
    value: bytes | None  # None is a tombstone


class Folder(Protocol):
    """Deterministic state built from log records, in log order."""

    def apply(self, topic: str, key: bytes, value: bytes | None) -> None: ...


class StateFold:
    """Several folds read from one log: each ignores the topics that are not its own."""

    def __init__(self, *parts: Folder) -> None:
        self._parts = parts

    def apply(self, topic: str, key: bytes, value: bytes | None) -> None:
        for part in self._parts:
            part.apply(topic, key, value)


class StateLog(Protocol):
    async def transact(self, decide: Callable[[], tuple[list[Record], T]]) -> T:
        """Call ``decide`` on caught-up state, write its records atomically, await them folded.

        ``decide`` may raise a domain error; then nothing is written.
        """
        ...

    async def sync(self) -> None:
        """Return once the state includes every record committed before the call."""
        ...


class InMemoryStateLog:
    """A log that applies records straight to its folder: for unit tests, no Kafka."""

    def __init__(self, folder: Folder) -> None:
        self.folder = folder
        self.records: list[Record] = []

    async def transact(self, decide: Callable[[], tuple[list[Record], T]]) -> T:
        records, result = decide()
        for record in records:
            self.records.append(record)
            self.folder.apply(record.topic, record.key, record.value)
        return result

    async def sync(self) -> None:
        return None
