"""What the files sink writes for each record: a row, as an NDJSON line or in a Parquet file.

Rows are the record's fields plus the feed's metadata (``_inlet_partition``, ``_inlet_offset``,
``_inlet_received_at``), named like the PostgreSQL sink's columns. Parquet column types follow the
fields: string -> string, integer -> int64, float -> double, boolean -> bool, date -> date32,
datetime -> timestamp[us, UTC], time -> time64[us], decimal -> decimal128(p, s), uuid and enum ->
string, array -> list, object -> struct; a type Inlet does not generate is kept as a JSON string.
NDJSON lines hold the record's fields as decoded, by msgspec (decimals as strings, times RFC 3339).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
import pyarrow as pa

from inlet.sink_layout import SinkInput
from inlet.sink_layout.columns import Column

PARTITION_FIELD = "_inlet_partition"
OFFSET_FIELD = "_inlet_offset"
RECEIVED_AT_FIELD = "_inlet_received_at"

R = TypeVar("R", bound=SinkInput)

_JSON = msgspec.json.Encoder()
_MS_PER_DAY = 86_400_000
_MS = pa.timestamp("ms", tz="UTC")
_US = pa.timestamp("us", tz="UTC")

_SCALARS: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us", tz="UTC"),
    "time": pa.time64("us"),
    "uuid": pa.string(),
    "enum": pa.string(),
    "other": pa.string(),
}


def arrow_type(column: Column) -> pa.DataType:
    if column.kind == "decimal":
        return pa.decimal128(column.precision or 38, column.scale or 0)
    if column.kind == "array" and column.items is not None:
        return pa.list_(arrow_field(column.items))
    if column.kind == "object":
        return pa.struct([arrow_field(c) for c in column.fields])
    return _SCALARS[column.kind]


def arrow_field(column: Column) -> pa.Field:
    return pa.field(column.name, arrow_type(column), nullable=column.nullable)


def dictionary_columns(columns: list[Column]) -> list[str]:
    """The columns Parquet dictionary-encodes: the enums, whose few symbols repeat. Dictionaries
    on the others (ids, emails, amounts, times: mostly distinct) cost four fifths of the write's
    CPU and made files larger (bench/README.md, Parquet)."""
    return [column.name for column in columns if column.kind == "enum"]


def arrow_schema(columns: list[Column]) -> pa.Schema:
    return pa.schema(
        [
            pa.field(PARTITION_FIELD, pa.int32(), nullable=False),
            pa.field(OFFSET_FIELD, pa.int64(), nullable=False),
            pa.field(RECEIVED_AT_FIELD, pa.timestamp("us", tz="UTC")),
            *(arrow_field(c) for c in columns),
        ]
    )


def arrow_value(column: Column, value: Any) -> Any:
    """``value`` as pyarrow takes it for ``column``: only uuids and JSON-kept values change."""
    if value is None:
        return None
    if column.kind == "uuid":
        return str(value)  # a UUID, or its text already (``WireDecoder(uuid_text=True)``)
    if column.kind == "other":
        return _JSON.encode(value).decode()
    if column.kind == "object":
        return {c.name: arrow_value(c, value.get(c.name)) for c in column.fields}
    if column.kind == "array" and column.items is not None and column.items.kind == "uuid":
        return [str(item) for item in value]
    return value


def _converted(column: Column) -> bool:
    """Whether ``arrow_value`` changes values of ``column`` (else pyarrow takes them as is)."""
    if column.kind in ("uuid", "other"):
        return True
    if column.kind == "object":
        return any(_converted(c) for c in column.fields)
    return column.kind == "array" and column.items is not None and _converted(column.items)


def _uuids_only(column: Column) -> bool:
    """Whether ``arrow_value`` changes values of ``column`` only by turning UUIDs into text."""
    if column.kind == "uuid":
        return True
    if column.kind == "object":
        converted = [c for c in column.fields if _converted(c)]
        return bool(converted) and all(_uuids_only(c) for c in converted)
    return column.kind == "array" and column.items is not None and _uuids_only(column.items)


def arrow_column(column: Column, items: list[Any]) -> pa.Array:
    """One field's decoded values as the array of a Parquet table (``arrow_value``'s values)."""
    kind = arrow_type(column)
    if not _converted(column):
        return pa.array(items, type=kind)
    if _uuids_only(column):
        # UUIDs the feed's reader gave as text (``WireDecoder(uuid_text=True)``) go in as they
        # are; pyarrow refuses UUID objects as strings, and those are turned into text.
        try:
            return pa.array(items, type=kind)
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            pass
    return pa.array([arrow_value(column, value) for value in items], type=kind)


def arrow_columns(columns: list[Column], values: Sequence[list[Any]]) -> list[pa.Array]:
    """Decoded values, a list per field (``columns``' order), as the arrays of a Parquet table:
    what ``file_row`` gives for each, without a row dict per record."""
    return [arrow_column(column, items) for column, items in zip(columns, values, strict=True)]


def file_columns(records: Sequence[SinkInput], columns: list[Column]) -> list[pa.Array]:
    """The Parquet arrays of ``records`` (of one schema, whose ``columns`` these are): the
    columns of their ``file_row``s, made a field at a time rather than a row at a time."""
    values = [record.value for record in records]
    return [
        pa.array([record.partition for record in records], type=pa.int32()),
        pa.array([record.offset for record in records], type=pa.int64()),
        # Milliseconds as int64 (pyarrow takes Python ints for a timestamp type one by one, seven
        # times slower), made microseconds by Arrow (safe casts: one out of range raises, as the
        # product did).
        pa.array([r.received_at_ms for r in records], type=pa.int64()).cast(_MS).cast(_US),
        *arrow_columns(columns, [[value.get(c.name) for value in values] for c in columns]),
    ]


def received_at(received_at_ms: int | None) -> datetime | None:
    return None if received_at_ms is None else datetime.fromtimestamp(received_at_ms / 1000, UTC)


def file_row(record: SinkInput, columns: list[Column], *, arrow: bool) -> dict[str, Any]:
    """The row written for ``record`` (``columns``: its schema's): for Parquet (``arrow``) each
    field as pyarrow takes it, for NDJSON the fields as decoded."""
    row: dict[str, Any] = {
        PARTITION_FIELD: record.partition,
        OFFSET_FIELD: record.offset,
        RECEIVED_AT_FIELD: received_at(record.received_at_ms),
    }
    value = record.value
    if arrow:
        row.update((c.name, arrow_value(c, value.get(c.name))) for c in columns)
    else:
        row.update(value)
    return row


def ndjson_lines(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(_JSON.encode(row) + b"\n" for row in rows)


def runs(records: list[R], *, by_schema: bool) -> list[list[R]]:
    """Records split into runs of one partition and day (and schema), keeping their order: what
    may share a file (a Parquet file holds one schema)."""
    result: list[list[R]] = []
    keys: dict[int, tuple[int, int]] = {}
    current: dict[int, list[R]] = {}
    for record in records:
        # The UTC day's number, not its date: the same split as received_day, without making a
        # datetime per record.
        day = (record.received_at_ms or 0) // _MS_PER_DAY
        key = (day, record.schema_id if by_schema else 0)
        if keys.get(record.partition) != key:
            keys[record.partition] = key
            current[record.partition] = []
            result.append(current[record.partition])
        current[record.partition].append(record)
    return result
