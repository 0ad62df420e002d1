"""Samples without Kafka: wire decoding to JSON values, the sampler's first-50 and exact counts,
the ``_inlet_samples`` fold, and saving a connector."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import pytest
from fastavro import parse_schema, schemaless_writer

from consumers.sampler import MAX_SAMPLE_BYTES, Sampler, version_in_subject
from inlet.codec.wire import UndecodableRecord, UnknownSchema, WireDecoder
from inlet.errors import ConnectorNotFound
from inlet.model.avro import avro_schema, schema_json
from inlet.model.connectors import Connector, connector_record_value
from inlet.model.fields import FieldSpec
from inlet.model.samples import (
    ConnectorSamples,
    SampleState,
    decode_samples,
    encode_samples,
)
from inlet.model.schemas import SchemaState, SchemaVersion, schema_record
from inlet.records import (
    HEADER_RECEIVED_AT,
    HEADER_REQUEST_ID,
    RecordError,
    RecordErrorCode,
    RejectedRecord,
    wire_frame,
)
from inlet.settings import Settings
from inlet.statelog.fold import InMemoryStateLog
from inlet.topics import CONNECTORS_TOPIC, SAMPLES_TOPIC, connector_topic, value_subject
from registry.errors import NotEnoughSamples
from tests.registry_app import InMemoryRegistry

CONNECTOR = "con_00000000000000aa"
ALL_TYPES = [
    FieldSpec(name="id", type="string"),
    FieldSpec(name="count", type="integer"),
    FieldSpec(name="ratio", type="float"),
    FieldSpec(name="paid", type="boolean"),
    FieldSpec(name="day", type="date"),
    FieldSpec(name="at", type="datetime"),
    FieldSpec(name="clock", type="time"),
    FieldSpec(name="total", type="decimal", precision=10, scale=2),
    FieldSpec(name="ref", type="uuid"),
    FieldSpec(name="status", type="enum", symbols=["NEW", "PAID"]),
    FieldSpec(name="tags", type="array", items="string"),
    FieldSpec(name="days", type="array", items="date"),
    FieldSpec(
        name="customer",
        type="object",
        fields=[FieldSpec(name="name", type="string"), FieldSpec(name="since", type="datetime")],
    ),
    FieldSpec(name="note", type="string", nullable=True),
    FieldSpec(name="order-id", type="string"),
]
REF = uuid.UUID("12345678-1234-5678-1234-567812345678")


def _text(fields: list[FieldSpec]) -> str:
    return schema_json(avro_schema("Order", fields))


def _frame(schema_id: int, schema_text: str, record: dict[str, Any]) -> bytes:
    body = io.BytesIO()
    schemaless_writer(body, parse_schema(json.loads(schema_text)), record)
    return wire_frame(schema_id, body.getvalue())


def _full_record(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": "o-1",
        "count": 3,
        "ratio": 0.5,
        "paid": True,
        "day": date(2026, 1, 2),
        "at": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        "clock": time(12, 34, 56, 789000),
        "total": Decimal("12.30"),
        "ref": REF,
        "status": "PAID",
        "tags": ["a", "b"],
        "days": [date(2026, 2, 1)],
        "customer": {"name": "Ann", "since": datetime(2020, 1, 1, tzinfo=UTC)},
        "note": None,
        "order_id": "x-9",
    }
    record.update(overrides)
    return record


# --- Decoding. ---


def test_every_avro_type_decodes_to_json_values() -> None:
    text = _text(ALL_TYPES)
    decoder = WireDecoder({7: text}.get)
    schema_id, value = decoder.decode(_frame(7, text, _full_record(note="hi")))
    assert schema_id == 7
    assert value == {
        "id": "o-1",
        "count": 3,
        "ratio": 0.5,
        "paid": True,
        "day": "2026-01-02",
        "at": "2026-01-02T03:04:05.678901Z",
        "clock": "12:34:56.789000",
        "total": "12.30",
        "ref": str(REF),
        "status": "PAID",
        "tags": ["a", "b"],
        "days": ["2026-02-01"],
        "customer": {"name": "Ann", "since": "2020-01-01T00:00:00Z"},
        "note": "hi",
        "order-id": "x-9",  # the user's name, as sent (Avro's is order_id)
    }
    assert json.loads(json.dumps(value)) == value  # plain JSON, nothing left to convert


def test_nested_objects_show_the_users_names_too() -> None:
    inner = [FieldSpec(name="zip-code", type="string"), FieldSpec(name="city", type="string")]
    fields = [
        FieldSpec(name="ship to", type="object", nullable=True, fields=inner),
        FieldSpec(name="plain", type="object", fields=[FieldSpec(name="a", type="integer")]),
    ]
    text = _text(fields)
    decoder = WireDecoder({7: text}.get)
    sent = {"ship_to": {"zip_code": "1000", "city": "Bern"}, "plain": {"a": 1}}
    assert decoder.decode(_frame(7, text, sent))[1] == {
        "ship to": {"zip-code": "1000", "city": "Bern"},
        "plain": {"a": 1},
    }
    assert decoder.decode(_frame(7, text, {**sent, "ship_to": None}))[1]["ship to"] is None
    # Records read by the sinks keep the Avro names: they are the columns.
    assert decoder.decode_typed(_frame(7, text, sent))[1]["ship_to"] == sent["ship_to"]


def test_null_decodes_to_none() -> None:
    text = _text(ALL_TYPES)
    _, value = WireDecoder({7: text}.get).decode(_frame(7, text, _full_record()))
    assert value["note"] is None


def test_each_schema_is_parsed_once_per_id() -> None:
    text = _text(ALL_TYPES)
    lookups: list[int] = []

    def lookup(schema_id: int) -> str | None:
        lookups.append(schema_id)
        return text

    decoder = WireDecoder(lookup)
    for _ in range(3):
        decoder.decode(_frame(7, text, _full_record()))
    assert lookups == [7]


def test_unknown_schema_and_garbage_are_told_apart() -> None:
    text = _text(ALL_TYPES)
    decoder = WireDecoder({7: text}.get)
    with pytest.raises(UnknownSchema) as unknown:
        decoder.decode(_frame(8, text, _full_record()))
    assert unknown.value.schema_id == 8
    with pytest.raises(UndecodableRecord):
        decoder.decode(b"{not wire format}")
    with pytest.raises(UndecodableRecord):
        decoder.decode(wire_frame(7, b"\x02"))  # truncated body


# --- The sampler. ---


class Msg(NamedTuple):
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp: int = 1_767_225_600_000


FIELDS = [FieldSpec(name="id", type="string"), FieldSpec(name="n", type="integer")]


class World:
    """A schema fold with the connector's subject, and a sampler reading from it."""

    def __init__(self) -> None:
        self.schemas = SchemaState()
        self.text_v1 = _text(FIELDS)
        self.text_v2 = _text([*FIELDS, FieldSpec(name="extra", type="string", nullable=True)])
        self._register(1, 11, self.text_v1)
        self._register(2, 12, self.text_v2)
        self.sampler = self.new_sampler()

    def _register(self, version: int, schema_id: int, text: str) -> None:
        subject = value_subject(connector_topic(CONNECTOR))
        record = schema_record(SchemaVersion(subject, version, schema_id, text))
        self.schemas.apply(record.topic, record.key, record.value)

    def new_sampler(self) -> Sampler:
        def text_of(schema_id: int) -> str | None:
            stored = self.schemas.schema_by_id(schema_id)
            return None if stored is None else stored.schema

        return Sampler(
            WireDecoder(text_of),
            lambda connector_id, schema_id: version_in_subject(
                self.schemas, connector_id, schema_id
            ),
        )

    def valid(
        self,
        offset: int,
        partition: int = 0,
        schema_id: int = 11,
        headers: dict[str, str] | None = None,
    ) -> Msg:
        text = self.text_v1 if schema_id == 11 else self.text_v2
        record: dict[str, Any] = {"id": f"r{offset}", "n": offset}
        if schema_id == 12:
            record["extra"] = "x"
        encoded = tuple((name, v.encode()) for name, v in (headers or {}).items())
        return Msg(partition, offset, _frame(schema_id, text, record), b"k", encoded)


