"""The preview's mapping without Kafka: the table evolves as the sink evolves it, rows and files
follow the sinks' own functions."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from inlet.model.avro import avro_schema
from inlet.model.fields import FieldSpec
from inlet.model.pipelines import FilesSink, PostgresSink
from inlet.sink_layout.columns import record_columns
from registry.pipeline_preview import files_preview, postgres_preview
from registry.records_api import TypedRecord

V1 = record_columns(
    avro_schema(
        "Rec",
        [
            FieldSpec(name="id", type="string"),
            FieldSpec(name="total", type="decimal", precision=10, scale=2),
            FieldSpec(name="gone", type="integer"),
        ],
    )
)
# A compatible edit: "gone" dropped, "extra" added (nullable), "obj" an object (jsonb).
V2 = record_columns(
    avro_schema(
        "Rec",
        [
            FieldSpec(name="id", type="string"),
            FieldSpec(name="total", type="decimal", precision=10, scale=2),
            FieldSpec(name="extra", type="string", nullable=True),
            FieldSpec(name="obj", type="object", fields=[FieldSpec(name="x", type="integer")]),
        ],
    )
)
AT = int(datetime(2026, 3, 1, 12, tzinfo=UTC).timestamp() * 1000)
RECORDS = [
    TypedRecord(0, 0, AT, 1, {"id": "a", "total": Decimal("1.50"), "gone": 7}),
    TypedRecord(0, 1, AT, 2, {"id": "b", "total": Decimal("2.00"), "extra": "e", "obj": {"x": 1}}),
]


def test_postgres_preview_adds_and_relaxes_columns_as_the_sink_does() -> None:
    sink = PostgresSink(dsn="host=h password=secret", table="orders")
    preview = postgres_preview(sink, V1, {1: V1, 2: V2}, RECORDS, 2)
    assert preview.table is not None
    assert [(c.name, c.type, c.nullable) for c in preview.table.columns] == [
        ("_inlet_partition", "integer", False),
        ("_inlet_offset", "bigint", False),
        ("_inlet_received_at", "timestamptz", True),
        ("id", "text", False),
        ("total", "numeric(10,2)", False),
        ("gone", "bigint", True),  # a newer schema dropped it: NOT NULL relaxed
        ("extra", "text", True),  # added by the newer schema: nullable
        ("obj", "jsonb", True),
    ]
    assert preview.rows == [
        {
            "_inlet_partition": 0,
            "_inlet_offset": 0,
            "_inlet_received_at": "2026-03-01T12:00:00Z",
            "id": "a",
            "total": "1.50",
            "gone": 7,
            "extra": None,
            "obj": None,
        },
        {
            "_inlet_partition": 0,
            "_inlet_offset": 1,
            "_inlet_received_at": "2026-03-01T12:00:00Z",
            "id": "b",
            "total": "2.00",
            "gone": None,
            "extra": "e",
            "obj": {"x": 1},
        },
    ]
    assert "secret" not in str(preview)


def test_files_preview_names_a_file_and_shows_rows_or_lines() -> None:
    parquet = files_preview(FilesSink(directory="lake"), {1: V1, 2: V2}, RECORDS, 2)
    assert parquet.files is not None
    # One file per schema for Parquet: the first holds offset 0 only.
    assert parquet.files.example_name == "dt=2026-03-01/p0-000000000000-000000000000.parquet"
    assert parquet.files.columns is not None
    assert [c.name for c in parquet.files.columns][3:] == ["id", "total", "gone"]
    assert parquet.rows is not None
    assert parquet.rows[0]["total"] == "1.50"
    ndjson = files_preview(FilesSink(directory="lake", format="ndjson"), {1: V1, 2: V2}, RECORDS, 2)
    assert ndjson.files is not None
    assert ndjson.files.example_name == "dt=2026-03-01/p0-000000000000-000000000001.ndjson"
    assert ndjson.files.columns is None
    assert ndjson.lines is not None
    assert ndjson.lines[1].startswith('{"_inlet_partition":0,"_inlet_offset":1,')


def test_a_keyed_postgres_preview_shows_the_key_column_and_each_rows_key() -> None:
    # A connector with ``dedup``: the sink adds the key column, filled from each record's header.
    sink = PostgresSink(dsn="host=h", table="orders")
    keyed = [r._replace(dedup_key=f"evt_{r.offset}") for r in RECORDS[:1]]
    preview = postgres_preview(
        sink, V1, {1: V1}, [*keyed, RECORDS[0]._replace(offset=5)], 2, keyed=True
    )
    assert preview.table is not None
    names = [(c.name, c.type, c.nullable) for c in preview.table.columns]
    assert names[:4] == [
        ("_inlet_partition", "integer", False),
        ("_inlet_offset", "bigint", False),
        ("_inlet_received_at", "timestamptz", True),
        ("_inlet_dedup_key", "text", True),  # a record without the header: NULL, never a conflict
    ]
    assert preview.rows is not None
    assert [(r["_inlet_offset"], r["_inlet_dedup_key"]) for r in preview.rows] == [
        (0, "evt_0"),
        (5, None),
    ]
    unkeyed = postgres_preview(sink, V1, {1: V1}, keyed, 1)
    assert unkeyed.rows is not None
    assert "_inlet_dedup_key" not in unkeyed.rows[0]
