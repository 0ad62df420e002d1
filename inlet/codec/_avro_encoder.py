"""Avro binary encoding of validated records, compiled once per schema.

``record_encoder`` is what the codec uses: record -> header + Avro body. It is the C writer
(``_avro_native.c``, built with the package) when that is available, else the generated Python
writer below, which is its reference: both write exactly fastavro's bytes (the tests check all
three). The C writer takes the schema as a *program* (``native_program``): nested tuples of an
opcode and its arguments, so the C side never parses JSON or walks schema dicts.

Why not fastavro's ``schemaless_writer`` per record: it spends about 1 µs per call on setup and
1-2 µs on each logical-type value (timestamp, decimal, uuid), some 7 µs for an eight-field record:
alone more than the gateway's budget (bench/codec_bench.py measures both).

Why generated code: a tree of one closure per field was the first design and spent a quarter of its
time calling closures and zipping values with them. So, like ``dataclasses`` builds ``__init__``,
each record schema becomes the source of one function, run through ``exec`` once: it unpacks the
Struct's values into locals and writes each inline. The source holds no text from the schema, only
generated identifiers; every constant (enum tables, decimal writers) is passed in the namespace.
Each nested record gets a function of its own, which bounds the nesting of the generated code.
The output is byte for byte what fastavro writes (the tests check it).

Covers the schemas ``inlet.model.avro.avro_schema`` generates: string, long, double, boolean; date,
timestamp-micros, time-micros, uuid and bytes-decimal logical types; enums; arrays; records; and
``["null", T]`` unions. A record value is a msgspec Struct whose fields are in the Avro field order;
values have the Python types msgspec decodes them to, already validated. Decimals are the one value
checked here (precision and scale have no msgspec constraint): the writer raises ValueError.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import struct
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any, Final

import msgspec

Writer = Callable[[bytearray, Any], None]
RecordEncoder = Callable[[Any], bytes]  # record -> header + Avro body; ValueError if it won't fit

try:
    from inlet.codec import _avro_native  # type: ignore[attr-defined]
except ImportError:  # not compiled here: the Python writer does the same, slower
    _avro_native = None

NATIVE: Final = _avro_native is not None

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_ORDINAL: Final = dt.date(1970, 1, 1).toordinal()
# Two varint bytes, both with the continuation bit, for every 14-bit group: a timestamp (8 bytes
# of varint) takes 3 lookups instead of 8 rounds of shifting. 16384 entries, about 0.7 MB.
_TWO_BYTES: Final = [bytes(((x & 0x7F) | 0x80, (x >> 7) | 0x80)) for x in range(1 << 14)]


def compile_writer(schema: Mapping[str, Any]) -> Writer:
    """The writer of a record schema (a parsed-JSON dict); ValueError on types it lacks."""
    if schema.get("type") != "record":
        raise ValueError("an Avro record schema is required")
    compiler = _Compiler()
    writer: Writer = compiler.namespace[compiler.record(schema, top=True)]
    return writer


def record_encoder(
    schema: Mapping[str, Any], header: bytes, *, native: bool = NATIVE
) -> RecordEncoder:
    """``header`` then the record's Avro body, by the C writer unless ``native`` is False."""
    if native:
        if _avro_native is None:
            raise RuntimeError("inlet.codec._avro_native is not built (no C compiler at install?)")
        encode: RecordEncoder = _avro_native.Writer(
            native_program(schema), header, msgspec.structs.astuple
        ).encode
        return encode
    write = compile_writer(schema)

    def encode_in_python(record: Any) -> bytes:
        out = bytearray(header)
        write(out, record)
        return bytes(out)

    return encode_in_python


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


def native_program(schema: object) -> tuple[Any, ...]:  # noqa: PLR0911 - one return per type
    """The C writer's program for a schema: the types ``compile_writer`` takes, same checks."""
    if isinstance(schema, str):
        if schema not in _OP_PRIMITIVES:
            raise ValueError(f"unsupported Avro type {schema!r}")
        return (_OP_PRIMITIVES[schema],)
    if isinstance(schema, list):
        if len(schema) != 2 or schema[0] != "null":
            raise ValueError(f"only [null, T] unions are supported, not {schema!r}")
        return (_OP_OPTIONAL, native_program(schema[1]))
    if not isinstance(schema, Mapping):
        raise ValueError(f"unsupported Avro type {schema!r}")  # noqa: TRY004 - as compile_writer
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
        return (_OP_RECORD, tuple(native_program(field["type"]) for field in schema["fields"]))
    if kind == "enum":
        return (_OP_ENUM, {symbol: index for index, symbol in enumerate(schema["symbols"])})
    if kind == "array":
        return (_OP_ARRAY, native_program(schema["items"]))
    return native_program(kind)  # {"type": "string"}


