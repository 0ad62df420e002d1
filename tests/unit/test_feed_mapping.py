"""The pure parts of pipeline feeds: column types, file names and offsets, cursors, DSN masks."""

from __future__ import annotations

import base64
import gc
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pyarrow as pa
import pytest

from consumers._feed import collector_paused
from consumers.sinks import FeedRecord
from inlet.errors import InvalidCursor
from inlet.model.avro import avro_schema
from inlet.model.fields import FieldSpec
from inlet.model.pipeline_sinks import default_table, sink_identity
from inlet.model.pipelines import FilesSink, PostgresSink
from inlet.sink_layout.columns import Column, record_columns
from inlet.sink_layout.file_names import (
    FileRange,
    date_directory,
    file_name,
    next_offsets,
    parse_file_name,
    received_day,
)
from inlet.sink_layout.file_rows import arrow_columns, arrow_schema
from inlet.sink_layout.postgres import (
    column_name,
    copy_columns,
    copy_types,
    is_json,
    pg_type,
    row_maker,
    row_values,
    table_columns,
)
from registry.records_api import decode_cursor, encode_cursor

FIELDS = [
    FieldSpec(name="s", type="string"),
    FieldSpec(name="i", type="integer"),
    FieldSpec(name="f", type="float"),
    FieldSpec(name="b", type="boolean"),
    FieldSpec(name="d", type="date"),
    FieldSpec(name="dt", type="datetime"),
    FieldSpec(name="t", type="time"),
    FieldSpec(name="dec", type="decimal", precision=12, scale=3),
    FieldSpec(name="u", type="uuid"),
    FieldSpec(name="e", type="enum", symbols=["a", "b"]),
    FieldSpec(name="tags", type="array", items="string"),
    FieldSpec(name="days", type="array", items="date", nullable=True),
    FieldSpec(name="obj", type="object", fields=[FieldSpec(name="x", type="integer")]),
    FieldSpec(name="order-id", type="string", nullable=True),
]


def _columns() -> list[Column]:
    return record_columns(avro_schema("Rec", FIELDS))


def test_postgres_types_follow_field_types_exactly() -> None:
    assert [(c.name, pg_type(c), c.nullable) for c in _columns()] == [
        ("s", "text", False),
        ("i", "bigint", False),
        ("f", "double precision", False),
        ("b", "boolean", False),
        ("d", "date", False),
        ("dt", "timestamptz", False),
        ("t", "time", False),
        ("dec", "numeric(12,3)", False),
        ("u", "uuid", False),
        ("e", "text", False),
        ("tags", "text[]", False),
        ("days", "date[]", True),
        ("obj", "jsonb", False),
        ("order_id", "text", True),  # the Avro name: what decoded records are keyed by
    ]
    assert [c.name for c in _columns() if is_json(c)] == ["obj"]


def test_binary_copy_sends_each_value_as_its_columns_type_without_a_precision() -> None:
    columns = _columns()
    fields = {column_name(c.name): c for c in columns}
    made = {c.name: c.type for c in table_columns(columns, keyed=True)}
    copied = copy_columns(fields, made)
    assert copy_types(copied, keyed=True) == [
        *("integer", "bigint", "timestamptz", "text"),  # partition, offset, received at, key
        *("text", "bigint", "double precision", "boolean", "date", "timestamptz", "time"),
        *("numeric", "uuid", "text", "text[]", "date[]", "jsonb", "text"),
    ]
    assert copy_types(copied, keyed=False)[:4] == ["integer", "bigint", "timestamptz", "text"]
    # A column made jsonb (by hand, or by an older version) takes any field's values as JSON.
    copied = copy_columns(fields, {**made, "s": "jsonb"})
    assert [(c.name, c.as_json, c.type) for c in copied[:2]] == [
        ("s", True, "jsonb"),
        ("i", False, "bigint"),
    ]


def _typed_record(offset: int, schema_id: int, value: dict[str, object]) -> FeedRecord:
    return FeedRecord(0, offset, None, [], b"raw", 1_772_366_400_123, None, schema_id, value)