def _rejected(offset: int, reason: str = "must be an integer", replay_of: str | None = None) -> Msg:
    record = RejectedRecord(
        connector_id=CONNECTOR,
        request_id=f"req-{offset}",
        received_at_ms=1_767_225_600_123,
        schema_id=11,
        schema_version=1,
        content_type="application/json",
        record={"id": "x", "n": "nope"},
        errors=[RecordError(0, "/0/n", "n", RecordErrorCode.WRONG_TYPE, reason)],
        replay_of=replay_of,
    )
    return Msg(0, offset, msgspec.json.encode(record))


@pytest.fixture
def world() -> World:
    return World()


def test_keeps_the_first_50_and_counts_every_record(world: World) -> None:
    for offset in range(70):
        assert world.sampler.add_valid(CONNECTOR, world.valid(offset))
    state = world.sampler.state(CONNECTOR)
    assert state is not None
    assert state.accepted == 70
    assert [r.offset for r in state.records] == list(range(50))
    assert state.positions == {0: 70}


def test_sample_records_carry_where_and_when(world: World) -> None:
    headers = {HEADER_REQUEST_ID: "req-1", HEADER_RECEIVED_AT: "1767225600123"}
    message = world.valid(3, partition=2, headers=headers)
    world.sampler.add_valid(CONNECTOR, message)
    state = world.sampler.state(CONNECTOR)
    assert state is not None
    sample = state.records[0]
    assert (sample.partition, sample.offset, sample.schema_id, sample.schema_version) == (
        2,
        3,
        11,
        1,
    )
    assert sample.request_id == "req-1"
    assert sample.key == "k"
    assert sample.received_at == datetime(2026, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)
    assert sample.value == {"id": "r3", "n": 3}


