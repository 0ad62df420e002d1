"""The pure half of a replay: which kept (rejected) records a connector's current schema accepts.

Each kept record is checked alone, with the gateway's own codec (``inlet.codec.record_codec``)
and the rules of its body format: a JSON record as JSON (its original bytes, so a decimal stays
exact), a CSV row with CSV's lax conversion of cells. What passes becomes a record for the
connector topic, keeping the request id and received-at of the request that sent it; what still
fails is kept again with its new reasons, pointing back at the record it was. No I/O:
``registry/replay.py`` reads and writes Kafka around it.
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from inlet.codec.bodies import BodyFormat, CsvRecords, JsonRecords, RecordBatch
from inlet.codec.record_codec import RecordCodec
from inlet.records import RecordError, RejectedRecord


class KeptRecord(NamedTuple):
    """A record of the rejected topic, where it is."""

    partition: int
    offset: int
    value: bytes | None

    @property
    def at(self) -> str:
        return f"{self.partition}:{self.offset}"


class _Kept(msgspec.Struct, frozen=True):
    """What a replay reads of a ``RejectedRecord``: the record as its original bytes."""

    request_id: str
    received_at_ms: int
    content_type: str
    record: msgspec.Raw


class Replayed(NamedTuple):
    """A kept record the schema now accepts: what to produce to the connector topic."""

    source: KeptRecord
    key: bytes | None
    value: bytes  # Confluent wire format
    request_id: str
    received_at_ms: int


class StillRejected(msgspec.Struct, frozen=True):
    """A kept record the schema still refuses, and why (pointers into the record alone)."""

    partition: int
    offset: int
    request_id: str
    errors: list[RecordError]


class ReplayPlan(NamedTuple):
    accepted: list[Replayed]
    rejected: list[tuple[StillRejected, RejectedRecord]]  # the answer's entry, what to keep
    unreadable: list[KeptRecord]  # not a kept record at all: left where it is


_kept_decoder = msgspec.json.Decoder(_Kept)
_row_decoder = msgspec.json.Decoder(dict[str, str])


def plan_replay(kept: list[KeptRecord], codec: RecordCodec, connector_id: str) -> ReplayPlan:
    plan = ReplayPlan([], [], [])
    for source in kept:
        try:
            record = _kept_decoder.decode(source.value or b"")
            batch = _batch(record)
        except msgspec.DecodeError:
            plan.unreadable.append(source)
            continue
        result = codec.encode(batch)
        if result.records:
            [(_index, key, value)] = result.records
            plan.accepted.append(
                Replayed(source, key, value, record.request_id, record.received_at_ms)
            )
            continue
        # Never empty: the codec gives every rejected record a reason.
        errors = [msgspec.structs.replace(error, line=None) for error in result.errors]
        again = RejectedRecord(
            connector_id=connector_id,
            request_id=record.request_id,
            received_at_ms=record.received_at_ms,
            schema_id=codec.schema_id,
            schema_version=codec.schema_version,
            content_type=record.content_type,
            record=record.record,
            errors=errors,
            replay_of=source.at,
        )
        answer = StillRejected(source.partition, source.offset, record.request_id, errors)
        plan.rejected.append((answer, again))
    return plan


def _batch(kept: _Kept) -> RecordBatch:
    """The kept record as a one-record body of its original format."""
    if kept.content_type.split(";", 1)[0].strip().lower() == "text/csv":
        row = _row_decoder.decode(kept.record)
        return CsvRecords(header=list(row), rows=[row], lines=[1])
    return JsonRecords(BodyFormat.JSON, [kept.record])