def test_a_row_maker_makes_the_rows_row_values_makes() -> None:
    columns = _columns()
    fields = {column_name(c.name): c for c in columns}
    copied = copy_columns(fields, {c.name: c.type for c in table_columns(columns)})
    value: dict[str, object] = {
        "s": "x", "i": 1, "f": 0.5, "b": True, "d": date(2026, 3, 1),
        "dt": datetime(2026, 3, 1, tzinfo=UTC), "t": None, "dec": Decimal("1.250"),
        "u": uuid.UUID(int=1), "e": "a", "tags": ["p", "q"], "days": None, "obj": {"x": 1},
        "order_id": None,
    }  # fmt: skip
    older = {k: v for k, v in value.items() if k not in {"tags", "obj"}}  # before two fields
    records = [
        _typed_record(0, 1, value),
        _typed_record(1, 1, value)._replace(received_at_ms=None, dedup_key="k"),
    ]
    for keyed in (False, True):
        expected = [row_values(r, copied, lambda v: v, keyed=keyed) for r in records]
        assert row_maker(copied, set(value), keyed=keyed)(records) == expected
        old = [r._replace(value=older) for r in records]
        expected = [row_values(r, copied, lambda v: v, keyed=keyed) for r in old]
        assert row_maker(copied, set(older), keyed=keyed)(old) == expected
        # A record that lacks a field its schema names (no decoder makes one) still gets a row.
        assert row_maker(copied, set(value), keyed=keyed)(old) == expected
    assert expected[0][2] == datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
    one = copy_columns({"s": fields["s"]}, {"s": "text"})
    assert row_maker(one, {"s"})(records[:1]) == [(0, 0, expected[0][2], "x")]
    assert row_maker([], {"s"})(records[:1]) == [(0, 0, expected[0][2])]


def test_avro_types_inlet_does_not_make_are_kept_as_json() -> None:
    schema = {
        "type": "record",
        "name": "R",
        "fields": [
            {"name": "m", "type": {"type": "map", "values": "long"}},
            {"name": "x", "type": ["null", "string", "long"]},
            {"name": "raw", "type": "bytes"},
            {"name": "n", "type": {"type": "int"}},
        ],
    }
    columns = record_columns(schema)
    assert [(c.kind, pg_type(c), c.nullable) for c in columns] == [
        ("other", "jsonb", False),
        ("other", "jsonb", True),
        ("other", "jsonb", False),
        ("integer", "bigint", False),
    ]


def test_long_names_get_a_prefix_and_a_hash() -> None:
    short = "a" * 63
    assert column_name(short) == short
    long_a, long_b = "x" * 70 + "a", "x" * 70 + "b"
    assert len(column_name(long_a)) == 63
    assert column_name(long_a) != column_name(long_b)
    assert column_name(long_a) == column_name(long_a)


def test_arrow_schema_follows_field_types() -> None:
    schema = arrow_schema(_columns())
    assert schema.names[:3] == ["_inlet_partition", "_inlet_offset", "_inlet_received_at"]
    types = {f.name: f.type for f in schema}
    assert types["dec"] == pa.decimal128(12, 3)
    assert types["dt"] == pa.timestamp("us", tz="UTC")
    assert types["t"] == pa.time64("us")
    assert types["d"] == pa.date32()
    assert types["obj"] == pa.struct([pa.field("x", pa.int64(), nullable=False)])
    assert types["tags"] == pa.list_(pa.field("item", pa.string(), nullable=False))
    assert not schema.field("s").nullable
    assert schema.field("order_id").nullable


