"""Example records into proposed fields (``inlet/codec/field_inference.py``), and the admin API's
``POST /v1/connectors/infer-fields``: the inference table, then the property that every proposal
is a definition the admin API accepts and that the examples themselves pass through the codec."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient

from inlet.codec.bodies import parse_body
from inlet.codec.errors import BodyTooLarge, BodyUnparseable, TooManyRecords, UnsupportedMediaType
from inlet.codec.field_inference import (
    MAX_EXAMPLE_BYTES,
    MAX_EXAMPLE_RECORDS,
    InferredFields,
    InvalidExample,
    infer_fields,
)
from inlet.codec.record_codec import RecordCodec
from inlet.model.avro import avro_schema
from inlet.model.fields import field_problems
from inlet.settings import Settings
from inlet.statelog.fold import InMemoryStateLog
from tests.registry_app import ADMIN_TOKEN, InMemoryRegistry

JSON = "application/json"
NDJSON = "application/x-ndjson"
CSV = "text/csv"


def spec(name: str, type_: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


def inferred(records: list[dict[str, Any]], content_type: str = JSON) -> list[dict[str, Any]]:
    if content_type == JSON:
        body = json.dumps(records).encode()
    else:
        body = b"\n".join(json.dumps(record).encode() for record in records)
    fields: list[dict[str, Any]] = msgspec.to_builtins(infer_fields(body, content_type).fields)
    return fields


def one(values: list[Any], content_type: str = JSON) -> dict[str, Any]:
    """The field proposed for key ``v`` holding ``values``, one record each."""
    (field,) = inferred([{"v": value} for value in values], content_type)
    del field["name"]
    return field


def decimal(precision: int, scale: int) -> dict[str, Any]:
    return {"type": "decimal", "precision": precision, "scale": scale}


# (JSON values of one field, the field proposed for them)
JSON_TABLE: list[tuple[list[Any], dict[str, Any]]] = [
    (["a", "b"], {"type": "string"}),
    ([True, False], {"type": "boolean"}),
    ([1, -2, 0], {"type": "integer"}),
    ([1.5, 2.25], {"type": "float"}),
    ([1, 2.5], {"type": "float"}),
    ([5.0, 7.0], {"type": "float"}),  # how Python writes an integral float: not fixed places
    ([1e20, 2.5], {"type": "float"}),
    ([2**63, 1], decimal(19, 0)),  # beyond Avro's long, exact
    ([10**40], {"type": "float"}),  # beyond 38 digits
    (["2026-11-26T10:00:00+01:00", "2026-11-26T09:00:00Z"], {"type": "datetime"}),
    (["2026-11-26T10:00:00"], {"type": "string"}),  # no offset: not a datetime Inlet takes
    (["2026-11-26", "2024-02-29"], {"type": "date"}),
    (["10:00:00", "23:59:59.123456"], {"type": "time"}),
    (["10:00:00Z"], {"type": "string"}),  # Avro's time has no zone
    (["123e4567-e89b-12d3-a456-426614174000"], {"type": "uuid"}),
    (["123e4567e89b12d3a456426614174000"], {"type": "string"}),  # a hex id, not a UUID's form
    (["19.90", "5.5"], decimal(18, 2)),
    (["19.90", "5"], decimal(18, 2)),  # a quoted integer beside a quoted decimal
    (["5", "42"], {"type": "string"}),  # quoted integers: ids, zip codes
    (["1234567890123456789012.5"], decimal(23, 1)),
    (["2026-11-26", "2026-11-26T10:00:00Z"], {"type": "string"}),
    (["abc", "2026-11-26"], {"type": "string"}),
    ([None, "a"], {"type": "string", "nullable": True}),
    ([None, None], {"type": "string", "nullable": True}),
    ([["a", "b"], []], {"type": "array", "items": "string"}),
    ([[1, 2], [3]], {"type": "array", "items": "integer"}),
    ([[1, 2.5]], {"type": "array", "items": "float"}),
    ([["19.90"]], {"type": "array", "items": "string"}),  # an item cannot be a decimal
    ([["2026-11-26"], ["2026-01-01"]], {"type": "array", "items": "date"}),
    ([[]], {"type": "array", "items": "string"}),
    (
        [{"x": 1}, {"x": 2, "y": "a"}],
        {"type": "object", "fields": [spec("x", "integer"), spec("y", "string", nullable=True)]},
    ),
]


@pytest.mark.parametrize(("values", "expected"), JSON_TABLE)
def test_json_values(values: list[Any], expected: dict[str, Any]) -> None:
    assert one(values) == expected
    assert one(values, NDJSON) == expected  # NDJSON is read the same way


def test_json_numbers_with_fixed_places_are_decimals() -> None:
    # A float's shortest text never ends in a zero after the point: 19.90 is written so on purpose.
    body = b'[{"v": 19.90}, {"v": 5.5}, {"v": 100}]'
    assert msgspec.to_builtins(infer_fields(body, JSON).fields) == [{"name": "v", **decimal(18, 2)}]
    body = b'[{"v": 12345678901234567890.125}]'
    assert msgspec.to_builtins(infer_fields(body, JSON).fields) == [
        {"name": "v", "type": "float"}  # no trailing zero: float
    ]
    body = b'[{"v": 12345678901234567890.120}]'
    assert msgspec.to_builtins(infer_fields(body, JSON).fields) == [{"name": "v", **decimal(23, 3)}]


def test_a_field_missing_from_a_record_is_nullable() -> None:
    assert inferred([{"a": 1, "b": "x"}, {"a": 2}]) == [
        spec("a", "integer"),
        spec("b", "string", nullable=True),
    ]


def test_names_are_kept_in_order_of_first_appearance() -> None:
    records = [{"Order ID": "o-1", "2fa": True}, {"total-amount": 3, "Order ID": "o-2"}]
    assert [field["name"] for field in inferred(records)] == ["Order ID", "2fa", "total-amount"]


def test_nested_objects_and_their_nullable_keys() -> None:
    records: list[dict[str, Any]] = [
        {"customer": {"name": "A", "address": {"city": "X", "zip": "01234"}}},
        {"customer": {"name": "B", "address": {"city": "Y"}, "vip": True}},
        {"customer": None},
    ]
    assert inferred(records) == [
        {
            "name": "customer",
            "type": "object",
            "nullable": True,
            "fields": [
                spec("name", "string"),
                {
                    "name": "address",
                    "type": "object",
                    "fields": [spec("city", "string"), spec("zip", "string", nullable=True)],
                },
                spec("vip", "boolean", nullable=True),
            ],
        }
    ]


@pytest.mark.parametrize(
    ("record", "path", "reason"),
    [
        ({"a": 1, "_inlet_offset": 2}, "_inlet_offset", "reserved"),
        ({"a": 1, 'say "hi"': 2}, 'say "hi"', "must not contain"),
        ({"a": 1, "---": 2}, "---", "letter or digit"),
        ({"a": 1, "A": 2}, "A", "collides with 'a'"),
        ({"a": 1, "o": {}}, "o", "no usable key"),
        ({"a": 1, "o": {"_inlet_x": 1}}, "o._inlet_x", "reserved"),
        ({"a": 1, "l": [1, None]}, "l", "null"),
        ({"a": 1, "l": [[1]]}, "l", "scalars"),
        ({"a": 1, "l": [1, "x"]}, "l", "several kinds"),
    ],
)
def test_what_cannot_be_a_field_is_left_out_with_a_note(
    record: dict[str, Any], path: str, reason: str
) -> None:
    result = infer_fields(json.dumps(record).encode(), JSON)
    assert [field.name for field in result.fields] == ["a"]
    assert result.notes[0].field == path  # ("o" then has no usable key left, a note too)
    assert reason in result.notes[0].reason


def test_values_of_several_kinds_are_a_string_with_a_note() -> None:
    result = infer_fields(b'[{"v": 1}, {"v": "x"}]', JSON)
    assert msgspec.to_builtins(result.fields) == [spec("v", "string")]
    (note,) = result.notes
    assert note.field == "v"
    assert "integer, string" in note.reason
    assert "refused" in note.reason  # the JSON integer does not pass a string field


def test_objects_deeper_than_the_nesting_limit_are_left_out() -> None:
    record: dict[str, Any] = {"leaf": 1}
    for _ in range(40):
        record = {"o": record, "n": 1}
    result = infer_fields(json.dumps(record).encode(), JSON)
    assert any("nest at most 32" in note.reason for note in result.notes)
    assert field_problems(result.fields, None) == []
    levels, fields = 0, result.fields
    while fields[0].type == "object":
        levels, fields = levels + 1, fields[0].fields or []
    assert levels == 32


# (CSV cells of one column, the field proposed for them); "" is an empty cell.
CSV_TABLE: list[tuple[list[str], dict[str, Any]]] = [
    (["a", "b"], {"type": "string"}),
    (["1", "-20", "0"], {"type": "integer"}),
    (["007", "1"], {"type": "string"}),  # a leading zero: a code, not a number
    (["true", "FALSE", "True"], {"type": "boolean"}),
    (["1.5", "2"], {"type": "float"}),
    (["1.50", "2"], decimal(18, 2)),
    (["1e5"], {"type": "float"}),
    (["2026-11-26T10:00:00Z"], {"type": "datetime"}),
    (["2026-11-26"], {"type": "date"}),
    (["10:00:00"], {"type": "time"}),
    (["123e4567-e89b-12d3-a456-426614174000"], {"type": "uuid"}),
    (["a", ""], {"type": "string", "nullable": True}),
    (["", ""], {"type": "string", "nullable": True}),
    (["1", "x"], {"type": "string"}),  # every cell is text: a string field takes them all
    (['["a","b"]', "[]"], {"type": "array", "items": "string"}),
    (['{"x": 1}'], {"type": "object", "fields": [spec("x", "integer")]}),
    (["[not json"], {"type": "string"}),
]


def csv_body(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


@pytest.mark.parametrize(("cells", "expected"), CSV_TABLE)
def test_csv_cells(cells: list[str], expected: dict[str, Any]) -> None:
    body = csv_body(["id", "v"], [[str(i), cell] for i, cell in enumerate(cells)])
    result = infer_fields(body, CSV)
    fields = msgspec.to_builtins(result.fields)
    assert fields[0] == spec("id", "integer")
    assert fields[1] == {"name": "v", **expected}


def test_csv_header_names_every_field_in_order() -> None:
    body = b"b,a,c\nx,1,\n"
    assert [field.name for field in infer_fields(body, CSV).fields] == ["b", "a", "c"]


def test_gzip_bodies_are_read() -> None:
    body = gzip.compress(b'{"a": 1}\n{"a": 2}\n')
    result = infer_fields(body, NDJSON, "gzip")
    assert msgspec.to_builtins(result.fields) == [spec("a", "integer")]


def test_no_records_propose_nothing_and_say_so() -> None:
    result = infer_fields(b"[]", JSON)
    assert result.fields == []
    assert result.notes[0].reason.startswith("no field found")


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        (b"[1, 2]", JSON, InvalidExample),
        (b'{"a": 1}\n"x"\n', NDJSON, InvalidExample),
        (b"{", JSON, BodyUnparseable),
        (b"<a/>", "application/xml", UnsupportedMediaType),
        (b"[" + b"1," * MAX_EXAMPLE_BYTES + b"1]", JSON, BodyTooLarge),
        (b"{}\n" * (MAX_EXAMPLE_RECORDS + 1), NDJSON, TooManyRecords),
    ],
)
def test_bodies_that_cannot_be_examples(body: bytes, content_type: str, error: type) -> None:
    with pytest.raises(error):
        infer_fields(body, content_type)


# --- The property: a proposal is a definition, and the examples pass it --------------------------

_OFFSETS = [dt.UTC, dt.timezone(dt.timedelta(hours=1)), dt.timezone(dt.timedelta(hours=-5.5))]
_SCALAR_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "string": st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12),
    "integer": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(allow_nan=False, allow_infinity=False),
    "boolean": st.booleans(),
    "date": st.dates().map(dt.date.isoformat),
    "datetime": st.builds(
        lambda moment, zone: moment.replace(tzinfo=zone).isoformat(),
        st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)),
        st.sampled_from(_OFFSETS),
    ),
    "time": st.times().map(dt.time.isoformat),
    "uuid": st.uuids().map(str),
    "decimal": st.decimals(min_value=-(10**8), max_value=10**8, places=2).map(str),
}
_NAMES = st.text("abcdefghij", min_size=1, max_size=6)


def _fields_and_values(depth: int) -> st.SearchStrategy[dict[str, st.SearchStrategy[Any]]]:
    """A record shape: each key with a strategy for its values (a field's type, kept to)."""
    leaf = st.sampled_from(sorted(_SCALAR_VALUES)).map(lambda kind: _SCALAR_VALUES[kind])
    array = st.sampled_from(sorted(set(_SCALAR_VALUES) - {"decimal"})).map(
        lambda kind: st.lists(_SCALAR_VALUES[kind], max_size=3)
    )
    value = st.one_of(leaf, array)
    if depth < 2:
        value = st.one_of(value, _fields_and_values(depth + 1).map(_records_of))
    return st.dictionaries(
        _NAMES, st.tuples(value, st.booleans()).map(_maybe_null), min_size=1, max_size=5
    )


def _maybe_null(pair: tuple[st.SearchStrategy[Any], bool]) -> st.SearchStrategy[Any]:
    values, nullable = pair
    return st.one_of(values, st.none()) if nullable else values


def _records_of(shape: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=shape)


def _check(result: InferredFields, batch_body: bytes, content_type: str) -> None:
    if not result.fields:  # the records hold no key a field could be
        assert result.notes
        return
    assert field_problems(result.fields, None) == []
    codec = RecordCodec(
        result.fields, avro_schema("example", result.fields), schema_id=1, schema_version=1
    )
    batch = parse_body(batch_body, content_type)
    encoded = codec.encode(batch)
    # Each key's values were of one type: no proposal may refuse one of them.
    assert not encoded.rejected, (encoded.rejected, result)
    assert not [note for note in result.notes if "refused" in note.reason]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), as_ndjson=st.booleans())
