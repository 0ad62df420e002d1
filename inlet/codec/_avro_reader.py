"""The Avro reader of the feeds: whole batches of one schema, the C reader, else fastavro.

``BatchReader`` is what ``wire.WireDecoder`` uses: a list of Confluent-framed values of one
schema id -> a record (the dict fastavro gives) per value, or why it could not be read. The reader
is C (``_avro_native_reader.c``, built with the package; ``NATIVE`` says whether it is). It takes
the schema as a *program* (``reader_program``): the writer's opcodes (``_avro_writer``), with each
record's field names, each enum's symbols, and, on each logical type, fastavro's own reader of it,
which the C reader hands the values its fast path does not cover (a date past 9999, a decimal of
more digits than its precision, a UUID in another notation). Where the C reader is not built, or a
schema holds types it lacks (a schema registered by hand elsewhere: maps, fixed, several-branch
unions...), ``fastavro.schemaless_reader`` reads the same values, one record at a time.

Measured on the feeds bench's record shape (10 fields: string, long, decimal, timestamp, date,
array of strings, object, enum, uuid, nullable string; 113 bytes), one core, CPU µs a record, best
and median of 5 interleaved rounds on the busy 2-core machine (``bench/decode_bench.py``):
fastavro per record 14.3 / 15.8; the C reader -> dicts 1.41 / 1.88 (8.4x), -> columns 1.53 / 1.72.
For the Parquet sink, a table from row dicts (``from_pylist``) 5.9 / 8.9, from columns 2.0 / 2.2,
from columns made out of the dicts 2.7 / 3.1. So the feeds read dicts (what every sink takes) and
the Parquet sink makes its columns from them: 0.7 µs, against 1.5 for reading the values twice.
Pausing the garbage collector for a batch is half of the C reader's gain: without it, the
collections that 5000 records' containers set off cost 7 µs a record.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any, Final, NamedTuple

import fastavro
from fastavro.read import LOGICAL_READERS

# The writer's opcodes: the same numbers in both C files.
from inlet.codec._avro_writer import (
    _MAX_NATIVE_PRECISION,
    _OP_ARRAY,
    _OP_DECIMAL,
    _OP_ENUM,
    _OP_LOGICAL,
    _OP_OPTIONAL,
    _OP_PRIMITIVES,
    _OP_RECORD,
    MAX_PROGRAM_DEPTH,
)

try:
    from inlet.codec._avro_native_reader import Reader as _NativeReader
except ImportError:  # not compiled here: fastavro reads the same values, slower
    NATIVE = False
else:
    NATIVE = True

# What fastavro raises on a body that does not match its schema (truncated, garbage, bad UTF-8);
# the C reader raises the same kinds.
BODY_ERRORS: Final = (EOFError, ValueError, IndexError, TypeError, KeyError, OverflowError)


class Rows(NamedTuple):
    """What a batch read gives: a record per value (None where it failed), and the failures."""

    rows: list[dict[str, Any] | None]
    failures: list[tuple[int, Exception]]


class Columns(NamedTuple):
    """The records that decoded as one list per top-level field (in field order, named by
    ``names``), and the values that did not (index, error)."""

    names: tuple[str, ...]
    values: tuple[list[Any], ...]
    failures: list[tuple[int, Exception]]


class BatchReader:
    """Reads Avro bodies of one record schema from ``offset`` (5: past the Confluent header)."""

    def __init__(
        self, schema: Mapping[str, Any], *, native: bool = NATIVE, uuid_text: bool = False
    ) -> None:
        """``uuid_text``: the C reader gives each UUID as its text (``str(UUID(...))``, no UUID
        object per record: for a sink that stores text); fastavro, where it reads, gives UUIDs."""
        self.names = tuple(str(field["name"]) for field in schema["fields"])
        self.native = False
        if native and NATIVE:
            try:
                program = reader_program(schema)
            except (ValueError, KeyError, TypeError):
                pass  # types the C reader lacks: fastavro's
            else:
                self._native = _NativeReader(
                    program, MAX_PROGRAM_DEPTH, BODY_ERRORS, uuid_text=uuid_text
                )
                self.native = True
        self._parsed = fastavro.parse_schema(dict(schema))

    def one(self, value: bytes, offset: int) -> dict[str, Any]:
        """The record of ``value[offset:]``; one of ``BODY_ERRORS`` when it cannot be read."""
        if self.native:
            return self._native.read(value, offset)
        record: dict[str, Any] = fastavro.schemaless_reader(  # type: ignore[assignment]
            io.BytesIO(value[offset:]), self._parsed, None
        )  # a record schema's value: a dict
        return record

    def rows(self, values: list[bytes], offset: int) -> Rows:
        if self.native:
            rows, failures = self._native.read_rows(values, offset)
            return Rows(rows, failures)
        return self._fastavro_rows(values, offset)

    def columns(self, values: list[bytes], offset: int) -> Columns:
        if self.native:
            columns, failures = self._native.read_columns(values, offset)
            return Columns(self.names, columns, failures)
        rows, failures = self._fastavro_rows(values, offset)
        kept = [row for row in rows if row is not None]
        return Columns(
            self.names, tuple([row[name] for row in kept] for name in self.names), failures
        )

    def _fastavro_rows(self, values: list[bytes], offset: int) -> Rows:
        rows: list[dict[str, Any] | None] = []
        failures: list[tuple[int, Exception]] = []
        parsed, read = self._parsed, fastavro.schemaless_reader
        for index, value in enumerate(values):
            try:
                record: Any = read(io.BytesIO(value[offset:]), parsed, None)
                rows.append(record)
            except BODY_ERRORS as exc:
                rows.append(None)
                failures.append((index, exc))
        return Rows(rows, failures)


def reader_program(schema: object, depth: int = 0) -> tuple[Any, ...]:
    """The C reader's program for a schema (whose node is at ``depth``); ValueError on types it
    lacks, or nested deeper than ``MAX_PROGRAM_DEPTH``."""
    if depth > MAX_PROGRAM_DEPTH:
        raise ValueError(f"the schema nests deeper than {MAX_PROGRAM_DEPTH} (a program's limit)")
    return _node(schema, depth)


def _node(schema: object, depth: int) -> tuple[Any, ...]:  # noqa: PLR0911 - one return per type
    if isinstance(schema, str):
        if schema not in _OP_PRIMITIVES:
            raise ValueError(f"unsupported Avro type {schema!r}")
        return (_OP_PRIMITIVES[schema],)
    if isinstance(schema, list):
        if len(schema) != 2 or schema[0] != "null":
            raise ValueError(f"only [null, T] unions are supported, not {schema!r}")
        return (_OP_OPTIONAL, reader_program(schema[1], depth + 1))
    if not isinstance(schema, Mapping):
        raise ValueError(f"unsupported Avro type {schema!r}")  # noqa: TRY004 - a schema error
    kind, logical = schema.get("type"), schema.get("logicalType")
    if logical is not None:
        slow = _slow_reader(schema)
        if (logical, kind) == ("decimal", "bytes"):
            precision, scale = int(schema["precision"]), int(schema.get("scale", 0))
            if not 1 <= precision <= _MAX_NATIVE_PRECISION or not 0 <= scale <= precision:
                raise ValueError(f"unsupported decimal({precision},{scale})")
            return (_OP_DECIMAL, precision, scale, slow)
        op = _OP_LOGICAL.get((str(logical), str(kind)))
        if op is None:
            raise ValueError(f"unsupported Avro logical type {logical!r} on {kind!r}")
        return (op, slow)
    if kind == "record":
        fields = schema["fields"]
        children = tuple(reader_program(field["type"], depth + 1) for field in fields)
        return (_OP_RECORD, children, tuple(str(field["name"]) for field in fields))
    if kind == "enum":
        return (_OP_ENUM, tuple(str(symbol) for symbol in schema["symbols"]))
    if kind == "array":
        return (_OP_ARRAY, reader_program(schema["items"], depth + 1))
    return reader_program(kind, depth)  # {"type": "string"}


def _slow_reader(schema: Mapping[str, Any]) -> Callable[[Any], Any]:
    """fastavro's reader of a logical type's raw value (an int, the bytes, the text)."""
    found = LOGICAL_READERS.get(f"{schema.get('type')}-{schema.get('logicalType')}")
    if found is None:
        raise ValueError(f"fastavro has no reader of {schema.get('logicalType')!r}")
    writer_schema = dict(schema)
    return lambda raw: found(raw, writer_schema, None)