def encode_long(out: bytearray, value: int) -> None:
    """Zigzag varint, as Avro's int and long (the value must fit 64 bits)."""
    _write_varint(out, (value << 1) ^ (value >> 63))


def unscaled_decimal(value: decimal.Decimal, precision: int, scale: int) -> int:
    """``value`` times 10**scale as an int, when ``value`` fits decimal(precision, scale) exactly.

    ValueError saying why otherwise: never rounds (1.005 does not fit scale 2; 1.500 does).
    """
    return _unscaled(value, precision, scale, _context(precision))


def _write_varint(out: bytearray, number: int) -> None:
    # `number` is zigzagged already: not negative.
    while number >= 0x4000:  # more than 14 bits left: two bytes that both continue
        out += _TWO_BYTES[number & 0x3FFF]
        number >>= 14
    if number >= 0x80:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)


@cache
def _context(precision: int) -> decimal.Context:
    # Inexact: a digit would be lost. Overflow and InvalidOperation: infinities, huge exponents.
    traps = [decimal.Inexact, decimal.InvalidOperation, decimal.Overflow]
    return decimal.Context(prec=precision, traps=traps)


def _unscaled(value: decimal.Decimal, precision: int, scale: int, context: decimal.Context) -> int:
    # scaleb in a context of `precision` digits is exact or traps, in time linear in the digits;
    # checking adjusted() first keeps int() from building a huge number out of 1E+999999.
    scaled: decimal.Decimal | None
    try:
        scaled = value.scaleb(scale, context)
    except ArithmeticError:  # a digit would be lost (Inexact), or an exponent out of range
        scaled = None
    if scaled is not None and scaled.is_finite() and (not scaled or scaled.adjusted() < precision):
        unscaled = int(scaled)
        if unscaled == scaled:  # else digits after the point, beyond the scale
            return unscaled
    raise ValueError(_decimal_problem(value, precision, scale))


def _decimal_problem(value: decimal.Decimal, precision: int, scale: int) -> str:
    if not value.is_finite():
        return "must be a finite number"
    integer_digits = precision - scale
    if value and value.adjusted() >= integer_digits:
        if integer_digits == 0:
            return f"must be less than 1 in magnitude (decimal({precision},{scale}))"
        return f"has more than {integer_digits} digit(s) before the decimal point"
    return f"has more than {scale} decimal place(s); values are never rounded"


