"""The Avro rules the registry enforces as Avro Java's parser does (``registry/avro_rules.py``)."""

from __future__ import annotations

from typing import Any, get_args

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inlet.errors import InvalidConnector, InvalidSchema
from inlet.model.avro import avro_schema
from inlet.model.fields import FieldSpec, FieldType, ItemType
from registry.avro_rules import check_avro


def record(*fields: dict[str, Any], name: str = "R", **attributes: object) -> dict[str, Any]:
    return {"type": "record", "name": name, "fields": list(fields), **attributes}


def field(name: str, type_: object, **attributes: object) -> dict[str, Any]:
    return {"name": name, "type": type_, **attributes}


ARRAY_INT = {"type": "array", "items": "int"}
MAP_INT = {"type": "map", "values": "int"}
ENUM = {"type": "enum", "name": "E", "symbols": ["A", "B"]}
FIXED = {"type": "fixed", "name": "F", "size": 4}

ACCEPTED: dict[str, object] = {
    "primitive": "string",
    "primitive object with a logical type": {"type": "long", "logicalType": "timestamp-micros"},
    "record": record(field("a", "int"), field("_b9", "string")),
    "empty record": record(),
    "dotted name": record(name="com.acme.R"),
    "namespace": record(namespace="com.acme_2"),
    "empty namespace": record(namespace=""),
    "recursive record": record(field("next", ["null", "Node"], default=None), name="Node"),
    "named type used by name in its namespace": record(
        field("e", {**ENUM, "name": "E"}), field("f", "E"), field("g", "ns.E"), namespace="ns"
    ),
    "union of distinct types": ["null", "int", "string", ARRAY_INT, MAP_INT, ENUM, FIXED],
    "union of two records": [record(name="A"), record(name="B")],
    "union of same short name in two namespaces": [record(name="a.R"), record(name="b.R")],
    "enum with default": {**ENUM, "default": "B"},
    "fixed of size 0": {**FIXED, "size": 0},
    "field orders": record(
        field("a", "int", order="ascending"),
        field("b", "int", order="descending"),
        field("c", "int", order="ignore"),
    ),
    "aliases": record(field("a", "int", aliases=["old-name"]), aliases=["com.acme.Old"]),
}

DEFAULTS_ACCEPTED: list[tuple[object, object]] = [
    ("null", None),
    ("boolean", True),
    ("int", 2**31 - 1),
    ("int", -(2**31)),
    ("long", 2**63 - 1),
    ("float", 1),
    ("double", 1.5),
    ("double", "NaN"),
    ("double", "-Infinity"),
    ("bytes", "\u00ff"),
    ("string", ""),
    (ENUM, "A"),
    (FIXED, "abcd"),
    (ARRAY_INT, [1, 2]),
    (MAP_INT, {"x": 1}),
    (["null", "string"], None),
    (["string", "null"], "x"),
    (record(field("a", "int"), field("b", "int", default=0)), {"a": 1}),
    ({"type": "int", "logicalType": "date"}, 0),
]

REFUSED: dict[str, tuple[object, str]] = {
    "duplicate field": (record(field("a", "int"), field("a", "long")), "Duplicate field a"),
    "record name with -": (record(name="my-record"), "Illegal type name 'my-record'"),
    "record name with a leading digit": (record(name="1R"), "Illegal type name '1R'"),
    "empty name": (record(name=""), "Illegal type name ''"),
    "field name with -": (record(field("a-b", "int")), "Illegal field name 'a-b'"),
    "field name with non-ASCII letters": (record(field("été", "int")), "Illegal field name"),
    "field name not a string": (record(field(3, "int")), "field name 3 is not a string"),  # type: ignore[arg-type]
    "namespace with -": (record(namespace="com.my-co"), "Illegal namespace"),
    "dotted name with an empty part": (record(name="com..R"), "Illegal namespace"),
    "named after a primitive": ({**FIXED, "name": "int"}, "named after primitives"),
    "redefined name": (record(field("a", {**FIXED, "name": "R"})), "Can't redefine: R"),
    "undefined name": (record(field("a", "Missing")), "Undefined name: 'Missing'"),
    "union of two arrays": (["null", ARRAY_INT, {"type": "array", "items": "string"}], "array"),
    "union of two maps": (
        [MAP_INT, {"type": "map", "values": "string"}],
        "Duplicate in union: map",
    ),
    "union of a type twice": (["int", "string", "int"], "Duplicate in union: int"),
    "union of a primitive and its logical type": (
        ["long", {"type": "long", "logicalType": "timestamp-millis"}],
        "Duplicate in union: long",
    ),
    "union of a record twice by name": (
        record(field("a", record(name="S")), field("b", ["S", "S"])),
        "Duplicate in union: S",
    ),
    "union in a union": (["null", ["int", "string"]], "Nested union"),
    "no type": ({"items": "int"}, "No type"),
    "type given as an object": ({"type": ARRAY_INT}, "No type"),
    "record without fields": ({"type": "record", "name": "R"}, "Record has no fields"),
    "record without name": ({"type": "record", "fields": []}, "No name in schema"),
    "field without type": (record({"name": "a"}), "No field type"),
    "bad order": (record(field("a", "int", order="up")), "Invalid order 'up'"),
    "array without items": ({"type": "array"}, "Array has no items type"),
    "map without values": ({"type": "map"}, "Map has no values type"),
    "enum symbol with -": ({**ENUM, "symbols": ["A-1"]}, "Illegal enum symbol name 'A-1'"),
    "enum symbol duplicate": ({**ENUM, "symbols": ["A", "A"]}, "Duplicate enum symbol: A"),
    "enum without symbols": ({"type": "enum", "name": "E"}, "Enum has no symbols"),
    "enum default not a symbol": ({**ENUM, "default": "C"}, "The Enum Default: 'C'"),
    "fixed size negative": ({**FIXED, "size": -1}, "Invalid fixed size: -1"),
    "fixed size not an int": ({**FIXED, "size": "4"}, "Invalid or no size"),
    "fixed size a float": ({**FIXED, "size": 4.0}, "Invalid or no size"),
    "fixed without size": ({"type": "fixed", "name": "F"}, "Invalid or no size"),
    "alias with -": (record(aliases=["old-name"]), "Illegal type name 'old-name'"),
    "aliases not a list": (record(aliases="Old"), "must be an array of names"),
}

