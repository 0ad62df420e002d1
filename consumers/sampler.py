"""Every connector's sample state, advanced record by record: the sample worker's pure core.

Invariant: a record changes a connector's state only if its offset is at or past the position
stored for its partition, and then the position moves past it. Counts and positions live in one
value, so any snapshot of it is exact, and reading a record twice (after a rebalance, a seek or a
restart) never counts it twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

import msgspec

from inlet.codec.wire import UndecodableRecord, UnknownSchema, WireDecoder
from inlet.model.samples import (
    RECENT_REJECTED,
    REQUIRED_SAMPLES,
    ConnectorSamples,
    RejectedSample,
    SampleRecord,
    encode_samples,
)
from inlet.records import HEADER_RECEIVED_AT, HEADER_REQUEST_ID, RejectedRecord, wire_schema_id
from inlet.topics import connector_subject

log = logging.getLogger("inlet.consumers.samples")

# Entries larger than this (as JSON) keep their place but not their content, so that a state of
# 50 samples and 100 rejected records stays well under Kafka's default 1 MB message size.
MAX_SAMPLE_BYTES = 8 * 1024
MAX_REJECTED_BYTES = 4 * 1024
MAX_STATE_BYTES = 900_000

_json = msgspec.json.Encoder()
_rejected_decoder = msgspec.json.Decoder(RejectedRecord)


class KafkaMessage(Protocol):
    """What the sampler reads of a consumed record (aiokafka's ``ConsumerRecord`` has it)."""

    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, str | bytes | None]] | None: ...


class Snapshot(NamedTuple):
    """States to write (None: a tombstone), and which change of each connector they include."""

    values: list[tuple[str, bytes | None]]
    marks: dict[str, int]


class SchemaVersions(Protocol):
    """Versions by subject and schema id (``SchemaState``, ``inlet.schema_lookup``)."""

    def version_of_id(self, subject: str, schema_id: int) -> int | None: ...


def version_in_subject(schemas: SchemaVersions, connector_id: str, schema_id: int) -> int | None:
    """The version of ``schema_id`` under the connector's subject (the latest, if several)."""
    return schemas.version_of_id(connector_subject(connector_id), schema_id)