def test_records_are_decoded_with_the_schema_they_were_written_with(world: World) -> None:
    world.sampler.add_valid(CONNECTOR, world.valid(0, schema_id=11))
    world.sampler.add_valid(CONNECTOR, world.valid(1, schema_id=12))
    state = world.sampler.state(CONNECTOR)
    assert state is not None
    assert [(r.schema_id, r.schema_version) for r in state.records] == [(11, 1), (12, 2)]
    assert state.records[0].value == {"id": "r0", "n": 0}
    assert state.records[1].value == {"id": "r1", "n": 1, "extra": "x"}


def test_a_record_read_again_is_not_counted_again(world: World) -> None:
    for offset in range(10):
        world.sampler.add_valid(CONNECTOR, world.valid(offset))
    # A rebalance or seek delivers some of them again, mixed with new ones.
    counted = [world.sampler.add_valid(CONNECTOR, world.valid(o)) for o in range(5, 12)]
    assert counted == [False] * 5 + [True] * 2
    state = world.sampler.state(CONNECTOR)
    assert state is not None
    assert state.accepted == 12
    assert [r.offset for r in state.records] == list(range(12))


def test_a_restart_from_a_snapshot_is_exact(world: World) -> None:
    for offset in range(30):
        world.sampler.add_valid(CONNECTOR, world.valid(offset, partition=offset % 2))
    world.sampler.add_rejected(CONNECTOR, _rejected(0))
    snapshot = world.sampler.snapshot()
    value = dict(snapshot.values)[CONNECTOR]
    assert value is not None

    # Records after the snapshot are processed, but the worker stops before writing them.
    for offset in range(30, 40):
        world.sampler.add_valid(CONNECTOR, world.valid(offset, partition=offset % 2))

    restarted = world.new_sampler()
    restarted.load([decode_samples(value)])
    # (The fake puts even offsets on partition 0 and odd ones on 1.)
    assert restarted.position(CONNECTOR, rejected=False, partition=0) == 29
    assert restarted.position(CONNECTOR, rejected=False, partition=1) == 30
    assert restarted.position(CONNECTOR, rejected=True, partition=0) == 1
    # The consumer re-reads from the start (the worst case): only new offsets count.
    for offset in range(80):
        restarted.add_valid(CONNECTOR, world.valid(offset, partition=offset % 2))
    restarted.add_rejected(CONNECTOR, _rejected(0))
    restarted.add_rejected(CONNECTOR, _rejected(1))
    state = restarted.state(CONNECTOR)
    assert state is not None
    assert (state.accepted, state.rejected) == (80, 2)
    assert [r.offset for r in state.records] == list(range(50))


