"""Avro schema compatibility (registry/compat.py): reader/writer pairs, then the levels."""

from __future__ import annotations

import json

import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from avro.schema import parse as avro_parse

from inlet.errors import InvalidSchema
from registry.compat import (
    DEFAULT_LEVEL,
    MAX_REASONS,
    CompatibilityLevel,
    check,
    parse_level,
    reader_writer_problems,
)
from registry.errors import InvalidCompatibilityLevel

Schema = object
L = CompatibilityLevel


def record(*fields: dict[str, object], name: str = "Order", **extra: object) -> dict[str, object]:
    return {"type": "record", "name": name, "fields": list(fields), **extra}


def fld(name: str, type_: Schema, **extra: object) -> dict[str, object]:
    return {"name": name, "type": type_, **extra}


def enum(*symbols: str, **extra: object) -> dict[str, object]:
    return {"type": "enum", "name": "Status", "symbols": list(symbols), **extra}


def array(items: Schema) -> dict[str, object]:
    return {"type": "array", "items": items}


def map_(values: Schema) -> dict[str, object]:
    return {"type": "map", "values": values}


def fixed(size: int, name: str = "Hash") -> dict[str, object]:
    return {"type": "fixed", "name": name, "size": size}


def decimal(precision: int, scale: int) -> dict[str, object]:
    return {"type": "bytes", "logicalType": "decimal", "precision": precision, "scale": scale}


def address(*extra_fields: dict[str, object]) -> dict[str, object]:
    return record(fld("street", "string"), *extra_fields, name="Address")


def linked_list(value: Schema, *extra_fields: dict[str, object]) -> dict[str, object]:
    return record(fld("value", value), fld("next", ["null", "Node"]), *extra_fields, name="Node")


NO_DEFAULT = "has no default in the reader and is missing from the writer"

