"""PostgreSQL columns for Inlet's field types, and the values COPY writes into them.

string -> text, integer -> bigint, float -> double precision, boolean -> boolean, date -> date,
datetime -> timestamptz, time -> time, decimal -> numeric(p,s), uuid -> uuid, enum -> text,
array -> an array of its item's type, object -> jsonb (and any Avro type Inlet does not generate).
A column is NOT NULL when its field is not nullable.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
from psycopg.types.json import Jsonb

from consumers.sinks._columns import Column

MAX_IDENTIFIER_BYTES = 63
# Feed metadata next to the record's fields; also the table's primary key (partition, offset).
PARTITION_COLUMN = "_inlet_partition"
OFFSET_COLUMN = "_inlet_offset"
RECEIVED_AT_COLUMN = "_inlet_received_at"
METADATA_COLUMNS = (PARTITION_COLUMN, OFFSET_COLUMN, RECEIVED_AT_COLUMN)

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
    """A value for a jsonb column (None stays NULL); other columns take values as decoded."""
    return None if value is None else Jsonb(value, dumps=_dumps)


def _dumps(value: Any) -> str:
    # msgspec writes what fastavro decodes (Decimal, datetime, UUID...), which json.dumps cannot.
    return _JSON.encode(value).decode()