def test_rejected_records_keep_the_latest_with_reasons() -> None:
    sampler = Sampler(WireDecoder(lambda _: None), lambda _c, _s: None, recent_rejected=3)
    for offset in range(5):
        sampler.add_rejected(CONNECTOR, _rejected(offset, reason=f"bad {offset}"))
    state = sampler.state(CONNECTOR)
    assert state is not None
    assert state.rejected == 5
    assert [r.offset for r in state.recent_rejected] == [2, 3, 4]
    latest = state.recent_rejected[-1]
    assert latest.errors[0].message == "bad 4"
    assert (latest.request_id, latest.record) == ("req-4", {"id": "x", "n": "nope"})
    assert latest.received_at == datetime(2026, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)


def test_a_record_a_replay_kept_again_is_shown_but_not_counted_twice() -> None:
    sampler = Sampler(WireDecoder(lambda _: None), lambda _c, _s: None)
    sampler.add_rejected(CONNECTOR, _rejected(0))
    sampler.add_rejected(CONNECTOR, _rejected(1, reason="still not an integer", replay_of="0:0"))
    state = sampler.state(CONNECTOR)
    assert state is not None
    assert state.rejected == 1
    assert state.rejected_positions == {0: 2}
    assert [(r.offset, r.replay_of) for r in state.recent_rejected] == [(0, None), (1, "0:0")]


def test_unreadable_records_are_counted_but_not_sampled(world: World) -> None:
    world.sampler.add_valid(CONNECTOR, Msg(0, 0, b"garbage"))
    world.sampler.add_valid(CONNECTOR, Msg(0, 1, world.valid(1).value[:7]))  # type: ignore[index]
    world.sampler.add_rejected(CONNECTOR, Msg(0, 0, b"not json"))
    state = world.sampler.state(CONNECTOR)
    assert state is not None
    assert (state.accepted, state.rejected, state.records, state.recent_rejected) == (2, 1, [], [])


def test_a_schema_not_folded_yet_is_reported_before_sampling(world: World) -> None:
    unknown = Msg(0, 0, wire_frame(99, b""))
    assert world.sampler.missing_schema(CONNECTOR, unknown) == 99
    assert world.sampler.missing_schema(CONNECTOR, world.valid(0)) is None
    for offset in range(50):
        world.sampler.add_valid(CONNECTOR, world.valid(offset))
    # With 50 samples nothing more is decoded, so nothing more needs a schema.
    assert world.sampler.missing_schema(CONNECTOR, Msg(0, 50, wire_frame(99, b""))) is None


def test_large_values_keep_their_place_not_their_content(world: World) -> None:
    big = "x" * (MAX_SAMPLE_BYTES + 1)
    frame = _frame(11, world.text_v1, {"id": big, "n": 1})
    world.sampler.add_valid(CONNECTOR, Msg(0, 0, frame))
    state = world.sampler.state(CONNECTOR)
    assert state is not None
    assert (state.records[0].truncated, state.records[0].value) == (True, None)


def test_snapshots_write_only_what_changed_and_keep_later_changes(world: World) -> None:
    other = "con_00000000000000bb"
    world.sampler.add_valid(CONNECTOR, world.valid(0))
    world.sampler.add_rejected(other, _rejected(0))
    assert world.sampler.has_new_samples
    first = world.sampler.snapshot()
    assert [cid for cid, _ in first.values] == [CONNECTOR, other]
    world.sampler.add_rejected(other, _rejected(1))  # while the write is in flight
    world.sampler.written(first)
    assert not world.sampler.has_new_samples  # a rejected record is not a sample
    second = world.sampler.snapshot()
    assert [cid for cid, _ in second.values] == [other]
    world.sampler.written(second)
    assert not world.sampler.has_changes


def test_a_deleted_connector_is_forgotten(world: World) -> None:
    world.sampler.add_valid(CONNECTOR, world.valid(0))
    world.sampler.written(world.sampler.snapshot())
    world.sampler.forget(CONNECTOR)
    assert world.sampler.snapshot().values == [(CONNECTOR, None)]
    assert not world.sampler.add_valid(CONNECTOR, world.valid(1))
    assert world.sampler.state(CONNECTOR) is None


# --- The fold. ---