# (id, reader, writer, expected reasons); [] means the reader reads everything the writer writes.
PAIRS: list[tuple[str, Schema, Schema, list[str]]] = [
    ("same-primitive", "long", "long", []),
    ("dict-form-primitive", {"type": "string"}, "string", []),
    ("int-to-long", "long", "int", []),
    ("long-to-int", "int", "long", ["reader type 'int' cannot read writer type 'long'"]),
    ("int-to-float", "float", "int", []),
    ("long-to-double", "double", "long", []),
    ("float-to-double", "double", "float", []),
    (
        "double-to-float",
        "float",
        "double",
        ["reader type 'float' cannot read writer type 'double'"],
    ),
    ("bytes-to-string", "string", "bytes", []),
    ("string-to-bytes", "bytes", "string", []),
    ("int-to-string", "string", "int", ["reader type 'string' cannot read writer type 'int'"]),
    ("boolean-to-int", "int", "boolean", ["reader type 'int' cannot read writer type 'boolean'"]),
    (
        "record-vs-primitive",
        "string",
        record(fld("id", "long")),
        ["reader type 'string' cannot read writer type record 'Order'"],
    ),
    # records
    (
        "field-added-with-default",
        record(fld("id", "long"), fld("email", "string", default="")),
        record(fld("id", "long")),
        [],
    ),
    (
        "field-added-null-default",
        record(fld("id", "long"), fld("email", ["null", "string"], default=None)),
        record(fld("id", "long")),
        [],
    ),
    (
        "field-added-without-default",
        record(fld("id", "long"), fld("email", "string")),
        record(fld("id", "long")),
        [f"field 'email' {NO_DEFAULT}"],
    ),
    ("field-removed", record(fld("id", "long")), record(fld("id", "long"), fld("x", "int")), []),
    ("field-promoted", record(fld("total", "long")), record(fld("total", "int")), []),
    (
        "field-narrowed",
        record(fld("total", "int")),
        record(fld("total", "long")),
        ["/fields/total: reader type 'int' cannot read writer type 'long'"],
    ),
    (
        "error-is-a-record",
        record(fld("id", "long")),
        {**record(fld("id", "int")), "type": "error"},
        [],
    ),
    (
        "field-renamed-with-alias",
        record(fld("full_name", "string", aliases=["name"])),
        record(fld("name", "string")),
        [],
    ),
    (
        "field-renamed-without-alias",
        record(fld("full_name", "string")),
        record(fld("name", "string")),
        [f"field 'full_name' {NO_DEFAULT}"],
    ),
    (
        "alias-field-type-checked",
        record(fld("full_name", "int", aliases=["name"])),
        record(fld("name", "string")),
        ["/fields/full_name: reader type 'int' cannot read writer type 'string'"],
    ),
    (
        "record-renamed-with-alias",
        record(fld("id", "long"), name="Purchase", aliases=["Order"]),
        record(fld("id", "long")),
        [],
    ),
    (
        "record-renamed-without-alias",
        record(fld("id", "long"), name="Purchase"),
        record(fld("id", "long")),
        ["/name: reader name 'Purchase' does not match writer name 'Order' nor any reader alias"],
    ),
    ("nested-record-ok", record(fld("to", address())), record(fld("to", address())), []),
    (
        "nested-record-field-without-default",
        record(fld("to", address(fld("country", "string")))),
        record(fld("to", address())),
        [f"/fields/to: field 'country' {NO_DEFAULT}"],
    ),
    (
        "nested-record-promotion",
        record(fld("to", address(fld("zip", "long")))),
        record(fld("to", address(fld("zip", "int")))),
        [],
    ),
    # named references: the second field refers to Address by name
    (
        "reference-ok",
        record(fld("home", address()), fld("work", "Address")),
        record(fld("home", address()), fld("work", "Address")),
        [],
    ),
    (
        "reference-checked-everywhere",
        record(fld("home", address(fld("country", "string"))), fld("work", "Address")),
        record(fld("home", address()), fld("work", "Address")),
        [
            f"/fields/home: field 'country' {NO_DEFAULT}",
            f"/fields/work: field 'country' {NO_DEFAULT}",
        ],
    ),
    (
        "reference-in-union-and-array",
        record(fld("home", address()), fld("more", array(["null", "Address"]))),
        record(fld("home", address()), fld("more", array("Address"))),
        [],
    ),
    # recursion
    ("linked-list-same", linked_list("int"), linked_list("int"), []),
    ("linked-list-promoted", linked_list("long"), linked_list("int"), []),
    (
        "linked-list-narrowed",
        linked_list("int"),
        linked_list("long"),
        ["/fields/value: reader type 'int' cannot read writer type 'long'"],
    ),
    (
        "linked-list-field-without-default",
        linked_list("int", fld("tag", "string")),
        linked_list("int"),
        [f"field 'tag' {NO_DEFAULT}"],
    ),
    # unions
    ("union-widened", ["null", "string", "long"], ["null", "string"], []),
    (
        "union-narrowed",
        ["null", "string"],
        ["null", "string", "long"],
        ["no branch of the reader union can read writer type 'long'"],
    ),
    ("union-reordered", ["string", "null"], ["null", "string"], []),
    ("null-added-to-union", ["null", "string"], "string", []),
    (
        "null-removed-from-union",
        "string",
        ["null", "string"],
        ["reader type 'string' cannot read writer type 'null'"],
    ),
    ("union-reads-promoted", ["null", "long"], "int", []),
    ("union-promoted-branch", ["null", "double"], ["null", "int", "float"], []),
    (
        "union-branch-record-detail",
        ["null", record(fld("id", "long"), fld("email", "string"))],
        ["null", record(fld("id", "long"))],
        [f"field 'email' {NO_DEFAULT}"],
    ),
    (
        "union-reader-no-match",
        ["null", "string"],
        "long",
        ["no branch of the reader union can read writer type 'long'"],
    ),
    # enums
    ("enum-symbol-added", enum("A", "B", "C"), enum("A", "B"), []),
    (
        "enum-symbol-removed",
        enum("A", "B"),
        enum("A", "B", "C", "D"),
        ["/symbols: reader enum lacks writer symbols 'C', 'D' and has no default symbol"],
    ),
    ("enum-symbol-removed-with-default", enum("A", "B", default="A"), enum("A", "B", "C"), []),
    (
        "enum-renamed",
        {**enum("A"), "name": "State"},
        enum("A"),
        ["/name: reader name 'State' does not match writer name 'Status' nor any reader alias"],
    ),
    (
        "enum-in-record",
        record(fld("status", enum("A"))),
        record(fld("status", enum("A", "B"))),
        ["/fields/status/symbols: reader enum lacks writer symbols 'B' and has no default symbol"],
    ),
    # arrays and maps
    ("array-items-promoted", array("long"), array("int"), []),
    (
        "array-items-narrowed",
        array("int"),
        array("long"),
        ["/items: reader type 'int' cannot read writer type 'long'"],
    ),
    ("map-values-promoted", map_("double"), map_("float"), []),
    (
        "map-values-narrowed",
        map_("float"),
        map_("double"),
        ["/values: reader type 'float' cannot read writer type 'double'"],
    ),
    (
        "array-vs-map",
        array("int"),
        map_("int"),
        ["reader type 'array' cannot read writer type 'map'"],
    ),
    (
        "nested-array-of-maps",
        record(fld("tags", array(map_("long")))),
        record(fld("tags", array(map_("string")))),
        ["/fields/tags/items/values: reader type 'long' cannot read writer type 'string'"],
    ),
    # fixed
    ("fixed-same", fixed(16), fixed(16), []),
    (
        "fixed-size-changed",
        fixed(16),
        fixed(8),
        ["/size: reader fixed size 16 differs from writer fixed size 8"],
    ),
    (
        "fixed-renamed",
        fixed(16, "Digest"),
        fixed(16),
        ["/name: reader name 'Digest' does not match writer name 'Hash' nor any reader alias"],
    ),
    (
        "fixed-vs-bytes",
        "bytes",
        fixed(4),
        ["reader type 'bytes' cannot read writer type fixed 'Hash'"],
    ),
    # logical types are annotations: only the underlying type decides (Karapace's behaviour)
    (
        "timestamp-micros-reads-long",
        {"type": "long", "logicalType": "timestamp-micros"},
        "long",
        [],
    ),
    (
        "long-reads-timestamp-micros",
        "long",
        {"type": "long", "logicalType": "timestamp-micros"},
        [],
    ),
    (
        "timestamp-millis-vs-micros",
        {"type": "long", "logicalType": "timestamp-millis"},
        {"type": "long", "logicalType": "timestamp-micros"},
        [],
    ),
    (
        "date-reads-long",
        {"type": "int", "logicalType": "date"},
        {"type": "long", "logicalType": "timestamp-millis"},
        ["reader type 'int' cannot read writer type 'long'"],
    ),
    ("decimal-precision-changed", decimal(12, 2), decimal(10, 2), []),
    ("decimal-scale-changed", decimal(10, 4), decimal(10, 2), []),
    (
        "decimal-bytes-vs-fixed",
        decimal(10, 2),
        {**fixed(8), "logicalType": "decimal", "precision": 10, "scale": 2},
        ["reader type 'bytes' cannot read writer type fixed 'Hash'"],
    ),
    # namespaces
    (
        "namespace-changed",
        record(fld("id", "long"), namespace="com.acme.v2"),
        record(fld("id", "long"), namespace="com.acme.v1"),
        [],
    ),
    (
        "namespace-in-name",
        record(fld("id", "long"), name="com.acme.Order"),
        record(fld("id", "long"), namespace="com.acme"),
        [],
    ),
    (
        "renamed-alias-full-name-other-namespace",
        record(fld("id", "long"), name="com.new.Purchase", aliases=["com.old.Order"]),
        record(fld("id", "long"), name="com.old.Order"),
        [],
    ),
    (
        "renamed-alias-is-relative-to-reader-namespace",
        record(fld("id", "long"), name="com.new.Purchase", aliases=["Order"]),
        record(fld("id", "long"), name="com.old.Order"),
        [
            "/name: reader name 'com.new.Purchase' does not match writer name 'com.old.Order'"
            " nor any reader alias"
        ],
    ),
    (
        "reference-relative-vs-full",
        record(fld("home", address()), fld("work", "Address"), namespace="com.acme"),
        record(fld("home", address()), fld("work", "com.acme.Address"), namespace="com.acme"),
        [],
    ),
    (
        "nested-type-inherits-namespace",
        record(fld("home", address()), fld("work", "com.acme.Address"), namespace="com.acme"),
        record(fld("home", address()), fld("work", "Address"), name="com.acme.Order"),
        [],
    ),
    (
        "nested-type-own-namespace",
        record(
            fld("home", {**address(), "namespace": "com.geo"}),
            fld("work", "com.geo.Address"),
            namespace="com.acme",
        ),
        record(fld("home", address()), fld("work", "Address")),
        [],
    ),
]