DEFAULTS_REFUSED: list[tuple[object, object]] = [
    ("null", 0),
    ("boolean", 1),
    ("int", "1"),
    ("int", 1.0),
    ("int", True),
    ("int", 2**31),
    ("long", 2**63),
    ("float", "one"),
    ("double", None),
    ("string", None),
    ("string", 1),
    ("bytes", []),
    (ENUM, 0),
    (FIXED, None),
    (ARRAY_INT, ["a"]),
    (ARRAY_INT, {}),
    (MAP_INT, {"x": "a"}),
    (MAP_INT, []),
    (["null", "string"], "x"),  # a union's default is of its first branch
    (["string", "null"], None),
    (record(field("a", "int")), {}),  # a field without default must be given
    (record(field("a", "int")), {"a": "x"}),
]


@pytest.mark.parametrize("schema", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_valid_schemas_are_accepted(schema: object) -> None:
    check_avro(schema)
    fastavro.parse_schema(schema)  # type: ignore[arg-type]


@pytest.mark.parametrize(("type_", "default"), DEFAULTS_ACCEPTED)
def test_defaults_that_match_their_type_are_accepted(type_: object, default: object) -> None:
    check_avro(record(field("x", type_, default=default), name="Holder"))


@pytest.mark.parametrize(("schema", "reason"), REFUSED.values(), ids=REFUSED.keys())
def test_schemas_avro_java_refuses_are_refused_with_its_reason(schema: object, reason: str) -> None:
    with pytest.raises(InvalidSchema, match=r"^Invalid schema: ") as refused:
        check_avro(schema)
    assert reason in refused.value.message


@pytest.mark.parametrize(("type_", "default"), DEFAULTS_REFUSED)
def test_defaults_that_do_not_match_their_type_are_refused(type_: object, default: object) -> None:
    with pytest.raises(InvalidSchema, match="Invalid default for field x: "):
        check_avro(record(field("x", type_, default=default), name="Holder"))


def test_names_from_references_resolve_and_count_as_defined() -> None:
    address = record(field("city", "string"), name="com.acme.Address")
    order = record(field("ship_to", "com.acme.Address"), field("bill_to", ["null", "Address"]))
    with pytest.raises(InvalidSchema, match="Undefined name"):
        check_avro(order)
    check_avro({**order, "namespace": "com.acme"}, [address])
    with pytest.raises(InvalidSchema, match=r"Can't redefine: com\.acme\.Address"):
        check_avro(address, [address])
    defaulted = record(field("at", "com.acme.Address", default={"city": "Lyon"}))
    check_avro(defaulted, [address])
    with pytest.raises(InvalidSchema, match="Invalid default"):
        check_avro(record(field("at", "com.acme.Address", default={})), [address])


# --- Inlet's own generated schemas pass, whatever the fields. ---

_NAMES = st.text(st.sampled_from("abcXYZ_09 -é"), min_size=1, max_size=12).filter(
    lambda n: n.strip() != "" and any(c.isalnum() for c in n)
)
_ITEM_TYPES = st.sampled_from(get_args(ItemType))
_SCALAR_TYPES = [t for t in get_args(FieldType) if t not in ("decimal", "enum", "array", "object")]


def _specs(depth: int) -> st.SearchStrategy[list[FieldSpec]]:
    def one(name: str, kind: str, nullable: bool, draw_extra: dict[str, Any]) -> FieldSpec:
        return FieldSpec(name=name, type=kind, nullable=nullable, **draw_extra)  # type: ignore[arg-type]

    kinds: list[st.SearchStrategy[tuple[str, dict[str, Any]]]] = [
        st.tuples(st.sampled_from(_SCALAR_TYPES), st.just({})),
        st.tuples(st.just("decimal"), st.just({"precision": 10, "scale": 2})),
        st.tuples(
            st.just("enum"),
            st.fixed_dictionaries(
                {
                    "symbols": st.lists(
                        st.from_regex(r"[A-Z][A-Z0-9_]{0,5}", fullmatch=True),
                        min_size=1,
                        max_size=4,
                        unique=True,
                    )
                }
            ),
        ),
        st.tuples(st.just("array"), st.fixed_dictionaries({"items": _ITEM_TYPES})),
    ]
    if depth > 0:
        kinds.append(
            st.tuples(st.just("object"), st.fixed_dictionaries({"fields": _specs(depth - 1)}))
        )
    field_ = st.builds(
        lambda name, kind, nullable: one(name, kind[0], nullable, kind[1]),
        _NAMES,
        st.one_of(kinds),
        st.booleans(),
    )
    return st.lists(field_, min_size=1, max_size=6, unique_by=lambda s: s.name.lower())


@settings(max_examples=150, deadline=None)
@given(fields=_specs(2))
def test_inlet_generated_connector_schemas_pass(fields: list[FieldSpec]) -> None:
    try:
        schema = avro_schema("Order", fields)
    except InvalidConnector:  # field lists the admin API refuses too (names clashing once mapped)
        return
    check_avro(schema)