def test_the_fold_keeps_the_latest_state_per_connector() -> None:
    fold = SampleState()
    first = ConnectorSamples(connector_id=CONNECTOR, accepted=1, positions={0: 1})
    latest = ConnectorSamples(connector_id=CONNECTOR, accepted=2, positions={0: 2})
    key = CONNECTOR.encode()
    fold.apply(SAMPLES_TOPIC, key, encode_samples(first))
    fold.apply(SAMPLES_TOPIC, key, encode_samples(latest))
    fold.apply(CONNECTORS_TOPIC, key, b"not a sample state")  # another fold's topic
    assert fold.get(CONNECTOR) == latest
    assert fold.connector_ids() == [CONNECTOR]
    fold.apply(SAMPLES_TOPIC, key, b"{broken")
    assert fold.get(CONNECTOR) is None  # unreadable: nothing seen, and the fold goes on
    fold.apply(SAMPLES_TOPIC, key, encode_samples(latest))
    fold.apply(SAMPLES_TOPIC, key, None)
    assert fold.get(CONNECTOR) is None
    assert fold.connector_ids() == []


def test_sample_state_round_trips(world: World) -> None:
    for offset in range(3):
        world.sampler.add_valid(CONNECTOR, world.valid(offset))
    world.sampler.add_rejected(CONNECTOR, _rejected(0))
    state = world.sampler.state(CONNECTOR)
    assert state is not None
    assert decode_samples(encode_samples(state)) == state


# --- Saving. ---


START = datetime(2026, 1, 1, tzinfo=UTC)


class Registry:
    def __init__(self, tmp_path: Path) -> None:
        registry = InMemoryRegistry(
            Settings(data_dir=str(tmp_path)), InMemoryStateLog, clock=lambda: START
        )
        self.connectors = registry.state.connectors
        self.samples = registry.state.samples
        self.log = registry.log
        self.service = registry.services.samples
        connector = Connector(
            id=CONNECTOR,
            name="Orders",
            fields=FIELDS,
            topic=connector_topic(CONNECTOR),
            rejected_topic=connector_topic(CONNECTOR) + ".rejected",
            subject=value_subject(connector_topic(CONNECTOR)),
            record_name="Orders",
            schema_id=11,
            schema_version=1,
            token_hash="h",
            created_at=START,
            updated_at=START,
        )
        value = connector_record_value(connector)
        self.connectors.apply(CONNECTORS_TOPIC, CONNECTOR.encode(), value)

    def worker_wrote(self, sampler: Sampler) -> None:
        for connector_id, value in sampler.snapshot().values:
            self.samples.apply(SAMPLES_TOPIC, connector_id.encode(), value)


async def test_save_needs_50_valid_records(world: World, tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    for offset in range(49):
        world.sampler.add_valid(CONNECTOR, world.valid(offset))
    world.sampler.add_rejected(CONNECTOR, _rejected(0))
    registry.worker_wrote(world.sampler)
    with pytest.raises(NotEnoughSamples) as refused:
        await registry.service.save(CONNECTOR)
    assert "1 more valid record is needed" in refused.value.message
    assert refused.value.problems[0].field == "samples"
    assert registry.log.records == []

    world.sampler.add_valid(CONNECTOR, world.valid(49))
    registry.worker_wrote(world.sampler)
    saved = await registry.service.save(CONNECTOR)
    assert saved.status == "saved"
    assert registry.connectors.by_id[CONNECTOR].status == "saved"
    again = await registry.service.save(CONNECTOR)  # idempotent, and writes nothing more
    assert again.status == "saved"
    assert len(registry.log.records) == 1

    progress = registry.service.progress(CONNECTOR)
    assert (progress.counts.accepted, progress.counts.rejected) == (50, 1)
    assert (progress.samples.count, progress.samples.required) == (50, 50)
    page = await registry.service.samples(CONNECTOR)
    assert (page.required, page.count, len(page.records)) == (50, 50, 50)
    rejected = await registry.service.rejected(CONNECTOR)
    assert (rejected.count, [r.offset for r in rejected.records]) == (1, [0])


async def test_nothing_seen_yet_and_unknown_connectors(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    with pytest.raises(NotEnoughSamples) as refused:
        await registry.service.save(CONNECTOR)
    assert "50 more valid records are needed" in refused.value.message
    assert (await registry.service.samples(CONNECTOR)).count == 0
    assert (await registry.service.rejected(CONNECTOR)).records == []
    with pytest.raises(ConnectorNotFound):
        await registry.service.samples("con_ffffffffffffffff")
    with pytest.raises(ConnectorNotFound):
        await registry.service.save("con_ffffffffffffffff")