class Sampler:
    def __init__(
        self,
        decoder: WireDecoder,
        version_of: Callable[[str, int], int | None],
        *,
        required: int = REQUIRED_SAMPLES,
        recent_rejected: int = RECENT_REJECTED,
    ) -> None:
        self._decoder = decoder
        self._version_of = version_of
        self._required = required
        self._recent_rejected = recent_rejected
        self._states: dict[str, ConnectorSamples] = {}
        self._deleted: set[str] = set()
        # connector id -> (number of its latest change, whether its samples changed)
        self._changed: dict[str, tuple[int, bool]] = {}
        self._change_number = 0

    # --- State. ---

    def load(self, states: Iterable[ConnectorSamples]) -> None:
        for state in states:
            self._states[state.connector_id] = state

    def state(self, connector_id: str) -> ConnectorSamples | None:
        return self._states.get(connector_id)

    def position(self, connector_id: str, *, rejected: bool, partition: int) -> int | None:
        state = self._states.get(connector_id)
        if state is None:
            return None
        return (state.rejected_positions if rejected else state.positions).get(partition)

    def forget(self, connector_id: str) -> None:
        """The connector was deleted: drop its state (a tombstone) and ignore its records."""
        self._deleted.add(connector_id)
        if self._states.pop(connector_id, None) is not None:
            self._mark(connector_id, new_sample=False)

    # --- Records. ---

    def missing_schema(self, connector_id: str, message: KafkaMessage) -> int | None:
        """The schema id ``message`` names if it may become a sample but that schema, or its
        version under the connector's subject, is not at hand."""
        state = self._states.get(connector_id)
        if connector_id in self._deleted or message.value is None:
            return None
        if state is not None and len(state.records) >= self._required:
            return None
        try:
            schema_id = wire_schema_id(message.value)
        except ValueError:
            return None
        if self._decoder.knows(schema_id) and self._version_of(connector_id, schema_id) is not None:
            return None
        return schema_id

    def add_valid(self, connector_id: str, message: KafkaMessage) -> bool:
        """Count a record of the connector's topic, and keep it if a sample is still wanted."""
        state = self._count(connector_id, message, rejected=False)
        if state is None:
            return False
        sampled = len(state.records) < self._required and self._sample(state, message)
        self._mark(connector_id, new_sample=sampled)
        return True

    def add_rejected(self, connector_id: str, message: KafkaMessage) -> bool:
        """Count a record of the rejected topic, and keep it among the recent ones. A record a
        replay kept again was counted when it was first rejected: it is not counted twice."""
        entry = _rejected_entry(message)
        again = entry is not None and entry.replay_of is not None
        state = self._count(connector_id, message, rejected=True, tally=not again)
        if state is None:
            return False
        if entry is not None:
            state.recent_rejected.append(entry)
            del state.recent_rejected[: -self._recent_rejected]
        self._mark(connector_id, new_sample=False)
        return True

    def _count(
        self, connector_id: str, message: KafkaMessage, *, rejected: bool, tally: bool = True
    ) -> ConnectorSamples | None:
        """Count ``message`` and move its partition's position past it; None if it does not
        count (its connector is deleted, or it was counted before this re-read)."""
        if connector_id in self._deleted:
            return None
        position = self.position(connector_id, rejected=rejected, partition=message.partition)
        if position is not None and message.offset < position:
            return None
        state = self._states.setdefault(connector_id, ConnectorSamples(connector_id=connector_id))
        if rejected:
            state.rejected += tally
            state.rejected_positions[message.partition] = message.offset + 1
        else:
            state.accepted += 1
            state.positions[message.partition] = message.offset + 1
        return state

    def _sample(self, state: ConnectorSamples, message: KafkaMessage) -> bool:
        if message.value is None:
            return False
        try:
            schema_id, value = self._decoder.decode(message.value)
        except (UnknownSchema, UndecodableRecord) as exc:
            # Counted as accepted (the gateway took it) but not shown: it cannot be read.
            log.warning(
                "skipping an unreadable record",
                extra={
                    "connector_id": state.connector_id,
                    "partition": message.partition,
                    "offset": message.offset,
                    "error": str(exc),
                },
            )
            return False
        truncated = len(_json.encode(value)) > MAX_SAMPLE_BYTES
        state.records.append(
            SampleRecord(
                partition=message.partition,
                offset=message.offset,
                schema_id=schema_id,
                schema_version=self._version_of(state.connector_id, schema_id),
                received_at=_received_at(message),
                request_id=_header(message, HEADER_REQUEST_ID),
                key=None if message.key is None else message.key.decode(errors="replace"),
                value=None if truncated else value,
                truncated=truncated,
            )
        )
        return True

    # --- Writing. ---

    @property
    def has_changes(self) -> bool:
        return bool(self._changed)

    @property
    def has_new_samples(self) -> bool:
        """Whether a sample was added since the last write (the change users wait for)."""
        return any(new_sample for _, new_sample in self._changed.values())

    def snapshot(self) -> Snapshot:
        values: list[tuple[str, bytes | None]] = []
        for connector_id in sorted(self._changed):
            state = self._states.get(connector_id)
            values.append((connector_id, None if state is None else _encode_bounded(state)))
        return Snapshot(values, {cid: number for cid, (number, _) in self._changed.items()})

    def written(self, snapshot: Snapshot) -> None:
        """``snapshot`` is committed: forget the changes it holds (not ones made since)."""
        for connector_id, number in snapshot.marks.items():
            if self._changed.get(connector_id, (None, False))[0] == number:
                del self._changed[connector_id]

    def _mark(self, connector_id: str, *, new_sample: bool) -> None:
        self._change_number += 1
        previous = self._changed.get(connector_id)
        new_sample = new_sample or (previous is not None and previous[1])
        self._changed[connector_id] = (self._change_number, new_sample)


def _rejected_entry(message: KafkaMessage) -> RejectedSample | None:
    if message.value is None:
        return None
    try:
        rejected = _rejected_decoder.decode(message.value)
    except msgspec.DecodeError as exc:
        log.warning(
            "skipping an unreadable rejected record",
            extra={"partition": message.partition, "offset": message.offset, "error": str(exc)},
        )
        return None
    truncated = len(message.value) > MAX_REJECTED_BYTES
    return RejectedSample(
        partition=message.partition,
        offset=message.offset,
        received_at=datetime.fromtimestamp(rejected.received_at_ms / 1000, UTC),
        request_id=rejected.request_id,
        schema_id=rejected.schema_id,
        schema_version=rejected.schema_version,
        content_type=rejected.content_type,
        record=None if truncated else rejected.record,
        errors=rejected.errors,
        truncated=truncated,
        replay_of=rejected.replay_of,
    )


def _header(message: KafkaMessage, name: str) -> str | None:
    for key, value in message.headers or ():
        if key == name:
            return value.decode(errors="replace") if isinstance(value, bytes) else value
    return None


def _received_at(message: KafkaMessage) -> datetime:
    """When the gateway received the record (its header), else the record's Kafka timestamp."""
    raw = _header(message, HEADER_RECEIVED_AT)
    millis = int(raw) if raw is not None and raw.isdigit() else message.timestamp
    return datetime.fromtimestamp(millis / 1000, UTC)


def _encode_bounded(state: ConnectorSamples) -> bytes:
    encoded = encode_samples(state)
    # The per-entry limits keep states small; this is the backstop for the rest (huge errors
    # lists): the oldest rejected records go first, and the count still says how many there were.
    while len(encoded) > MAX_STATE_BYTES and state.recent_rejected:
        del state.recent_rejected[: max(1, len(state.recent_rejected) // 2)]
        encoded = encode_samples(state)
    return encoded
