"""Where pipeline feeds deliver: the contract every sink keeps.

A sink owns the truth of how far its feed got: the next offset per partition is stored *with the
data* (PostgreSQL: an offsets row updated in the transaction that writes the rows; files: the
offset range in each file's name, made visible by an atomic rename). A feed seeks to those
offsets when it is given partitions, never to the consumer group's committed offsets, so a crash
at any point neither loses nor repeats a record. See ``consumers/sinks/README.md``.

Calls come from one thread (the feed's), in this order: ``start``, then any number of
``positions`` / ``write`` / ``tick`` / ``release``, then ``close``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from inlet.codec.wire import Headers
from inlet.sink_layout.columns import Column


class FeedRecord(NamedTuple):
    """One record of a connector topic, decoded (``WireDecoder.decode_typed``), with its origin."""

    partition: int
    offset: int
    key: bytes | None
    headers: Headers
    raw: bytes | None  # the value as on Kafka, kept for the dead-letter topic
    received_at_ms: int | None
    request_id: str | None
    schema_id: int
    value: dict[str, Any]
    dedup_key: str | None = None  # the ``inlet-dedup-key`` header (``dedup_key``)


class DeadLetter(NamedTuple):
    """A record a sink cannot take, and why: goes to the pipeline's dead-letter topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    reason: str


class Batch(NamedTuple):
    """Consumed records, in order: those decoded, those that could not be, and where each
    partition's consumption ended (the offset after its last record, decoded or not)."""

    records: list[FeedRecord]
    undecodable: list[DeadLetter]
    ends: dict[int, int]


class Position(NamedTuple):
    """How far a sink got on one partition: the next offset (None: from the beginning), how
    many records it holds from that partition, and how many it skipped as duplicates (a key it
    already held: the PostgreSQL sink of a connector with ``dedup``)."""

    next_offset: int | None
    delivered: int
    skipped: int = 0


# Sends dead letters and returns once Kafka has them all (raises if it could not).
DeadLetterFn = Callable[[list[DeadLetter]], None]


class SinkFenced(Exception):
    """Another worker advanced a partition this one thought it owned: start over from the sink."""


class Sink(Protocol):
    def start(self, columns: list[Column]) -> None:
        """Connect and prepare (``columns``: the connector's current schema)."""
        ...

    def positions(self, partitions: list[int]) -> dict[int, Position]:
        """Take ownership of ``partitions`` and say where each one's feed resumes."""
        ...

    def write(self, batch: Batch, dead_letter: DeadLetterFn) -> dict[int, Position]:
        """Deliver ``batch``; records the sink cannot take go through ``dead_letter`` before the
        offsets past them are stored. Returns the positions that became durable in this call."""
        ...

    def tick(self) -> dict[int, Position]:
        """Called between batches: do time-based work (roll files). Returns new positions."""
        ...

    def release(self, partitions: list[int]) -> dict[int, Position]:
        """Make buffered records of ``partitions`` durable and give the partitions up."""
        ...

    def close(self) -> None: ...
