"""The C writer against fastavro's own ``schemaless_writer``: generated schemas, generated values.

The schemas are what connector fields map to (``avro_schema`` of generated field lists: every field
type, nested objects, arrays, nullable unions, decimals, timestamps, dates, times, UUIDs, enums);
the values are Python values straight into both writers, the edges included (the ends of int64, of
datetime and of the UTC offsets, NaN and infinities, lone surrogates, symbols not in the enum,
decimals in every notation). Either both writers write the very same bytes, or both refuse.

Decimals are where the two differ by design, so they are judged by exact arithmetic instead:
fastavro reads a Decimal's digits as written (it refuses 1.50 for decimal(2,1), and takes 1E+5 for
decimal(2,0), six digits); the C writer takes a value when it fits decimal(p, s) exactly, whatever
its notation. A value that fits goes to fastavro quantized to the scale (the same number, written
with s decimal places), and the bytes must match; one that does not makes the C writer refuse.

test_avro_sanitized.py runs this module again against a build under AddressSanitizer + UBSan,
with fewer examples.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import os
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import fastavro
import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inlet.codec._avro_writer import record_encoder
from inlet.model.avro import avro_schema
from tests.unit.test_avro import ALL_TYPES
from tests.unit.test_codec import field_lists

# Set by test_avro_sanitized.py for its run under the sanitizers: slower, so fewer examples.
EXAMPLES = 100 if os.environ.get("AVRO_WRITER_SANITIZED") else 300

_ONE_DAY = dt.timedelta(days=1)
_OFFSETS = st.sampled_from(
    [dt.timedelta(0), _ONE_DAY - dt.timedelta(microseconds=1), dt.timedelta(hours=-5)]
) | st.timedeltas(-_ONE_DAY + dt.timedelta(microseconds=1), _ONE_DAY - dt.timedelta(microseconds=1))
_ZONES = st.builds(dt.timezone, _OFFSETS)

_INT64 = 2**63
_LONGS = st.one_of(
    st.integers(-_INT64, _INT64 - 1),
    st.sampled_from([0, -1, 1, 63, 64, -64, -65, _INT64 - 1, -_INT64]),
    st.sampled_from([_INT64, -_INT64 - 1, 10**30]),  # beyond a long: both refuse
)
_TEXTS = st.text() | st.sampled_from(["", "é" * 300, "\x00", "\ud800", "a\udfffb"])  # surrogates

_LEAVES: dict[object, st.SearchStrategy[Any]] = {
    "string": _TEXTS,
    "long": _LONGS,
    "double": st.floats() | st.sampled_from([0.0, -0.0, float("inf"), float("nan")]),
    "boolean": st.booleans(),
    "date": st.dates(),
    "timestamp-micros": st.datetimes(timezones=_ZONES)
    | st.sampled_from(
        [
            dt.datetime.min.replace(tzinfo=dt.timezone(_ONE_DAY - dt.timedelta(microseconds=1))),
            dt.datetime.max.replace(tzinfo=dt.timezone(-_ONE_DAY + dt.timedelta(microseconds=1))),
            dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        ]
    ),
    "time-micros": st.times(timezones=st.none() | _ZONES),
    "uuid": st.uuids(),
}


def _decimals(precision: int, scale: int) -> st.SearchStrategy[Decimal]:
    """Values that fit decimal(precision, scale), in any notation, and many that do not."""
    bound = 10**precision
    unscaled = st.integers(-bound + 1, bound - 1) | st.sampled_from([0, bound - 1, 1 - bound])
    zeros = st.integers(0, 4)  # 1.5 as 1.50, 1.500, 15E-1, 150E-2...

    def written(number: int, extra: int, exponent_form: bool) -> Decimal:
        text = f"{number * 10**extra}E-{scale + extra}"
        value = Decimal(text)
        return value if exponent_form else Decimal(str(value))

    fitting = st.builds(written, unscaled, zeros, st.booleans())
    others = st.decimals(allow_nan=True, allow_infinity=True) | st.sampled_from(
        [Decimal("1E+5"), Decimal(bound), Decimal(1).scaleb(-scale - 1), Decimal("-0E-50")]
    )
    return fitting | others


def values(schema: object) -> st.SearchStrategy[Any]:
    """Python values for an Avro schema of ``avro_schema``'s making; records as dicts."""
    if isinstance(schema, list):  # ["null", T]
        return st.none() | values(schema[1])
    if isinstance(schema, str):
        return _LEAVES[schema]
    assert isinstance(schema, Mapping)
    kind, logical = schema["type"], schema.get("logicalType")
    if logical == "decimal":
        return _decimals(int(schema["precision"]), int(schema["scale"]))
    if logical is not None:
        return _LEAVES[logical]
    if kind == "enum":
        symbols = list(schema["symbols"])
        return st.sampled_from(symbols) | st.sampled_from(["", "Z", symbols[0].lower() + "x"])
    if kind == "array":
        return st.lists(values(schema["items"]), max_size=5)
    if kind == "record":
        return st.fixed_dictionaries({f["name"]: values(f["type"]) for f in schema["fields"]})
    return values(kind)


