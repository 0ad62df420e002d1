"""PostgreSQL tables for Inlet's field types, and the rows COPY writes into them.

string -> text, integer -> bigint, float -> double precision, boolean -> boolean, date -> date,
datetime -> timestamptz, time -> time, decimal -> numeric(p,s), uuid -> uuid, enum -> text,
array -> an array of its item's type, object -> jsonb (and any Avro type Inlet does not generate).
A column is NOT NULL when its field is not nullable.

A table that enforces a connector's idempotency keys (``keyed``) has one more metadata column,
``_inlet_dedup_key`` (text, the record's ``inlet-dedup-key`` header), under a unique index: a key
already in the table is skipped, not written again.

Rows go in by binary COPY where the table's columns have the types made here (``copy_types`` says
which type each value is sent as; PostgreSQL casts nothing in binary COPY), and by text COPY into
a table whose columns differ (made by hand, or altered). ``row_maker`` builds a batch's rows for
one schema version, the same rows ``row_values`` gives one record at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, NamedTuple

import msgspec
from psycopg.types.json import Jsonb

from inlet.sink_layout import SinkInput
from inlet.sink_layout.columns import Column

MAX_IDENTIFIER_BYTES = 63
# Feed metadata next to the record's fields; also the table's primary key (partition, offset).
PARTITION_COLUMN = "_inlet_partition"
OFFSET_COLUMN = "_inlet_offset"
RECEIVED_AT_COLUMN = "_inlet_received_at"
METADATA_COLUMNS = (PARTITION_COLUMN, OFFSET_COLUMN, RECEIVED_AT_COLUMN)
# The record's idempotency key (``inlet/records.py`` HEADER_DEDUP_KEY), in a keyed table only.
DEDUP_KEY_COLUMN = "_inlet_dedup_key"
KEYED_METADATA_COLUMNS = (*METADATA_COLUMNS, DEDUP_KEY_COLUMN)

_SCALAR_TYPES = {
    "string": "text",
    "integer": "bigint",
    "float": "double precision",
    "boolean": "boolean",
    "date": "date",
    "datetime": "timestamptz",
    "time": "time",
    "uuid": "uuid",
    "enum": "text",
}
_JSON = msgspec.json.Encoder()


def column_name(avro_name: str) -> str:
    """The column for an Avro field name (ASCII): itself, or when longer than PostgreSQL keeps
    (63 bytes), a prefix and a hash of the whole, so two long names never meet in one column."""
    if len(avro_name) <= MAX_IDENTIFIER_BYTES:
        return avro_name
    digest = hashlib.sha256(avro_name.encode()).hexdigest()[:8]
    return f"{avro_name[: MAX_IDENTIFIER_BYTES - 9]}_{digest}"


def metadata_columns(*, keyed: bool) -> tuple[str, ...]:
    """The columns COPY writes before the fields: feed metadata, and the key if ``keyed``."""
    return KEYED_METADATA_COLUMNS if keyed else METADATA_COLUMNS


def dedup_index_name(table: str) -> str:
    """The unique index on a keyed table's key column (``table``: its unqualified name); in the
    table's schema, so named after the table (hashed when long, like a column)."""
    return column_name(f"{table}{DEDUP_KEY_COLUMN}")


def pg_type(column: Column) -> str:
    if column.kind in _SCALAR_TYPES:
        return _SCALAR_TYPES[column.kind]
    if column.kind == "decimal":
        return f"numeric({column.precision},{column.scale or 0})"
    if column.kind == "array" and column.items is not None and column.items.kind in _SCALAR_TYPES:
        return _SCALAR_TYPES[column.items.kind] + "[]"
    return "jsonb"


def is_json(column: Column) -> bool:
    return pg_type(column) == "jsonb"


def jsonb(value: Any) -> Jsonb | None:
    """A value for a jsonb column in text COPY (None stays NULL); other columns take values as
    decoded."""
    return None if value is None else Jsonb(value, dumps=dump_json)


def dump_json(value: Any) -> bytes:
    """A jsonb column's value as JSON (binary COPY's jsonb dumper is given this function)."""
    # msgspec writes what fastavro decodes (Decimal, datetime, UUID...), which json.dumps cannot.
    return _JSON.encode(value)


class TableColumn(NamedTuple):
    """A column of the table the sink creates: its name, its type as declared, and NOT NULL."""

    name: str
    type: str
    not_null: bool


_METADATA = (
    TableColumn(PARTITION_COLUMN, "integer", True),
    TableColumn(OFFSET_COLUMN, "bigint", True),
    TableColumn(RECEIVED_AT_COLUMN, "timestamptz", False),
)
_KEYED_METADATA = (*_METADATA, TableColumn(DEDUP_KEY_COLUMN, "text", False))


class CopyColumn(NamedTuple):
    """What COPY writes after the metadata columns: the column, the Avro name its value is read
    from, whether it goes in as JSON, and the type binary COPY sends its values as."""

    name: str
    field: str
    as_json: bool
    type: str


