from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from decimal import Decimal
from typing import Any

import fastavro
import msgspec
import pytest

from inlet.errors import InvalidConnector
from inlet.model.avro import avro_field_names, avro_schema, schema_json
from inlet.model.fields import FieldSpec


def f(name: str, type_: str = "string", **attributes: object) -> FieldSpec:
    return msgspec.convert({"name": name, "type": type_, **attributes}, FieldSpec)


def only_field(spec: FieldSpec) -> dict[str, Any]:
    fields: list[dict[str, Any]] = avro_schema("R", [spec])["fields"]  # type: ignore[assignment]
    assert len(fields) == 1
    return fields[0]


def round_trip(schema: dict[str, object], record: dict[str, object]) -> object:
    parsed = fastavro.parse_schema(schema)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, record)
    buffer.seek(0)
    return fastavro.schemaless_reader(buffer, parsed, parsed)


@pytest.mark.parametrize(
    ("spec", "avro_type"),
    [
        (f("x"), "string"),
        (f("x", "integer"), "long"),
        (f("x", "float"), "double"),
        (f("x", "boolean"), "boolean"),
        (f("x", "date"), {"type": "int", "logicalType": "date"}),
        (f("x", "datetime"), {"type": "long", "logicalType": "timestamp-micros"}),
        (f("x", "time"), {"type": "long", "logicalType": "time-micros"}),
        (f("x", "uuid"), {"type": "string", "logicalType": "uuid"}),
        (
            f("x", "decimal", precision=12, scale=3),
            {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 3},
        ),
        (
            f("x", "decimal", precision=5),
            {"type": "bytes", "logicalType": "decimal", "precision": 5, "scale": 0},
        ),
        (
            f("x", "enum", symbols=["B", "A"]),
            {"name": "R_x", "type": "enum", "symbols": ["B", "A"]},
        ),
        (f("x", "array", items="integer"), {"type": "array", "items": "long"}),
        (
            f("x", "array", items="date"),
            {"type": "array", "items": {"type": "int", "logicalType": "date"}},
        ),
        (
            f("x", "object", fields=[f("y", "integer")]),
            {"name": "R_x", "type": "record", "fields": [{"name": "y", "type": "long"}]},
        ),
    ],
    ids=lambda value: value.type if isinstance(value, FieldSpec) else "",
)
def test_each_type_has_its_avro_form(spec: FieldSpec, avro_type: object) -> None:
    assert only_field(spec) == {"name": "x", "type": avro_type}  # required: no default
    nullable = msgspec.structs.replace(spec, nullable=True)
    assert only_field(nullable) == {"name": "x", "type": ["null", avro_type], "default": None}


def test_record_shape_doc_and_original_names() -> None:
    schema = avro_schema(
        "Shop orders", [f("order-id", doc="Shopify's id"), f("2fa", "boolean"), f("ok", doc="")]
    )
    assert schema == {
        "name": "Shop_orders",
        "type": "record",
        "fields": [
            {"name": "order_id", "type": "string", "doc": "Shopify's id", "inlet.name": "order-id"},
            {"name": "_2fa", "type": "boolean", "inlet.name": "2fa"},
            {"name": "ok", "type": "string", "doc": ""},
        ],
        "namespace": "inlet",
    }
    assert avro_schema("R", [f("a")], namespace="acme.events")["namespace"] == "acme.events"


def test_named_types_are_named_by_path_and_never_clash() -> None:
    fields = [
        f("status", "enum", symbols=["A"]),
        f("customer", "object", fields=[f("status", "enum", symbols=["B"])]),
        f("customer_status", "enum", symbols=["C"]),  # same path name as the nested enum
        f("Customer-Status-2", "enum", symbols=["D"]),  # the suffixed name, differently cased
    ]
    avro_fields: list[dict[str, Any]] = avro_schema("Order", fields)["fields"]  # type: ignore[assignment]
    assert avro_fields[0]["type"]["name"] == "Order_status"
    assert avro_fields[1]["type"]["name"] == "Order_customer"
    assert avro_fields[1]["type"]["fields"][0]["type"]["name"] == "Order_customer_status"
    assert avro_fields[2]["type"]["name"] == "Order_customer_status_2"
    assert avro_fields[3]["type"]["name"] == "Order_Customer_Status_2_2"
    fastavro.parse_schema(avro_schema("Order", fields))  # would raise on a redefined name


def test_invalid_input_is_rejected_with_all_problems() -> None:
    with pytest.raises(InvalidConnector) as caught:
        avro_schema("---", [f("a"), f("A"), f("d", "decimal")])
    assert [problem.field for problem in caught.value.problems] == [
        "name",
        "fields[1].name",
        "fields[2].precision",
    ]


