"""Avro binary encoding of validated records, compiled once per schema.

Why not fastavro's ``schemaless_writer`` per record: it spends about 1 µs per call on setup and
1-2 µs on each logical-type value (timestamp, decimal, uuid); on an eight-field record that is
~7 µs, under the gateway's budget by itself (see bench/codec_bench.py, which measures both). Here
the schema becomes a tree of small writer functions, once; a record is then one pass over its
values. The output is byte for byte what fastavro writes (the tests check it).

Covers the schemas ``registry.avro.avro_schema`` generates: string, long, double, boolean; date,
timestamp-micros, time-micros, uuid and bytes-decimal logical types; enums; arrays; records; and
``["null", T]`` unions. A record value is a msgspec Struct whose fields are in the Avro field order;
values have the Python types msgspec decodes them to, already validated. Decimals are the one value
checked here (precision and scale have no msgspec constraint): ``unscaled_decimal`` raises.
"""

from __future__ import annotations

import datetime as dt
import decimal
import struct
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any, Final

import msgspec

Writer = Callable[[bytearray, Any], None]

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_ORDINAL: Final = dt.date(1970, 1, 1).toordinal()
_pack_double = struct.Struct("<d").pack
_astuple = msgspec.structs.astuple
_json_encode = msgspec.json.encode  # a UUID's canonical text, in C (str(uuid) is pure Python)


def compile_writer(schema: Mapping[str, Any]) -> Writer:
    """The writer for a record schema (a parsed-JSON dict); ValueError on types it lacks."""
    if schema.get("type") != "record":
        raise ValueError("an Avro record schema is required")
    return _writer(schema)


def encode_long(out: bytearray, value: int) -> None:
    """Zigzag varint, as Avro's int and long (the value must fit 64 bits)."""
    number = (value << 1) ^ (value >> 63)
    while number > 0x7F:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)


def unscaled_decimal(value: decimal.Decimal, precision: int, scale: int) -> int:
    """``value`` times 10**scale as an int, when ``value`` fits decimal(precision, scale) exactly.

    ValueError saying why otherwise: never rounds (1.005 does not fit scale 2; 1.500 does).
    """
    return _unscaled(value, precision, scale, _context(precision))


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


def _writer(schema: object) -> Writer:
    if isinstance(schema, str):
        return _primitive(schema)
    if isinstance(schema, list):
        return _union(schema)
    if isinstance(schema, Mapping):
        logical = schema.get("logicalType")
        return _complex(schema) if logical is None else _logical(schema, logical)
    raise ValueError(f"unsupported Avro type {schema!r}")


def _complex(schema: Mapping[str, Any]) -> Writer:
    kind = schema.get("type")
    if kind == "record":
        return _record(schema["fields"])
    if kind == "enum":
        return _enum(schema["symbols"])
    if kind == "array":
        return _array(_writer(schema["items"]))
    return _writer(kind)  # {"type": "string"}


def _primitive(name: str) -> Writer:
    writers: dict[str, Writer] = {
        "string": _write_string,
        "long": encode_long,
        "int": encode_long,
        "double": _write_double,
        "boolean": _write_boolean,
    }
    if name not in writers:
        raise ValueError(f"unsupported Avro type {name!r}")
    return writers[name]


def _logical(schema: Mapping[str, Any], logical: str) -> Writer:
    base = schema.get("type")
    if logical == "decimal" and base == "bytes":
        return _decimal(int(schema["precision"]), int(schema.get("scale", 0)))
    writers: dict[tuple[str, object], Writer] = {
        ("date", "int"): _write_date,
        ("timestamp-micros", "long"): _write_timestamp_micros,
        ("time-micros", "long"): _write_time_micros,
        ("uuid", "string"): _write_uuid,
    }
    if (logical, base) not in writers:
        raise ValueError(f"unsupported Avro logical type {logical!r} on {base!r}")
    return writers[logical, base]


def _union(branches: Sequence[object]) -> Writer:
    if len(branches) != 2 or branches[0] != "null":
        raise ValueError(f"only [null, T] unions are supported, not {branches!r}")
    write = _writer(branches[1])

    def write_optional(out: bytearray, value: Any) -> None:
        if value is None:
            out.append(0)
        else:
            out.append(2)  # branch 1, zigzagged
            write(out, value)

    return write_optional


def _record(fields: Sequence[Mapping[str, Any]]) -> Writer:
    writers = tuple(_writer(field["type"]) for field in fields)

    def write_record(out: bytearray, value: Any) -> None:
        for item, write in zip(_astuple(value), writers, strict=True):
            write(out, item)

    return write_record


def _enum(symbols: Sequence[str]) -> Writer:
    indexes = {symbol: index for index, symbol in enumerate(symbols)}

    def write_enum(out: bytearray, value: str) -> None:
        encode_long(out, indexes[value])

    return write_enum


def _array(write_item: Writer) -> Writer:
    def write_array(out: bytearray, value: Sequence[Any]) -> None:
        if value:  # one block, then the empty block that ends the array (as fastavro writes)
            encode_long(out, len(value))
            for item in value:
                write_item(out, item)
        out.append(0)

    return write_array


def _decimal(precision: int, scale: int) -> Writer:
    context = _context(precision)

    def write_decimal(out: bytearray, value: decimal.Decimal) -> None:
        unscaled = _unscaled(value, precision, scale, context)
        # Two's complement, sized from the magnitude like fastavro (-128 takes two bytes).
        data = unscaled.to_bytes((unscaled.bit_length() + 8) // 8, "big", signed=True)
        out.append(len(data) << 1)  # at most 17 bytes for 38 digits: a one-byte length
        out += data

    return write_decimal


def _write_string(out: bytearray, value: str) -> None:
    data = value.encode()
    encode_long(out, len(data))
    out += data


def _write_double(out: bytearray, value: float) -> None:
    out += _pack_double(value)


def _write_boolean(out: bytearray, value: bool) -> None:
    out.append(1 if value else 0)


def _write_date(out: bytearray, value: dt.date) -> None:
    encode_long(out, value.toordinal() - _EPOCH_ORDINAL)


def _write_timestamp_micros(out: bytearray, value: dt.datetime) -> None:
    # msgspec only lets aware datetimes through: the difference is exact, whatever the offset.
    delta = value - _EPOCH
    encode_long(out, (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)


def _write_time_micros(out: bytearray, value: dt.time) -> None:
    seconds = (value.hour * 60 + value.minute) * 60 + value.second
    encode_long(out, seconds * 1_000_000 + value.microsecond)


def _write_uuid(out: bytearray, value: object) -> None:
    out.append(72)  # 36 characters, zigzagged
    out += _json_encode(value)[1:-1]
