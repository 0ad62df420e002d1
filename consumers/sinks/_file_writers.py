"""Writing one file of the files sink: rows in, a complete and fsynced temporary file out.

Rows are the record's fields plus the feed's metadata (``_inlet_partition``, ``_inlet_offset``,
``_inlet_received_at``), named like the PostgreSQL sink's columns. Parquet column types follow the
fields: string -> string, integer -> int64, float -> double, boolean -> bool, date -> date32,
datetime -> timestamp[us, UTC], time -> time64[us], decimal -> decimal128(p, s), uuid and enum ->
string, array -> list, object -> struct; a type Inlet does not generate is kept as a JSON string.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from consumers.sinks._columns import Column

PARTITION_FIELD = "_inlet_partition"
OFFSET_FIELD = "_inlet_offset"
RECEIVED_AT_FIELD = "_inlet_received_at"

# Parquet row groups are written when this much is buffered: big enough to compress well, small
# enough to keep memory bounded per open file.
_ROW_GROUP_BYTES = 32 * 1024 * 1024
_JSON = msgspec.json.Encoder()

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
        return str(value)
    if column.kind == "other":
        return _JSON.encode(value).decode()
    if column.kind == "object":
        return {c.name: arrow_value(c, value.get(c.name)) for c in column.fields}
    if column.kind == "array" and column.items is not None and column.items.kind == "uuid":
        return [str(item) for item in value]
    return value


def received_at(received_at_ms: int | None) -> datetime | None:
    return None if received_at_ms is None else datetime.fromtimestamp(received_at_ms / 1000, UTC)


class FileWriter(Protocol):
    rows: int

    @property
    def size(self) -> int:
        """Bytes written so far, and an estimate of what is buffered."""
        ...

    def finish(self) -> None:
        """Write what is buffered, fsync and close: the file is complete on disk."""
        ...

    def abort(self) -> None:
        """Close and delete the file."""
        ...


class NdjsonWriter:
    """One JSON object per line (msgspec: decimals as strings, times RFC 3339)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO = path.open("wb")
        self.rows = 0

    @property
    def size(self) -> int:
        return self._file.tell()

    def append(self, rows: list[dict[str, Any]]) -> None:
        self._file.write(b"".join(_JSON.encode(row) + b"\n" for row in rows))
        self.rows += len(rows)

    def finish(self) -> None:
        _finish(self._file)

    def abort(self) -> None:
        _abort(self._file, self.path)


class ParquetFileWriter:
    """A Parquet file of one schema; tables appended are written out as row groups."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.schema = schema
        self._file: BinaryIO = path.open("wb")
        self._writer = pq.ParquetWriter(self._file, schema)
        self._pending: list[pa.Table] = []
        self._pending_bytes = 0
        self.rows = 0

    @property
    def size(self) -> int:
        # In-memory Arrow is larger than compressed Parquet: the estimate errs on small files.
        return self._file.tell() + self._pending_bytes

    def append(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._pending_bytes += table.nbytes
        self.rows += table.num_rows
        if self._pending_bytes >= _ROW_GROUP_BYTES:
            self._write_pending()

    def _write_pending(self) -> None:
        if self._pending:
            self._writer.write_table(pa.concat_tables(self._pending))
        self._pending, self._pending_bytes = [], 0

    def finish(self) -> None:
        self._write_pending()
        self._writer.close()  # writes the footer; the file object stays ours to sync and close
        _finish(self._file)

    def abort(self) -> None:
        self._pending = []
        try:
            self._writer.close()
        finally:
            _abort(self._file, self.path)


def _finish(file: BinaryIO) -> None:
    file.flush()
    os.fsync(file.fileno())
    file.close()


def _abort(file: BinaryIO, path: Path) -> None:
    file.close()
    path.unlink(missing_ok=True)


def fsync_directory(path: Path) -> None:
    """Make a rename (or a new entry) in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
