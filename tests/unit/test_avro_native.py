"""The C writer (inlet/codec/_avro_native.c) against the fallback where it is not built, fastavro.

test_codec.py checks the shipped codec (the C writer) against fastavro's own bytes for the values a
consumer reads back; here both writers of the codec meet the same inputs, valid or not, and must
agree on every byte and every refusal (a refused decimal reads the same from either).
"""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inlet.codec._avro_writer import NATIVE, native_program, record_encoder
from inlet.codec.record_codec import EncodeResult, RecordCodec
from inlet.model.avro import avro_schema
from inlet.model.fields import FieldSpec
from tests.unit.test_avro import ALL_TYPES, f
from tests.unit.test_codec import as_json, encode, field_lists, records


def codecs(fields: list[FieldSpec]) -> tuple[RecordCodec, RecordCodec]:
    """The codec with the C writer, and with the fallback forced."""
    schema = avro_schema("Order", fields)
    return tuple(  # type: ignore[return-value]
        RecordCodec(fields, schema, schema_id=3, schema_version=1, native=native)
        for native in (True, False)
    )


def outcome(result: EncodeResult) -> tuple[Any, ...]:
    return (result.records, [(r.index, r.errors) for r in result.rejected], result.unknown_fields)


def test_the_c_writer_is_built() -> None:
    # setup.py builds it as optional (an install without a C compiler still works, on fastavro); the
    # product ships with it, so its absence is a failure, not a skip.
    assert NATIVE, "inlet.codec._avro_native is missing: `uv sync` could not compile it"


# What an install without a C compiler runs: the extension's import fails, and the codec's default
# writer is fastavro. In a process of its own, so that this one keeps its C writer.
_WITHOUT_THE_C_WRITER = """
import sys
sys.modules["inlet.codec._avro_native"] = None  # an import of it raises ImportError
import msgspec
from inlet.codec._avro_writer import NATIVE
from inlet.codec.bodies import parse_body
from inlet.codec.record_codec import RecordCodec
from inlet.model.avro import avro_schema
from inlet.model.fields import FieldSpec
fields = msgspec.json.decode(sys.argv[1], type=list[FieldSpec])
codec = RecordCodec(fields, avro_schema("Order", fields), schema_id=3, schema_version=1)
result = codec.encode(parse_body(sys.argv[2].encode(), "application/json"))
print(msgspec.json.encode([NATIVE, result.records, len(result.rejected)]).decode())
"""


def test_without_the_c_writer_the_codec_writes_with_fastavro() -> None:
    record = {
        "name": "Zoë",
        "count": -3,
        "ratio": 0.5,
        "paid": True,
        "day": "2024-02-29",
        "at": "2024-05-01T00:30:00.123456+02:00",
        "time of day": "13:14:15",
        "amount": "12.50",
        "id": "8a4c4f1e-2f5e-4f1a-9c55-5d1f0b0f3a7e",
        "state": "DONE",
        "tags": ["a", "b"],
        "days": [],
        "customer": {"e-mail": "a@b.c"},
        "total": 10**37,
        "address": {"city": "Lyon"},
    }
    body = msgspec.json.encode([record, {**record, "amount": "0.125"}]).decode()
    fields = msgspec.json.encode(ALL_TYPES).decode()
    ran = subprocess.run(
        [sys.executable, "-c", _WITHOUT_THE_C_WRITER, fields, body],
        check=True,
        capture_output=True,
        text=True,
    )
    built, records, rejected = msgspec.json.decode(ran.stdout)
    native, _ = codecs(ALL_TYPES)
    expected = encode(native, msgspec.json.decode(body))
    assert built is False
    assert records == msgspec.json.decode(msgspec.json.encode(expected.records))  # as JSON, both
    assert rejected == len(expected.rejected) == 1  # 0.125 has three decimal places


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_both_writers_write_the_same_bytes(data: st.DataObject) -> None:
    fields = data.draw(st.sampled_from([ALL_TYPES]) | field_lists())
    batch = data.draw(st.lists(records(fields), min_size=1, max_size=4))
    body = [
        as_json(fields, record, decimals_as_numbers=data.draw(st.booleans())) for record in batch
    ]
    native, fallback = codecs(fields)
    assert outcome(encode(native, body)) == outcome(encode(fallback, body))
    assert encode(native, body).rejected == []