def test_avro_field_names() -> None:
    fields = [f("order-id"), f("plain"), f("o", "object", fields=[f("Total Amount")])]
    assert avro_field_names(fields) == {"order-id": "order_id", "plain": "plain", "o": "o"}
    assert avro_field_names(fields[2].fields or []) == {"Total Amount": "Total_Amount"}
    with pytest.raises(ValueError, match="letter or digit"):
        avro_field_names([f("--")])


ALL_TYPES = [
    f("name", doc="name of the customer, ünïcödé"),
    f("count", "integer"),
    f("ratio", "float"),
    f("paid", "boolean"),
    f("day", "date"),
    f("at", "datetime"),
    f("time of day", "time"),
    f("amount", "decimal", precision=10, scale=2),
    f("id", "uuid"),
    f("state", "enum", symbols=["NEW", "DONE"]),
    f("tags", "array", items="string"),
    f("days", "array", items="date"),
    f("customer", "object", fields=[f("e-mail"), f("vip", "boolean", nullable=True)]),
    f("note", nullable=True),
    f("total", "decimal", precision=38, scale=0, nullable=True),
    f("address", "object", nullable=True, fields=[f("city")]),
]


def test_schema_json_is_compact_and_orders_keys() -> None:
    text = schema_json(avro_schema("Order", ALL_TYPES))
    assert ", " not in text.replace("customer, ü", "")
    assert ": " not in text
    assert text.startswith('{"name":"Order","type":"record","fields":[{"name":"name",')
    assert '"doc":"name of the customer, ünïcödé"' in text  # not \u-escaped
    assert (
        '{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}}'
        in text
    )
    assert (
        '{"name":"state","type":{"name":"Order_state","type":"enum","symbols":["NEW","DONE"]}}'
        in text
    )
    assert '"type":["null","string"],"default":null}' in text
    assert text.endswith('],"namespace":"inlet"}')
    assert json.loads(text) == avro_schema("Order", ALL_TYPES)


def test_schema_json_key_order_ignores_insertion_order() -> None:
    given = {
        "zeta": 1,
        "doc": "d",
        "default": None,
        "scale": 2,
        "precision": 9,
        "alpha": [{"b": 1, "a": 2}],
    }
    given |= {
        "logicalType": "decimal",
        "items": "x",
        "symbols": [],
        "fields": [],
        "type": "t",
        "name": "n",
    }
    expected = (
        '{"name":"n","type":"t","fields":[],"symbols":[],"items":"x","logicalType":"decimal",'
        '"precision":9,"scale":2,"default":null,"doc":"d","alpha":[{"a":2,"b":1}],"zeta":1}'
    )
    assert schema_json(given) == expected
    assert schema_json(dict(reversed(given.items()))) == expected


def test_generation_is_deterministic() -> None:
    first = schema_json(avro_schema("Order", ALL_TYPES))
    copies = msgspec.json.decode(msgspec.json.encode(ALL_TYPES), type=list[FieldSpec])
    assert schema_json(avro_schema("Order", copies)) == first
    assert json.dumps(avro_schema("Order", ALL_TYPES)) == json.dumps(avro_schema("Order", copies))


def test_every_type_round_trips_through_fastavro() -> None:
    schema = avro_schema("Order", ALL_TYPES)
    record: dict[str, object] = {
        "name": "Zoë",
        "count": -(2**40),
        "ratio": 0.25,
        "paid": True,
        "day": dt.date(2024, 2, 29),
        "at": dt.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=dt.UTC),
        "time_of_day": dt.time(13, 14, 15, 999999),
        "amount": Decimal("-12345678.90"),
        "id": uuid.UUID("8a4c4f1e-2f5e-4f1a-9c55-5d1f0b0f3a7e"),
        "state": "DONE",
        "tags": ["a", "b"],
        "days": [dt.date(1970, 1, 1), dt.date(1969, 12, 31)],
        "customer": {"e_mail": "z@example.com", "vip": None},
        "note": "hi",
        "total": Decimal("99999999999999999999999999999999999999"),
        "address": {"city": "Lyon"},
    }
    assert round_trip(schema, record) == record
    nulls = record | {"note": None, "total": None, "address": None}
    assert round_trip(schema, nulls) == nulls


def test_required_fields_are_required() -> None:
    parsed = fastavro.parse_schema(avro_schema("R", [f("a", "integer"), f("b", nullable=True)]))
    with pytest.raises(ValueError, match="missing from the record"):
        fastavro.schemaless_writer(io.BytesIO(), parsed, {"b": "x"}, strict_allow_default=True)
    fastavro.schemaless_writer(io.BytesIO(), parsed, {"a": 1}, strict_allow_default=True)