# Cases where Apache Avro's Python checker (Karapace's) reaches another verdict, and why.
AVRO_PY_DIFFERS = {
    # avro-python tells "error" from "record"; the spec, Avro Java and Confluent do not.
    "error-is-a-record",
}


@pytest.mark.parametrize(
    ("reader", "writer", "expected"), [c[1:] for c in PAIRS], ids=[c[0] for c in PAIRS]
)
def test_reader_writer_problems(reader: Schema, writer: Schema, expected: list[str]) -> None:
    assert reader_writer_problems(reader, writer) == expected


@pytest.mark.parametrize(
    "schema",
    [s for c in PAIRS for s in c[1:3]],
    ids=[f"{c[0]}-{role}" for c in PAIRS for role in ("reader", "writer")],
)
def test_every_schema_reads_itself(schema: Schema) -> None:
    assert reader_writer_problems(schema, schema) == []


@pytest.mark.parametrize(
    ("case_id", "reader", "writer", "expected"),
    [c for c in PAIRS if c[0] not in AVRO_PY_DIFFERS],
    ids=[c[0] for c in PAIRS if c[0] not in AVRO_PY_DIFFERS],
)
def test_verdict_matches_apache_avro(
    case_id: str, reader: Schema, writer: Schema, expected: list[str]
) -> None:
    """The verdict (not the wording) agrees with Apache Avro's Python checker (Karapace's)."""
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    result = checker.get_compatibility(
        avro_parse(json.dumps(reader)), avro_parse(json.dumps(writer))
    )
    avro_compatible = result.compatibility is SchemaCompatibilityType.compatible
    assert avro_compatible == (expected == []), case_id