@st.composite
def decimal_texts(draw: st.DrawFn) -> str:
    """Decimal texts of every shape: signs, exponents, leading and trailing zeros, many digits."""
    sign = draw(st.sampled_from(["", "-", "+"]))
    digits = draw(st.text("0123456789", min_size=1, max_size=45))
    point = draw(st.integers(0, len(digits)))
    whole, fraction = digits[:point] or "0", digits[point:]
    exponent = draw(st.sampled_from(["", "E0", "e+3", "E-2", "E+40", "E-45", "E+999999999999"]))
    return f"{sign}{whole}{'.' + fraction if fraction else ''}{exponent}"


@settings(max_examples=500, deadline=None)
@given(decimal_texts(), st.integers(1, 38), st.data())
def test_decimals_fit_or_are_refused_alike(text: str, precision: int, data: st.DataObject) -> None:
    scale = data.draw(st.integers(0, precision))
    fields = [f("amount", "decimal", precision=precision, scale=scale)]
    native, fallback = codecs(fields)
    for body in ([{"amount": text}], [{"amount": msgspec.Raw(text.lstrip("+").encode())}]):
        try:
            msgspec.json.decode(msgspec.json.encode(body))
        except msgspec.DecodeError:
            continue  # not a JSON number ("+1", "1.", "01"): only the string form applies
        assert outcome(encode(native, body)) == outcome(encode(fallback, body))


@pytest.mark.parametrize(
    ("text", "precision", "scale", "fits"),
    [
        ("1.500", 2, 1, True),  # trailing zeros carry nothing
        ("1" + "0" * 80 + "E-80", 1, 0, True),  # more digits than fit 64, all of them zeros
        ("1" + "0" * 80 + "1", 38, 0, False),
        ("0E+999999999999", 5, 2, True),  # zero, whatever its exponent
        ("-0.000", 3, 1, True),
        ("9" * 38, 38, 0, True),  # the largest 16-byte decimal
        ("-" + "9" * 38, 38, 0, True),
        ("1" + "0" * 38, 38, 0, False),
        ("0.1", 1, 0, False),
        ("NaN", 5, 2, False),
        ("-Infinity", 5, 2, False),
    ],
)
def test_decimal_edges(text: str, precision: int, scale: int, fits: bool) -> None:
    schema = avro_schema("Order", [f("amount", "decimal", precision=precision, scale=scale)])
    struct = msgspec.defstruct("Order", [("amount", Decimal)])
    record = struct(Decimal(text))
    results: list[bytes | str] = []
    for native in (True, False):
        encoder = record_encoder(schema, b"", native=native)
        try:
            results.append(encoder(record))
        except ValueError as refused:
            results.append(str(refused))
    assert results[0] == results[1]
    assert isinstance(results[0], bytes) == fits


def test_program_refuses_what_the_writer_does_not_know() -> None:
    for avro_type in ["float", ["string", "null"], {"type": "fixed", "size": 2, "name": "F"}]:
        with pytest.raises(ValueError, match=r"unsupported|only"):
            native_program(
                {"type": "record", "name": "R", "fields": [{"name": "a", "type": avro_type}]}
            )


def test_records_larger_than_the_writers_first_buffer() -> None:
    fields = [f("text"), f("tags", "array", items="string"), f("n", "integer")]
    body = [{"text": "é" * 50_000, "tags": [f"tag-{i}" for i in range(2_000)], "n": -(2**63)}]
    native, fallback = codecs(fields)
    result = encode(native, body)
    assert len(result.records[0][2]) > 100_000
    assert outcome(result) == outcome(encode(fallback, body))