def _decimal_writer(precision: int, scale: int) -> Writer:
    context = _context(precision)

    def write_decimal(out: bytearray, value: decimal.Decimal) -> None:
        unscaled = _unscaled(value, precision, scale, context)
        # Two's complement, sized from the magnitude like fastavro (-128 takes two bytes).
        data = unscaled.to_bytes((unscaled.bit_length() + 8) // 8, "big", signed=True)
        out.append(len(data) << 1)  # at most 17 bytes for 38 digits: a one-byte length
        out += data

    return write_decimal


def _zigzag_bytes(value: int) -> bytes:
    out = bytearray()
    encode_long(out, value)
    return bytes(out)


class _Compiler:
    """Generates the source of record writers. Every emitter gets the name of a local holding the
    value and the indentation, and returns lines of code."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {
            "astuple": msgspec.structs.astuple,
            "write_varint": _write_varint,
            "pack_double": struct.Struct("<d").pack,
            "json_encode": msgspec.json.encode,  # a UUID's text, in C (str(uuid) is Python)
            "EPOCH": _EPOCH,
        }
        self._numbers = itertools.count()

    def record(self, schema: Mapping[str, Any], *, top: bool = False) -> str:
        """Compile a record's writer into the namespace; return its name there. The top record
        may have fields beyond the schema's, after them (the codec's probe Structs): ignored."""
        name = self._name("write_record")
        values = [self._name("v") for _ in schema["fields"]]
        targets = "".join(f"{value}, " for value in values) + ("*_" if top else "")
        lines = [f"def {name}(out, record):", f"    {targets} = astuple(record)"]
        for field, value in zip(schema["fields"], values, strict=True):
            lines += self._value(field["type"], value, "    ")
        exec("\n".join(lines), self.namespace)  # noqa: S102 - generated from types, see the docstring
        return name

    def _name(self, prefix: str) -> str:
        return f"{prefix}_{next(self._numbers)}"

    def _constant(self, prefix: str, value: object) -> str:
        name = self._name(prefix)
        self.namespace[name] = value
        return name

    def _value(self, schema: object, value: str, pad: str) -> list[str]:
        if isinstance(schema, str):
            return self._primitive(schema, value, pad)
        if isinstance(schema, list):
            return self._optional(schema, value, pad)
        if isinstance(schema, Mapping):
            logical = schema.get("logicalType")
            if logical is not None:
                return self._logical(schema, logical, value, pad)
            return self._complex(schema, value, pad)
        raise ValueError(f"unsupported Avro type {schema!r}")

    def _complex(self, schema: Mapping[str, Any], value: str, pad: str) -> list[str]:
        kind = schema.get("type")
        if kind == "record":
            return [f"{pad}{self.record(schema)}(out, {value})"]
        if kind == "enum":  # symbol -> its index as varint bytes
            symbols: Sequence[str] = schema["symbols"]
            table = {symbol: _zigzag_bytes(index) for index, symbol in enumerate(symbols)}
            return [f"{pad}out += {self._constant('enum', table)}[{value}]"]
        if kind == "array":  # one block, then the empty block that ends it (as fastavro writes)
            item = self._name("item")
            return [
                f"{pad}if {value}:",
                *self._long(f"len({value})", pad + "    "),
                f"{pad}    for {item} in {value}:",
                *self._value(schema["items"], item, pad + "        "),
                f"{pad}out.append(0)",
            ]
        return self._value(kind, value, pad)  # {"type": "string"}

    def _primitive(self, name: str, value: str, pad: str) -> list[str]:
        if name == "string":
            data = self._name("data")
            return [
                f"{pad}{data} = {value}.encode()",
                *self._long(f"len({data})", pad),
                f"{pad}out += {data}",
            ]
        if name in {"long", "int"}:
            return self._long(value, pad)
        if name == "double":
            return [f"{pad}out += pack_double({value})"]
        if name == "boolean":
            return [f"{pad}out.append(1 if {value} else 0)"]
        raise ValueError(f"unsupported Avro type {name!r}")

    def _logical(self, schema: Mapping[str, Any], logical: str, value: str, pad: str) -> list[str]:
        base = schema.get("type")
        if (logical, base) == ("decimal", "bytes"):
            writer = _decimal_writer(int(schema["precision"]), int(schema.get("scale", 0)))
            return [f"{pad}{self._constant('write_decimal', writer)}(out, {value})"]
        if (logical, base) == ("date", "int"):
            return self._long(f"{value}.toordinal() - {_EPOCH_ORDINAL}", pad)
        if (logical, base) == ("timestamp-micros", "long"):
            # msgspec lets only aware datetimes through: the difference is exact, any offset.
            delta = self._name("delta")
            micros = f"({delta}.days * 86400 + {delta}.seconds) * 1000000 + {delta}.microseconds"
            return [f"{pad}{delta} = {value} - EPOCH", *self._long(micros, pad)]
        if (logical, base) == ("time-micros", "long"):
            seconds = f"({value}.hour * 60 + {value}.minute) * 60 + {value}.second"
            return self._long(f"({seconds}) * 1000000 + {value}.microsecond", pad)
        if (logical, base) == ("uuid", "string"):
            return [f"{pad}out.append(72)", f"{pad}out += json_encode({value})[1:-1]"]  # 36 chars
        raise ValueError(f"unsupported Avro logical type {logical!r} on {base!r}")

    def _optional(self, branches: list[object], value: str, pad: str) -> list[str]:
        if len(branches) != 2 or branches[0] != "null":
            raise ValueError(f"only [null, T] unions are supported, not {branches!r}")
        return [
            f"{pad}if {value} is None:",
            f"{pad}    out.append(0)",
            f"{pad}else:",
            f"{pad}    out.append(2)",  # branch 1, zigzagged
            *self._value(branches[1], value, pad + "    "),
        ]

    def _long(self, expression: str, pad: str) -> list[str]:
        number, zigzag = self._name("n"), self._name("z")
        return [
            f"{pad}{number} = {expression}",
            f"{pad}{zigzag} = ({number} << 1) ^ ({number} >> 63)",
            f"{pad}if {zigzag} < 128:",  # most lengths and counts: one byte, no call
            f"{pad}    out.append({zigzag})",
            f"{pad}else:",
            f"{pad}    write_varint(out, {zigzag})",
        ]