def test_the_examples_pass_what_is_proposed_for_them(data: st.DataObject, as_ndjson: bool) -> None:
    shape = data.draw(_fields_and_values(0))
    records = data.draw(st.lists(_records_of(shape), min_size=1, max_size=8))
    if as_ndjson:
        body, content_type = b"\n".join(msgspec.json.encode(r) for r in records), NDJSON
    else:
        body, content_type = msgspec.json.encode(records), JSON
    _check(infer_fields(body, content_type), body, content_type)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_csv_examples_pass_what_is_proposed_for_them(data: st.DataObject) -> None:
    kinds = data.draw(
        st.dictionaries(_NAMES, st.sampled_from(sorted(_SCALAR_VALUES)), min_size=1, max_size=5)
    )
    rows = data.draw(
        st.lists(
            st.tuples(*(_SCALAR_VALUES[kind] for kind in kinds.values())), min_size=1, max_size=8
        )
    )
    cells = [[_cell(value) for value in row] for row in rows]
    body = csv_body(list(kinds), cells)
    _check(infer_fields(body, CSV), body, CSV)


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float | Decimal | uuid.UUID):
        return str(value).replace("\x00", "")
    raise AssertionError(value)


# --- Over HTTP -----------------------------------------------------------------------------------


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[AsyncTestClient[Litestar]]:
    registry_settings = Settings(data_dir=str(tmp_path), public_gateway_url="https://in.example")
    registry = InMemoryRegistry(registry_settings, InMemoryStateLog)
    async with AsyncTestClient(registry.app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        yield test_client


async def test_the_admin_api_proposes_fields_a_create_accepts(
    client: AsyncTestClient[Litestar],
) -> None:
    body = (
        "id,total,placed,coupon\n"
        "o-1,19.90,2026-11-26T10:00:00+01:00,\n"
        "o-2,5.00,2026-11-26T10:05:00Z,WELCOME\n"
    )
    answer = await client.post(
        "/v1/connectors/infer-fields", content=body, headers={"Content-Type": CSV}
    )
    assert answer.status_code == 200, answer.text
    proposal = answer.json()
    assert proposal == {
        "fields": [
            spec("id", "string"),
            {"name": "total", **decimal(18, 2)},
            spec("placed", "datetime"),
            spec("coupon", "string", nullable=True),
        ],
        "notes": [],
    }
    created = await client.post(
        "/v1/connectors", json={"name": "orders", "fields": proposal["fields"]}
    )
    assert created.status_code == 201, created.text


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"[1]", JSON, 422, "invalid_example"),
        (b"{", JSON, 400, "body_unparseable"),
        (b"a", "text/plain", 415, "unsupported_media_type"),
        (b"{}\n" * (MAX_EXAMPLE_RECORDS + 1), NDJSON, 413, "too_many_records"),
    ],
)
async def test_the_admin_api_refuses_what_is_no_example(
    client: AsyncTestClient[Litestar], body: bytes, content_type: str, status: int, code: str
) -> None:
    answer = await client.post(
        "/v1/connectors/infer-fields", content=body, headers={"Content-Type": content_type}
    )
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code


async def test_infer_fields_needs_the_admin_token(client: AsyncTestClient[Litestar]) -> None:
    del client.headers["Authorization"]
    answer = await client.post("/v1/connectors/infer-fields", content=b"{}")
    assert answer.status_code == 401
