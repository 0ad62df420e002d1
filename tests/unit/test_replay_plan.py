"""Which kept records a fixed schema accepts: the pure half of a replay, no Kafka."""

from __future__ import annotations

import io
from decimal import Decimal

import fastavro
import msgspec

from inlet.codec.bodies import parse_body
from inlet.codec.record_codec import RecordCodec
from inlet.model.avro import avro_schema
from inlet.records import RejectedRecord
from registry.replay_plan import KeptRecord, plan_replay
from tests.unit.test_avro import f

FIELDS = [f("id"), f("total", "decimal", precision=12, scale=2), f("qty", "integer", nullable=True)]


def fixed() -> RecordCodec:
    """The codec of the connector's current (fixed) schema: version 2, id 9."""
    return RecordCodec(
        FIELDS, avro_schema("Order", FIELDS), schema_id=9, schema_version=2, key_field="id"
    )


def kept(body: bytes, content_type: str, offset: int = 0) -> KeptRecord:
    """What the gateway keeps for the first record of ``body`` when it is refused."""
    strict = RecordCodec(
        [f("id"), f("never", "boolean")],
        avro_schema("Order", [f("id"), f("never", "boolean")]),
        schema_id=1,
        schema_version=1,
    )
    result = strict.encode(parse_body(body, content_type))
    [rejected] = result.rejected
    value = RejectedRecord(
        connector_id="con_1",
        request_id="req-1",
        received_at_ms=1_700_000_000_000,
        schema_id=1,
        schema_version=1,
        content_type=content_type,
        record=msgspec.Raw(rejected.raw),
        errors=list(rejected.errors),
    )
    return KeptRecord(0, offset, msgspec.json.encode(value))


def read(value: bytes) -> object:
    schema = fastavro.parse_schema(avro_schema("Order", FIELDS))
    return fastavro.schemaless_reader(io.BytesIO(value[5:]), schema, schema)


def test_what_the_schema_now_accepts_is_encoded_with_its_origin() -> None:
    json_record = kept(b'[{"id": "a", "total": 1234567890.12}]', "application/json", offset=4)
    csv_row = kept(b"id,total,qty\nb,7.5,3\n", "text/csv", offset=5)
    plan = plan_replay([json_record, csv_row], fixed(), "con_1")
    assert plan.rejected == []
    assert plan.unreadable == []
    first, second = plan.accepted
    assert (first.source, first.key, first.request_id) == (json_record, b"a", "req-1")
    assert first.received_at_ms == 1_700_000_000_000
    assert first.value[:5] == b"\x00\x00\x00\x00\x09"  # the current schema's id
    # Exact: the kept bytes, never a float.
    assert read(first.value) == {"id": "a", "total": Decimal("1234567890.12"), "qty": None}
    assert read(second.value) == {"id": "b", "total": Decimal("7.50"), "qty": 3}  # CSV's cells


def test_what_still_fails_is_kept_again_with_new_reasons() -> None:
    source = kept(b'{"id": "a", "total": "lots"}\n', "application/x-ndjson", offset=7)
    plan = plan_replay([source], fixed(), "con_1")
    assert plan.accepted == []
    [(answer, again)] = plan.rejected
    assert (answer.partition, answer.offset, answer.request_id) == (0, 7, "req-1")
    assert [(e.index, e.pointer, e.field, e.line) for e in answer.errors] == [
        (0, "/0/total", "total", None)  # about the record alone; its old line means nothing
    ]
    assert again.errors == answer.errors
    assert (again.replay_of, again.schema_id, again.schema_version) == ("0:7", 9, 2)
    assert msgspec.json.encode(again.record) == b'{"id": "a", "total": "lots"}'


def test_a_value_that_is_no_kept_record_is_left_alone() -> None:
    plan = plan_replay([KeptRecord(0, 1, b"not json"), KeptRecord(0, 2, None)], fixed(), "con_1")
    assert plan.unreadable == [KeptRecord(0, 1, b"not json"), KeptRecord(0, 2, None)]
    assert (plan.accepted, plan.rejected) == ([], [])
