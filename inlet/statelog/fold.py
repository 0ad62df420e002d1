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

import msgspec

T = TypeVar("T")


class Record(NamedTuple):
    topic: str
    key: bytes
    value: bytes | None  # None is a tombstone


class CorruptRecord(ValueError):
    """A state record a fold cannot read (a key that is not UTF-8, bad JSON, the wrong shape).

    The fold leaves its state as every instance leaves it for that record (the same on every
    instance, so they still agree) and raises this; the reader counts the record and skips it,
    or stops on it when ``strict_state`` says so (``inlet/statelog/kafka.py``).
    """


def text_key(topic: str, key: bytes) -> str:
    """A state record's key as text: every Inlet state key is UTF-8 (an id, a JSON key)."""
    try:
        return key.decode()
    except UnicodeDecodeError as exc:
        raise CorruptRecord(f"{topic}: a key that is not UTF-8: {key!r}") from exc


class Folder(Protocol):
    """Deterministic state built from log records, in log order."""

    def apply(self, topic: str, key: bytes, value: bytes | None) -> None:
        """Fold one record; raises ``CorruptRecord`` for one it cannot read."""
        ...


class StateFold:
    """Several folds read from one log: each ignores the topics that are not its own."""

    def __init__(self, *parts: Folder) -> None:
        self._parts = parts

    def apply(self, topic: str, key: bytes, value: bytes | None) -> None:
        corrupt: CorruptRecord | None = None
        for part in self._parts:
            try:
                part.apply(topic, key, value)
            except CorruptRecord as exc:  # the other parts still see the record
                corrupt = corrupt or exc
        if corrupt is not None:
            raise corrupt


# How long a lookup that found nothing waits for this process's state to catch up with the log
# before it answers: "not found" once caught up, ``StateUnavailable`` (503) if it cannot be.
CONFIRM_ABSENT_TIMEOUT_S = 2.0


class ReaderStatus(msgspec.Struct, frozen=True, kw_only=True):
    """How fresh one process's fold of the state log is (``/health/ready`` shows it)."""

    name: str
    alive: bool  # folding, not restarting nor stopped
    caught_up: bool  # alive, and a recent fetch found nothing newer than the fold
    lag: int | None  # records committed and not yet folded, as of the last fetch
    caught_up_s_ago: float | None
    restarts: int
    corrupt_records: int  # records skipped because no fold could read them
    error: str | None


class StateReader(Protocol):
    """What a lookup asks of the reader behind a fold (``LogReader``; fakes in unit tests)."""

    @property
    def folded(self) -> int:
        """Records folded so far: when it has not moved, the state has not changed."""
        ...

    def status(self) -> ReaderStatus: ...

    async def sync(self, timeout_s: float = 10.0) -> None:
        """Fold everything committed before the call, or raise ``StateUnavailable``."""
        ...


class StateLog(Protocol):
    async def transact(self, decide: Callable[[], tuple[list[Record], T]]) -> T:
        """Call ``decide`` on caught-up state, write its records atomically, await them folded.

        ``decide`` may raise a domain error; then nothing is written.
        """
        ...

    async def sync(self, timeout_s: float = 10.0) -> None:
        """Return once the state includes every record committed before the call.

        Raises ``StateUnavailable`` when it cannot within ``timeout_s``.
        """
        ...


async def confirm_absent(log: StateLog | StateReader) -> None:
    """For a lookup that found nothing: return once this process's state has caught up with the
    log (then "not found" is the true answer), or raise ``StateUnavailable`` (never a 404 from
    state that is behind or no longer read)."""
    await log.sync(CONFIRM_ABSENT_TIMEOUT_S)


class CompleteState:
    """The ``StateReader`` of state that is complete by construction (built in memory, no log):
    always alive and caught up. For unit tests and tools that fill a fold themselves."""

    folded = 0

    def status(self) -> ReaderStatus:
        return ReaderStatus(
            name="in-memory",
            alive=True,
            caught_up=True,
            lag=0,
            caught_up_s_ago=0.0,
            restarts=0,
            corrupt_records=0,
            error=None,
        )

    async def sync(self, timeout_s: float = 10.0) -> None:
        return None


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

    async def sync(self, timeout_s: float = 10.0) -> None:
        return None
