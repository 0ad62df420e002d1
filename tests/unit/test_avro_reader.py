"""The C reader (inlet/codec/_avro_native_reader.c) against fastavro's own ``schemaless_reader``.

Generated schemas (``avro_schema`` of generated connector fields, as the writer's differential
test makes them) and generated values, written by fastavro; every way the C reader reads them
(``read``, ``read_rows``, ``read_columns``) must give the values fastavro reads back, of the same
types (a ``Decimal`` with the same digits and exponent, a ``datetime`` in ``timezone.utc``).
Then bytes that are no such value: every cut of a valid body is refused, and random bytes either
are refused or read as fastavro reads them. Where the C reader is not built, fastavro reads the
batches (``BatchReader`` falls back), in a process of its own here.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import math
import subprocess
import sys
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import fastavro
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inlet.codec._avro_reader import NATIVE, BatchReader, reader_program
from inlet.codec.wire import UndecodableRecord, UnknownSchema, WireDecoder
from inlet.model.avro import avro_schema
from inlet.records import wire_frame
from tests.unit.test_avro import ALL_TYPES, f
from tests.unit.test_avro_differential import _DecimalDoesNotFit, _fastavro_datum, values
from tests.unit.test_codec import field_lists

_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def same(left: Any, right: Any) -> bool:
    """Equal, of the same types all the way down (NaN equal to NaN, -0.0 not to 0.0)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return list(left) == list(right) and all(same(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(map(same, left, right))
    if isinstance(left, float):
        return (math.isnan(left) and math.isnan(right)) or (
            left == right and math.copysign(1, left) == math.copysign(1, right)
        )
    if isinstance(left, Decimal):
        return bool(left.as_tuple() == right.as_tuple())
    if isinstance(left, dt.datetime):
        return left == right and left.tzinfo is right.tzinfo
    if isinstance(left, uuid.UUID):
        return bool(left == right and left.is_safe == right.is_safe)
    return bool(left == right)


def _bodies(data: st.DataObject) -> tuple[dict[str, Any], list[bytes]]:
    fields = data.draw(st.sampled_from([ALL_TYPES]) | field_lists(), label="fields")
    schema = avro_schema("Order", fields)
    parsed = fastavro.parse_schema(schema)
    bodies = []
    for record in data.draw(st.lists(values(schema), min_size=1, max_size=4), label="records"):
        try:
            datum = _fastavro_datum(schema, record)
        except _DecimalDoesNotFit:
            continue
        out = io.BytesIO()
        try:
            fastavro.schemaless_writer(out, parsed, datum)
        except (ValueError, ArithmeticError, TypeError, AttributeError):
            continue  # a value no writer takes (a long beyond 64 bits, a lone surrogate...)
        bodies.append(out.getvalue())
    return schema, bodies


def _uuids_as_text(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {key: _uuids_as_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_uuids_as_text(item) for item in value]
    return value


def _fastavro_reads(schema: dict[str, Any], body: bytes) -> Any:
    return fastavro.schemaless_reader(io.BytesIO(body), fastavro.parse_schema(schema), None)


def test_the_c_reader_is_built() -> None:
    # Optional in setup.py like the writer; the product ships with it: its absence fails.
    assert NATIVE, "inlet.codec._avro_native_reader is missing: `uv sync` could not compile it"


def _outcome(read: Callable[[], Any]) -> Any:
    """A read's value, or the type of what it raised (a value past year 9999 in UTC...)."""
    try:
        return read()
    except (EOFError, ValueError, IndexError, OverflowError) as exc:
        return type(exc)


def _outcomes(rows: list[Any], failures: list[tuple[int, Exception]]) -> list[Any]:
    refused = {index: type(error) for index, error in failures}
    return [refused.get(index, row) for index, row in enumerate(rows)]


@_SETTINGS
@given(st.data())
def test_the_c_reader_reads_what_fastavro_reads(data: st.DataObject) -> None:
    schema, bodies = _bodies(data)
    reader = BatchReader(schema)
    assert reader.native
    expected = [_outcome(functools.partial(_fastavro_reads, schema, body)) for body in bodies]
    framed = [b"\0\0\0\0\7" + body for body in bodies]
    assert all(map(same, _outcomes(*reader.rows(framed, 5)), expected))
    ones = [_outcome(functools.partial(reader.one, value, 5)) for value in framed]
    assert all(map(same, ones, expected))
    fallback = BatchReader(schema, native=False)
    assert not fallback.native
    assert all(map(same, _outcomes(*fallback.rows(framed, 5)), expected))
    # As text: every UUID is what str() of fastavro's UUID gives; nothing else changes.
    as_text = BatchReader(schema, uuid_text=True)
    assert all(map(same, _outcomes(*as_text.rows(framed, 5)), map(_uuids_as_text, expected)))
    columns = reader.columns(framed, 5)
    assert columns.names == tuple(field["name"] for field in schema["fields"])
    assert [i for i, _ in columns.failures] == [
        i for i, e in enumerate(expected) if type(e) is type
    ]
    kept = [record for record in expected if type(record) is not type]
    for name, column in zip(columns.names, columns.values, strict=True):
        assert same(column, [record[name] for record in kept])


@_SETTINGS
@given(st.data())
def test_a_cut_value_is_refused_and_the_others_still_read(data: st.DataObject) -> None:
    schema, bodies = _bodies(data)
    reader = BatchReader(schema)
    for body in bodies:
        cut = data.draw(st.integers(0, max(0, len(body) - 1)), label="cut")
        whole = _outcome(functools.partial(_fastavro_reads, schema, body))
        if cut >= len(body) or type(whole) is type:
            continue
        rows, failures = reader.rows([body[:cut], body, body[:cut]], 0)
        assert [index for index, _ in failures] == [0, 2]
        assert rows[0] is None
        assert rows[2] is None
        assert same(rows[1], whole)
        with pytest.raises((EOFError, ValueError, IndexError)):
            _fastavro_reads(schema, body[:cut])
        columns = reader.columns([body[:cut], body], 0)
        assert [len(column) for column in columns.values] == [1] * len(columns.names)


@_SETTINGS
@given(st.data(), st.binary(max_size=200))
def test_garbage_is_refused_or_read_as_fastavro_reads_it(
    data: st.DataObject, garbage: bytes
) -> None:
    schema, bodies = _bodies(data)
    reader = BatchReader(schema)
    for value in [garbage, *(body[: len(body) // 2] + garbage for body in bodies)]:
        rows, failures = reader.rows([value], 0)
        if failures:
            continue  # fastavro may take it (an overlong varint it wraps): the C reader need not
        assert same(rows[0], _fastavro_reads(schema, value))


def test_edges_go_to_fastavros_own_readers() -> None:
    fields = [f("day", "date"), f("at", "datetime"), f("t", "time"), f("id", "uuid")]
    schema = avro_schema("Order", [*fields, f("amount", "decimal", precision=3, scale=1)])
    reader = BatchReader(schema)

    def body(day: int, at: int, t: int, text: str, unscaled: bytes) -> bytes:
        out = io.BytesIO()
        for number in (day, at, t):
            out.write(_long(number))
        out.write(_long(len(text.encode())) + text.encode())
        out.write(_long(len(unscaled)) + unscaled)
        return out.getvalue()

    values = [
        body(0, 0, 0, "{12345678123456781234567812345678}", b"\x7f\xff"),  # braces; 5 digits
        body(0, 0, -1, "12345678123456781234567812345678", b"\x01"),  # a negative time
        body(2932897, 0, 0, "00000000-0000-0000-0000-000000000000", b""),  # year 10000
        body(0, 2**62, 0, "00000000-0000-0000-0000-000000000000", b"\x01"),  # beyond a datetime
        body(0, 0, 0, "not a uuid", b"\x01"),
    ]
    rows, failures = reader.rows(values, 0)
    expected = [_outcome(functools.partial(_fastavro_reads, schema, value)) for value in values]
    assert all(map(same, _outcomes(rows, failures), expected))
    assert len(failures) == 3  # year 10000, a datetime beyond its range, "not a uuid"
    # As text, the same, with each UUID's text as str(UUID(text)) gives it.
    rows, failures = BatchReader(schema, uuid_text=True).rows(values, 0)
    assert all(map(same, _outcomes(rows, failures), map(_uuids_as_text, expected)))


def test_uuid_text_is_the_uuids_own_text() -> None:
    schema = avro_schema("Order", [f("id", "uuid"), f("ids", "array", items="uuid")])
    reader = BatchReader(schema, uuid_text=True)
    texts = [
        "123E4567-E89B-12D3-A456-426614174ABC",  # upper case: str() gives lower case
        "123e4567-e89b-12d3-a456-426614174abc",
        "{123e4567-e89b-12d3-a456-426614174abc}",  # another notation: UUID(text) reads it
        "urn:uuid:123e4567-e89b-12d3-a456-426614174abc",
        "123e4567-e89b-12d3-a456-42661417zabc",  # not hex: refused, as UUID(text) refuses it
    ]

    def body(text: str) -> bytes:
        encoded = _long(len(text)) + text.encode()
        return encoded + _long(1) + encoded + _long(0)

    rows, failures = reader.rows([body(text) for text in texts], 0)
    canonical = "123e4567-e89b-12d3-a456-426614174abc"
    assert rows[:4] == [{"id": canonical, "ids": [canonical]}] * 4
    assert all(type(row["id"]) is str for row in rows[:4] if row is not None)
    assert [index for index, _ in failures] == [4]
    assert BatchReader(schema).rows([body(texts[0])], 0).rows == [
        {"id": uuid.UUID(canonical), "ids": [uuid.UUID(canonical)]}
    ]


def _long(number: int) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, "long", number)
    return out.getvalue()


def test_the_program_refuses_types_the_reader_lacks() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        reader_program({"type": "record", "name": "R", "fields": [{"name": "f", "type": "float"}]})
    # Such a schema (registered by hand elsewhere) is read by fastavro.
    schema = {"type": "record", "name": "R", "fields": [{"name": "f", "type": "float"}]}
    reader = BatchReader(schema)
    assert not reader.native
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, {"f": 1.5})
    assert reader.rows([out.getvalue()], 0).rows == [{"f": 1.5}]


def test_a_batch_decodes_as_value_by_value() -> None:
    schema = avro_schema("Order", ALL_TYPES[:4])
    texts = {7: msgspec.json.encode(schema).decode(), 8: '"string"'}
    decoder = WireDecoder(texts.get)
    good = io.BytesIO()
    fastavro.schemaless_writer(good, schema, {"name": "a", "count": 1, "ratio": 0.5, "paid": True})
    text = io.BytesIO()
    fastavro.schemaless_writer(text, "string", "just text")
    values: list[bytes | None] = [
        wire_frame(7, good.getvalue()),
        None,
        b"\x01garbage",
        wire_frame(9, good.getvalue()),  # not at hand
        wire_frame(7, good.getvalue()[:3]),
        wire_frame(8, text.getvalue()),  # not a record schema
        wire_frame(7, good.getvalue()),
    ]
    batch = decoder.decode_typed_batch(values)
    for value, result in zip(values, batch, strict=True):
        try:
            expected: Any = decoder.decode_typed(value)
        except (UndecodableRecord, UnknownSchema) as exc:
            expected = exc
        if isinstance(expected, Exception):
            assert (type(result), str(result)) == (type(expected), str(expected))
        else:
            assert result == expected


@pytest.mark.parametrize(
    "cut",
    [
        lambda good: [good, good[:7], good],  # one schema id, one value cut short
        lambda good: [good[:3]] * 3,  # one "header", too short to be one
        lambda good: [b"\x01" + good[1:]] * 2,  # one header, not the wire format's
        lambda good: [wire_frame(9, good[5:])] * 2,  # one schema id, not at hand
        lambda good: [good, None, good],
    ],
)
def test_a_batch_of_one_header_decodes_as_value_by_value(
    cut: Callable[[bytes], list[bytes | None]],
) -> None:
    schema = avro_schema("Order", ALL_TYPES[:4])
    decoder = WireDecoder({7: msgspec.json.encode(schema).decode()}.get)
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, {"name": "a", "count": 1, "ratio": 0.5, "paid": True})
    values = cut(wire_frame(7, out.getvalue()))
    batch = decoder.decode_typed_batch(values)
    for value, result in zip(values, batch, strict=True):
        try:
            expected: Any = decoder.decode_typed(value)
        except (UndecodableRecord, UnknownSchema) as exc:
            expected = exc
        if isinstance(expected, Exception):
            assert (type(result), str(result)) == (type(expected), str(expected))
        else:
            assert result == expected


# What an install without a C compiler runs: the reader's import fails, and fastavro reads.
_WITHOUT_THE_C_READER = """
import sys
sys.modules["inlet.codec._avro_native_reader"] = None  # an import of it raises ImportError
import io, fastavro, msgspec
from inlet.codec._avro_reader import NATIVE
from inlet.codec.wire import WireDecoder
from inlet.records import wire_frame
schema = msgspec.json.decode(sys.argv[1])
out = io.BytesIO()
fastavro.schemaless_writer(out, fastavro.parse_schema(schema), msgspec.json.decode(sys.argv[2]))
decoder = WireDecoder({3: sys.argv[1]}.get)
batch = decoder.decode_typed_batch([wire_frame(3, out.getvalue()), b"x"])
print(msgspec.json.encode([NATIVE, batch[0], type(batch[1]).__name__]).decode())
"""


def test_without_the_c_reader_batches_are_read_by_fastavro() -> None:
    schema = avro_schema("Order", ALL_TYPES[:4])
    record = {"name": "Zoë", "count": -3, "ratio": 0.5, "paid": True}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _WITHOUT_THE_C_READER,
            msgspec.json.encode(schema).decode(),
            msgspec.json.encode(record).decode(),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    native, decoded, refused = msgspec.json.decode(done.stdout)
    assert native is False
    assert decoded == [3, record]
    assert refused == "UndecodableRecord"