@pytest.mark.parametrize(
    "schema",
    [
        "Nope",
        42,
        None,
        {"type": "record", "fields": []},
        {"type": "record", "name": "R"},
        {"type": "array"},
        {"type": "fixed", "name": "F"},
        record(fld("a", "Unknown")),
    ],
    ids=[
        "unknown-name",
        "number",
        "null",
        "no-name",
        "no-fields",
        "no-items",
        "no-size",
        "bad-ref",
    ],
)
def test_invalid_schema_raises(schema: Schema) -> None:
    with pytest.raises(InvalidSchema):
        reader_writer_problems(schema, "int")
    with pytest.raises(InvalidSchema):
        reader_writer_problems("int", schema)


# --- levels ---

ID = fld("id", "long")
EMAIL = fld("email", "string")
EMAIL_DEFAULT = fld("email", "string", default="")
PHONE = fld("phone", "string")

BACK_MISSING = f"backward: new schema cannot read existing schema #1: field 'email' {NO_DEFAULT}"
FWD_MISSING = f"forward: existing schema #1 cannot read new schema: field 'email' {NO_DEFAULT}"

# (id, level, new, existing oldest first, expected reasons)
LEVELS: list[tuple[str, L, Schema, list[Schema], list[str]]] = [
    ("none-anything-goes", L.NONE, "string", [record(ID)], []),
    ("no-existing", L.FULL_TRANSITIVE, "string", [], []),
    ("backward-add-default", L.BACKWARD, record(ID, EMAIL_DEFAULT), [record(ID)], []),
    ("backward-add-required", L.BACKWARD, record(ID, EMAIL), [record(ID)], [BACK_MISSING]),
    ("forward-add-required", L.FORWARD, record(ID, EMAIL), [record(ID)], []),
    ("full-add-required", L.FULL, record(ID, EMAIL), [record(ID)], [BACK_MISSING]),
    ("full-add-default", L.FULL, record(ID, EMAIL_DEFAULT), [record(ID)], []),
    ("backward-remove-required", L.BACKWARD, record(ID), [record(ID, EMAIL)], []),
    ("forward-remove-required", L.FORWARD, record(ID), [record(ID, EMAIL)], [FWD_MISSING]),
    ("forward-remove-defaulted", L.FORWARD, record(ID), [record(ID, EMAIL_DEFAULT)], []),
    ("full-remove-required", L.FULL, record(ID), [record(ID, EMAIL)], [FWD_MISSING]),
    ("full-remove-defaulted", L.FULL, record(ID), [record(ID, EMAIL_DEFAULT)], []),
    ("backward-widen", L.BACKWARD, record(fld("n", "long")), [record(fld("n", "int"))], []),
    (
        "forward-widen",
        L.FORWARD,
        record(fld("n", "long")),
        [record(fld("n", "int"))],
        [
            "forward: existing schema #1 cannot read new schema: "
            "/fields/n: reader type 'int' cannot read writer type 'long'"
        ],
    ),
    (
        "full-both-directions",
        L.FULL,
        record(fld("n", "long"), PHONE),
        [record(fld("n", "int"))],
        [
            f"backward: new schema cannot read existing schema #1: field 'phone' {NO_DEFAULT}",
            "forward: existing schema #1 cannot read new schema: "
            "/fields/n: reader type 'int' cannot read writer type 'long'",
        ],
    ),
    # v1 -> v2 -> v3 where v3 is compatible with v2 but not with v1
    (
        "backward-latest-only",
        L.BACKWARD,
        record(ID, EMAIL),
        [record(ID), record(ID, EMAIL_DEFAULT)],
        [],
    ),
    (
        "backward-transitive",
        L.BACKWARD_TRANSITIVE,
        record(ID, EMAIL),
        [record(ID), record(ID, EMAIL_DEFAULT)],
        [BACK_MISSING],
    ),
    (
        "forward-latest-only",
        L.FORWARD,
        record(ID),
        [record(ID, EMAIL), record(ID, EMAIL_DEFAULT)],
        [],
    ),
    (
        "forward-transitive",
        L.FORWARD_TRANSITIVE,
        record(ID),
        [record(ID, EMAIL), record(ID, EMAIL_DEFAULT)],
        [FWD_MISSING],
    ),
    ("full-latest-only", L.FULL, record(ID), [record(ID, EMAIL), record(ID, EMAIL_DEFAULT)], []),
    (
        "full-transitive",
        L.FULL_TRANSITIVE,
        record(ID),
        [record(ID, EMAIL), record(ID, EMAIL_DEFAULT)],
        [FWD_MISSING],
    ),
    (
        "transitive-names-each-version",
        L.BACKWARD_TRANSITIVE,
        record(ID, EMAIL, PHONE),
        [record(ID), record(ID, EMAIL)],
        [
            BACK_MISSING,
            f"backward: new schema cannot read existing schema #1: field 'phone' {NO_DEFAULT}",
            f"backward: new schema cannot read existing schema #2: field 'phone' {NO_DEFAULT}",
        ],
    ),
    (
        "latest-is-the-last",
        L.BACKWARD,
        "long",
        ["string", "int"],
        [],
    ),
    (
        "latest-numbered-by-position",
        L.BACKWARD,
        "int",
        ["int", "long"],
        [
            "backward: new schema cannot read existing schema #2: reader type 'int' cannot read "
            "writer type 'long'"
        ],
    ),
]


