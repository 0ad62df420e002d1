"""The Avro writer of validated records: the C writer, else fastavro; one per schema.

``record_encoder`` is what the codec uses: record -> header + Avro body. The writer is C
(``_avro_native.c``, built with the package; ``NATIVE`` says whether it is). It takes the schema
as a *program* (``native_program``): nested tuples of an opcode and its arguments, so the C side
never parses JSON or walks schema dicts. Where it could not be compiled (no C compiler at
install), ``fastavro.schemaless_writer`` writes the same bytes instead (the tests check it), on the
record turned into the dict fastavro takes (``_record_converter``): about 8 µs a record against
the C writer's 0.7 µs, which takes the codec's whole path (parse, validate, encode) from about 2 µs
a record to 10 (bench/codec_bench.py measures both writers).

Covers the schemas ``inlet.model.avro.avro_schema`` generates: string, long, double, boolean; date,
timestamp-micros, time-micros, uuid and bytes-decimal logical types; enums; arrays; records; and
``["null", T]`` unions. A record value is a msgspec Struct whose fields are in the Avro field order
(the top record may have more, after them: the codec's probe Structs); values have the Python types
msgspec decodes them to, already validated. Decimals are the one value checked here (precision and
scale have no msgspec constraint): the writer raises ValueError, in ``_decimals``' words.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Mapping
from typing import Any, Final

import fastavro
import msgspec

from inlet.codec._decimals import decimal_bytes
from inlet.model.fields import MAX_NESTING_DEPTH

try:
    from inlet.codec._avro_native import Writer as _NativeWriter
except ImportError:  # not compiled here: fastavro writes the same bytes, slower
    NATIVE = False
else:
    NATIVE = True

RecordEncoder = Callable[[Any], bytes]  # record -> header + Avro body; ValueError if it won't fit
_Convert = Callable[[Any], Any]


def record_encoder(
    schema: Mapping[str, Any], header: bytes, *, native: bool = NATIVE
) -> RecordEncoder:
    """``header`` then the record's Avro body, by the C writer unless ``native`` is False.

    ValueError for a schema of types the writer lacks, whichever writer is asked for.
    """
    if schema.get("type") != "record":
        raise ValueError("an Avro record schema is required")
    program = native_program(schema)  # the check of what the schema holds, for both writers
    if native:
        if not NATIVE:
            raise RuntimeError("inlet.codec._avro_native is not built (no C compiler at install?)")
        return _NativeWriter(program, header, msgspec.structs.astuple, MAX_PROGRAM_DEPTH).encode
    return _fastavro_encoder(schema, header)


# Opcodes of a native program; the same numbers as the enum in _avro_native.c.
_OP_PRIMITIVES: Final = {"string": 1, "long": 2, "int": 2, "double": 3, "boolean": 4}
_OP_RECORD, _OP_ENUM, _OP_ARRAY, _OP_OPTIONAL, _OP_DECIMAL = 5, 6, 7, 8, 9
_OP_LOGICAL: Final = {
    ("date", "int"): 10,
    ("timestamp-micros", "long"): 11,
    ("time-micros", "long"): 12,
    ("uuid", "string"): 13,
}
_MAX_NATIVE_PRECISION: Final = 38  # the C writer's decimals are 128-bit integers
# The depth of the deepest program a connector definition makes, the top record's node at 0:
# each object level is ["null", record] (two nodes), and the innermost field ["null", array of
# T] (three). The C writer refuses deeper programs (its recursion stays this shallow), and so does
# native_program for both writers: a definition the admin API accepts is one they both write.
MAX_PROGRAM_DEPTH: Final = 2 * MAX_NESTING_DEPTH + 3


def native_program(schema: object, depth: int = 0) -> tuple[Any, ...]:
    """The C writer's program for a schema (whose node is at ``depth``); ValueError on types the
    writers lack, or nested deeper than ``MAX_PROGRAM_DEPTH``."""
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
        return (_OP_OPTIONAL, native_program(schema[1], depth + 1))
    if not isinstance(schema, Mapping):
        raise ValueError(f"unsupported Avro type {schema!r}")  # noqa: TRY004 - a schema error
    kind, logical = schema.get("type"), schema.get("logicalType")
    if logical is not None:
        if (logical, kind) == ("decimal", "bytes"):
            precision, scale = int(schema["precision"]), int(schema.get("scale", 0))
            if not 1 <= precision <= _MAX_NATIVE_PRECISION or not 0 <= scale <= precision:
                raise ValueError(f"unsupported decimal({precision},{scale})")
            return (_OP_DECIMAL, precision, scale)
        op = _OP_LOGICAL.get((str(logical), str(kind)))
        if op is None:
            raise ValueError(f"unsupported Avro logical type {logical!r} on {kind!r}")
        return (op,)
    if kind == "record":
        fields = schema["fields"]
        return (_OP_RECORD, tuple(native_program(field["type"], depth + 1) for field in fields))
    if kind == "enum":
        return (_OP_ENUM, {symbol: index for index, symbol in enumerate(schema["symbols"])})
    if kind == "array":
        return (_OP_ARRAY, native_program(schema["items"], depth + 1))
    return native_program(kind, depth)  # {"type": "string"}


def _fastavro_encoder(schema: Mapping[str, Any], header: bytes) -> RecordEncoder:
    parsed = fastavro.parse_schema(dict(schema))
    to_datum = _record_converter(schema)
    write = fastavro.schemaless_writer  # of the calls fastavro has for one record, the fastest

    def encode_with_fastavro(record: Any) -> bytes:
        out = io.BytesIO()
        out.write(header)
        write(out, parsed, to_datum(record))
        return out.getvalue()

    return encode_with_fastavro


def _record_converter(schema: Mapping[str, Any]) -> _Convert:
    """Struct -> the dict of Avro names fastavro takes; values by position, as the C writer reads
    them, so the probe Structs' extra fields (after the schema's) are left out."""
    names = tuple(str(field["name"]) for field in schema["fields"])
    converts = [
        (name, convert)
        for name, field in zip(names, schema["fields"], strict=True)
        if (convert := _converter(field["type"])) is not None
    ]
    astuple = msgspec.structs.astuple

    def to_datum(record: Any) -> dict[str, Any]:
        datum = dict(zip(names, astuple(record), strict=False))
        for name, convert in converts:
            datum[name] = convert(datum[name])
        return datum

    return to_datum


def _converter(schema: object) -> _Convert | None:  # noqa: PLR0911 - one return per type
    """What turns a value of ``schema`` into what fastavro writes as the C writer does; None when
    fastavro takes the value as it is (its logical types read dates, datetimes, times, UUIDs)."""
    if isinstance(schema, list):  # ["null", T], as native_program checked
        inner = _converter(schema[1])
        if inner is None:
            return None
        return lambda value: None if value is None else inner(value)
    if not isinstance(schema, Mapping):
        return None
    kind = schema.get("type")
    if schema.get("logicalType") == "decimal":
        # fastavro refuses 1.500 for decimal(2,1) (too many digits) and words it otherwise:
        # the bytes are written here, and a refusal is the C writer's.
        precision, scale = int(schema["precision"]), int(schema.get("scale", 0))
        return functools.partial(decimal_bytes, precision=precision, scale=scale)
    if kind == "record":
        return _record_converter(schema)
    if kind == "array":
        item = _converter(schema["items"])
        if item is None:
            return None
        return lambda items: [item(value) for value in items]
    return _converter(kind)  # {"type": ...}