def _struct_types(schema: Mapping[str, Any]) -> Callable[[Any], Any]:
    """What turns a generated record (a dict) into the Structs the C writer takes."""
    fields = schema["fields"]
    struct = msgspec.defstruct(schema["name"], [(f"f{i}", object) for i in range(len(fields))])
    converts = [_to_struct(field["type"]) for field in fields]

    def build(record: Mapping[str, Any]) -> Any:
        return struct(
            *(
                convert(record[field["name"]])
                for field, convert in zip(fields, converts, strict=True)
            )
        )

    return build


def _to_struct(schema: object) -> Callable[[Any], Any]:
    if isinstance(schema, list):
        inner = _to_struct(schema[1])
        return lambda value: None if value is None else inner(value)
    if isinstance(schema, Mapping) and schema["type"] == "record":
        return _struct_types(schema)
    return lambda value: value


class _DecimalDoesNotFit(Exception):
    pass


def _fastavro_datum(schema: object, value: Any) -> Any:
    """``value`` for fastavro: decimals quantized to their scale; _DecimalDoesNotFit when one
    does not fit its decimal(p, s) exactly."""
    if value is None or isinstance(schema, str):
        return value
    if isinstance(schema, list):
        return _fastavro_datum(schema[1], value)
    assert isinstance(schema, Mapping)
    if schema.get("logicalType") == "decimal":
        return _quantized(value, int(schema["precision"]), int(schema["scale"]))
    if schema["type"] == "array":
        return [_fastavro_datum(schema["items"], item) for item in value]
    if schema["type"] == "record":
        return {f["name"]: _fastavro_datum(f["type"], value[f["name"]]) for f in schema["fields"]}
    return value


_EXACT = decimal.Context(prec=10_000, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


def _quantized(value: Decimal, precision: int, scale: int) -> Decimal:
    """The decimal written with ``scale`` places, when it fits decimal(precision, scale) exactly:
    the test's own arithmetic, not the writers'."""
    if not value.is_finite():
        raise _DecimalDoesNotFit
    try:
        unscaled = value.scaleb(scale, _EXACT)
        exact = unscaled == unscaled.to_integral_value(context=_EXACT)
    except ArithmeticError:  # an exponent beyond any context: far from fitting
        raise _DecimalDoesNotFit from None
    if not exact or unscaled.copy_abs() >= 10**precision:  # abs() would round to 28 digits
        raise _DecimalDoesNotFit
    return value.quantize(Decimal(1).scaleb(-scale), context=_EXACT)


def _fastavro_outcome(parsed: Any, datum: Any) -> bytes | None:
    out = io.BytesIO()
    try:
        fastavro.schemaless_writer(out, parsed, datum)
    except (ValueError, ArithmeticError, TypeError, AttributeError):
        return None  # refused
    return out.getvalue()


def _native_outcome(encode: Callable[[Any], bytes], record: Any) -> bytes | None:
    try:
        return encode(record)
    except (ValueError, ArithmeticError):  # what the codec takes as a record it cannot write
        return None


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_the_c_writer_writes_fastavros_bytes(data: st.DataObject) -> None:
    fields = data.draw(st.sampled_from([ALL_TYPES]) | field_lists(), label="fields")
    schema = avro_schema("Order", fields)
    encode = record_encoder(schema, b"", native=True)
    parsed = fastavro.parse_schema(schema)
    to_struct = _struct_types(schema)
    for record in data.draw(st.lists(values(schema), min_size=1, max_size=3), label="records"):
        native = _native_outcome(encode, to_struct(record))
        try:
            datum = _fastavro_datum(schema, record)
        except _DecimalDoesNotFit:
            assert native is None, "the C writer took a decimal that does not fit"
            continue
        assert native == _fastavro_outcome(parsed, datum)