@pytest.mark.parametrize(
    ("level", "new", "existing", "expected"), [c[1:] for c in LEVELS], ids=[c[0] for c in LEVELS]
)
def test_check(level: L, new: Schema, existing: list[Schema], expected: list[str]) -> None:
    assert check(level, new, existing) == expected


def test_default_level_is_backward() -> None:
    assert DEFAULT_LEVEL is L.BACKWARD


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("NONE", L.NONE),
        ("backward", L.BACKWARD),
        ("Full_Transitive", L.FULL_TRANSITIVE),
        ("forward_transitive", L.FORWARD_TRANSITIVE),
    ],
)
def test_parse_level(text: str, level: L) -> None:
    assert parse_level(text) is level


@pytest.mark.parametrize("text", ["", "sideways", "BACKWARD TRANSITIVE", "full-transitive"])
def test_parse_level_rejects(text: str) -> None:
    with pytest.raises(InvalidCompatibilityLevel) as caught:
        parse_level(text)
    assert caught.value.code == "invalid_compatibility_level"
    assert caught.value.message == (
        "Invalid compatibility level. Valid values are none, backward, forward, full, "
        "backward_transitive, forward_transitive, and full_transitive"
    )


def test_repeated_named_types_stay_cheap() -> None:
    """Each level uses the next type twice: 2**60 paths, yet each type pair is compared once and
    at most MAX_REASONS reasons are kept."""
    depth = 60

    def nested(leaf: str) -> dict[str, object]:
        inner = record(fld("leaf", leaf), name=f"T{depth}")
        for i in reversed(range(depth)):  # defined inline at its first use, then referenced
            inner = record(fld("a", inner), fld("b", f"T{i + 1}"), name=f"T{i}")
        return inner

    assert reader_writer_problems(nested("long"), nested("int")) == []
    narrowed = reader_writer_problems(nested("int"), nested("long"))
    assert len(narrowed) == MAX_REASONS
    assert narrowed[0] == "/" + "fields/a/" * depth + (
        "fields/leaf: reader type 'int' cannot read writer type 'long'"
    )


@pytest.mark.parametrize("depth", [5000, 300])  # too deep to parse; parsed but too deep to compare
def test_too_deep_raises_invalid_schema(depth: int) -> None:
    schema: Schema = "long"
    for i in range(depth):
        schema = record(fld("x", schema), name=f"T{i}")
    with pytest.raises(InvalidSchema, match="nested too deeply"):
        reader_writer_problems(schema, schema)