def test_file_names_carry_partition_and_offset_range() -> None:
    name = file_name(2, 100, 199, "parquet")
    assert name == "p2-000000000100-000000000199.parquet"
    assert parse_file_name(name, "parquet") == FileRange(2, 100, 199)
    assert parse_file_name(name, "ndjson") is None
    assert parse_file_name("p2-000000000100.0a1b.tmp", "parquet") is None
    big = file_name(0, 10**13, 10**13 + 5, "ndjson")  # wider than 12 digits still parses
    assert parse_file_name(big, "ndjson") == FileRange(0, 10**13, 10**13 + 5)
    assert date_directory(date(2026, 3, 1)) == "dt=2026-03-01"
    assert received_day(1_772_409_599_999) == date(2026, 3, 1)  # 23:59:59.999 UTC
    assert received_day(1_772_409_600_000) == date(2026, 3, 2)


def test_next_offsets_is_the_largest_end_plus_one() -> None:
    ranges = [
        FileRange(0, 0, 99),
        FileRange(0, 100, 149),
        FileRange(1, 0, 9),
        FileRange(0, 150, 150),
    ]
    assert next_offsets(ranges) == {0: 151, 1: 10}
    assert next_offsets([]) == {}


def test_cursor_round_trip_and_refusals() -> None:
    cursor = encode_cursor("con_1", {1: 40, 0: 12})
    assert "=" not in cursor
    assert decode_cursor("con_1", cursor) == {0: 12, 1: 40}
    assert decode_cursor("con_1", None) == {}
    with pytest.raises(InvalidCursor):
        decode_cursor("con_2", cursor)  # another connector's cursor
    for bad in ("!!!", base64.urlsafe_b64encode(b'{"c":"con_1","p":{"0":-1}}').decode(), ""):
        with pytest.raises(InvalidCursor):
            decode_cursor("con_1", bad)


def test_default_table_and_identity() -> None:
    assert default_table("Orders → PG!") == "orders_pg"
    assert default_table("2024 orders") == "pipeline_2024_orders"
    assert len(default_table("x" * 200)) == 63
    a = PostgresSink(dsn="host=h dbname=d password=1", table="t")
    b = PostgresSink(dsn="host=h dbname=d password=2", table="public.t")
    assert sink_identity(a) == sink_identity(b)  # one table, whatever the credentials
    assert sink_identity(FilesSink(directory="/x/y/")) == sink_identity(FilesSink(directory="/x/y"))


def test_parquet_columns_take_uuids_as_objects_or_as_their_text() -> None:
    fields = [
        FieldSpec(name="u", type="uuid", nullable=True),
        FieldSpec(name="us", type="array", items="uuid"),
        FieldSpec(name="obj", type="object", fields=[FieldSpec(name="u", type="uuid")]),
    ]
    columns = record_columns(avro_schema("Rec", fields))
    one = UUID("123e4567-e89b-12d3-a456-426614174abc")
    as_objects: list[list[Any]] = [[one, None], [[one], []], [{"u": one}, {"u": one}]]
    as_text: list[list[Any]] = [
        [str(one), None],
        [[str(one)], []],
        [{"u": str(one)}, {"u": str(one)}],
    ]
    mixed: list[list[Any]] = [[one, str(one)], [[one, str(one)]], [{"u": str(one)}, {"u": one}]]
    tables = [arrow_columns(columns, values) for values in (as_objects, as_text)]
    assert tables[0] == tables[1]
    assert tables[0][0].to_pylist() == [str(one), None]
    assert arrow_columns(columns, mixed)[0].to_pylist() == [str(one), str(one)]


def test_the_collector_is_paused_while_any_feed_makes_a_batch() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():  # another feed's thread, meanwhile
            assert not gc.isenabled()
        assert not gc.isenabled()  # the first one is still making its batch
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # paused before: left paused
    finally:
        gc.enable()


def test_feeds_that_keep_the_collector_paused_still_collect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("consumers._feed.MAX_PAUSE_S", 0.0)
    collections: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(seen)
    try:
        with collector_paused():
            with collector_paused():  # another feed, paused past MAX_PAUSE_S
                pass
            assert collections == [2]  # the one that left collected, the collector still paused
            assert not gc.isenabled()
    finally:
        gc.callbacks.remove(seen)
    assert gc.isenabled()