def table_columns(columns: list[Column], *, keyed: bool = False) -> list[TableColumn]:
    """The columns of the table made for a schema with ``columns``: feed metadata first (with
    the key column if ``keyed``), then one per field (NOT NULL where the field is not nullable).
    The primary key is (partition, offset)."""
    return [
        *(_KEYED_METADATA if keyed else _METADATA),
        *(TableColumn(column_name(c.name), pg_type(c), not c.nullable) for c in columns),
    ]


def table_changes(
    table: dict[str, tuple[str, bool]], columns: list[Column]
) -> tuple[list[Column], list[str]]:
    """What a table with ``table`` (column -> (type, NOT NULL)) needs to hold records of a schema
    with ``columns``: the fields it has no column for (added, nullable), and the NOT NULL columns
    the schema has no field for (relaxed: its records leave them empty)."""
    names = {column_name(c.name) for c in columns}
    missing = [c for c in columns if column_name(c.name) not in table]
    relaxed = [
        name
        for name, (_, not_null) in table.items()
        if not_null and name not in names and name not in KEYED_METADATA_COLUMNS
    ]
    return missing, relaxed


def copy_columns(fields: dict[str, Column], table_types: dict[str, str]) -> list[CopyColumn]:
    """What COPY writes for ``fields`` (column -> the latest field written into it) into a table
    whose columns have ``table_types``. Values follow the column as it exists (made by an older
    version, or by hand): a jsonb column gets JSON whatever the field's kind."""
    copied = []
    for name, column in fields.items():
        if name in table_types:
            as_json = is_json(column) or table_types[name] == "jsonb"
            kind = "jsonb" if as_json else pg_type(column).split("(", 1)[0]  # no typmod
            copied.append(CopyColumn(name, column.name, as_json, kind))
    return copied


def copy_types(columns: list[CopyColumn], *, keyed: bool) -> list[str]:
    """The type of each value of a row (``row_values``), as binary COPY sends it: the metadata's,
    then each column's. Binary COPY needs the table's columns to have exactly these types."""
    return [
        *(c.type for c in (_KEYED_METADATA if keyed else _METADATA)),
        *(c.type for c in columns),
    ]


def row_values(
    record: SinkInput,
    columns: list[CopyColumn],
    as_json: Callable[[Any], Any],
    *,
    keyed: bool = False,
) -> tuple[Any, ...]:
    """The row COPY writes for ``record``: metadata (``metadata_columns(keyed=keyed)``), then
    each column's value as decoded, or through ``as_json`` for a JSON column (the sink's
    ``jsonb``)."""
    value = record.value
    key = (record.dedup_key,) if keyed else ()
    return (
        record.partition,
        record.offset,
        received_at(record.received_at_ms),
        *key,
        *(as_json(value.get(c.field)) if c.as_json else value.get(c.field) for c in columns),
    )


def received_at(ms: int | None) -> datetime | None:
    """The received-at column's value for a record's ``received_at_ms``."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def row_maker(
    columns: list[CopyColumn], fields: Collection[str], *, keyed: bool = False
) -> Callable[[Sequence[SinkInput]], list[tuple[Any, ...]]]:
    """The rows of records of one schema version (one whose records hold ``fields``), a batch at
    once: ``row_values`` of each, JSON columns' values as decoded (binary COPY's jsonb dumper
    encodes them). Made once per schema version: the per-row work is one ``itemgetter`` call."""
    names = [c.field for c in columns]
    if all(name in fields for name in names):
        get = _getter(names)
    else:  # an older schema version, without some fields a newer one added

        def get(value: dict[str, Any]) -> tuple[Any, ...]:
            return tuple(value.get(name) for name in names)

    def one_by_one(records: Sequence[SinkInput]) -> list[tuple[Any, ...]]:
        return [row_values(r, columns, _as_decoded, keyed=keyed) for r in records]

    def rows(records: Sequence[SinkInput]) -> list[tuple[Any, ...]]:
        at = datetime.fromtimestamp  # received_at(), inlined (no call per row)
        try:
            if keyed:
                return [
                    (
                        r.partition,
                        r.offset,
                        None if r.received_at_ms is None else at(r.received_at_ms / 1000, UTC),
                        r.dedup_key,
                        *get(r.value),
                    )
                    for r in records
                ]
            return [
                (
                    r.partition,
                    r.offset,
                    None if r.received_at_ms is None else at(r.received_at_ms / 1000, UTC),
                    *get(r.value),
                )
                for r in records
            ]
        except KeyError:  # a record without a field its schema names: never from a decoder
            return one_by_one(records)

    return rows


def _getter(names: list[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    if len(names) > 1:
        return itemgetter(*names)
    if names:
        name = names[0]
        return lambda value: (value[name],)
    return lambda _: ()


def _as_decoded(value: Any) -> Any:
    return value
