from __future__ import annotations

import msgspec
import pytest

from inlet.errors import InvalidConnector, Problem
from inlet.model.fields import (
    FieldSpec,
    avro_name,
    field_problems,
    name_problem,
    validate_connector_name,
    validate_fields,
)


def f(name: str, type_: str = "string", **attributes: object) -> FieldSpec:
    """A FieldSpec from loose arguments, the way the admin API would decode it."""
    return msgspec.convert({"name": name, "type": type_, **attributes}, FieldSpec)


def problems_of(fields: list[FieldSpec], key_field: str | None = None) -> list[Problem]:
    with pytest.raises(InvalidConnector) as caught:
        validate_fields(fields, key_field)
    assert caught.value.problems == field_problems(fields, key_field)
    return caught.value.problems


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ok", "ok"),
        ("order-id", "order_id"),
        ("Total Amount", "Total_Amount"),
        ("2fa", "_2fa"),
        ("_x", "_x"),
        ("a.b", "a_b"),
        ("Straße", "Stra_e"),
        ("9", "_9"),
        ("x" * 128, "x" * 128),
    ],
)
def test_avro_name_maps_user_names(name: str, expected: str) -> None:
    assert name_problem(name) is None
    assert avro_name(name) == expected


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "must not be empty"),
        ("x" * 129, "at most 128"),
        ("---", "ASCII letter or digit"),
        ("_", "ASCII letter or digit"),
        ("   ", "ASCII letter or digit"),
        ("日本", "ASCII letter or digit"),
    ],
)
def test_avro_name_rejects_unmappable_names(name: str, reason: str) -> None:
    assert reason in (name_problem(name) or "")
    with pytest.raises(ValueError, match=reason):
        avro_name(name)


def test_every_type_is_accepted() -> None:
    fields = [
        f("s"),
        f("i", "integer"),
        f("fl", "float"),
        f("b", "boolean"),
        f("d", "date"),
        f("dt", "datetime"),
        f("t", "time"),
        f("dec", "decimal", precision=38, scale=38),
        f("dec0", "decimal", precision=1),
        f("u", "uuid"),
        f("e", "enum", symbols=["A", "b_2"]),
        f("arr", "array", items="uuid"),
        f("obj", "object", fields=[f("inner", "object", fields=[f("x", nullable=True)])]),
    ]
    validate_fields(fields, "s")
    assert field_problems(fields, "dec") == []


@pytest.mark.parametrize(
    ("fields", "key_field", "path", "reason"),
    [
        pytest.param([], None, "fields", "at least one", id="no-fields"),
        pytest.param([f("")], None, "fields[0].name", "empty", id="empty-name"),
        pytest.param([f("x" * 129)], None, "fields[0].name", "128", id="long-name"),
        pytest.param([f("a"), f("--")], None, "fields[1].name", "letter", id="underscore-only"),
        pytest.param([f("a"), f("A")], None, "fields[1].name", "duplicates fields[0]", id="dup"),
        pytest.param(
            [f("order-id"), f("Order_ID")], None, "fields[1].name", "both map", id="collision"
        ),
        pytest.param([f("d", "decimal")], None, "fields[0].precision", "needs", id="no-prec"),
        pytest.param(
            [f("d", "decimal", precision=0)], None, "fields[0].precision", "between", id="prec-0"
        ),
        pytest.param(
            [f("d", "decimal", precision=39)], None, "fields[0].precision", "between", id="prec-39"
        ),
        pytest.param(
            [f("d", "decimal", precision=5, scale=6)], None, "fields[0].scale", "exceed", id="s>p"
        ),
        pytest.param(
            [f("d", "decimal", precision=5, scale=-1)],
            None,
            "fields[0].scale",
            "negative",
            id="s<0",
        ),
        pytest.param([f("e", "enum")], None, "fields[0].symbols", "at least one", id="no-syms"),
        pytest.param(
            [f("e", "enum", symbols=[])], None, "fields[0].symbols", "at least one", id="empty-syms"
        ),
        pytest.param(
            [f("e", "enum", symbols=["A", "b-c"])],
            None,
            "fields[0].symbols[1]",
            "not an Avro name",
            id="bad-symbol",
        ),
        pytest.param(
            [f("e", "enum", symbols=["1A"])], None, "fields[0].symbols[0]", "not an Avro", id="1A"
        ),
        pytest.param(
            [f("e", "enum", symbols=["A", "B", "A"])],
            None,
            "fields[0].symbols[2]",
            "duplicate",
            id="dup-symbol",
        ),
        pytest.param([f("a", "array")], None, "fields[0].items", "item type", id="no-items"),
        pytest.param([f("o", "object")], None, "fields[0].fields", "at least one", id="no-nested"),
        pytest.param(
            [f("o", "object", fields=[])], None, "fields[0].fields", "at least one", id="empty-obj"
        ),
        pytest.param(
            [f("s", precision=3)], None, "fields[0].precision", "decimal", id="prec-on-string"
        ),
        pytest.param(
            [f("s", "integer", scale=1)], None, "fields[0].scale", "decimal", id="scale-on-int"
        ),
        pytest.param([f("s", symbols=["A"])], None, "fields[0].symbols", "enum", id="syms-on-str"),
        pytest.param([f("s", items="string")], None, "fields[0].items", "array", id="items-on-str"),
        pytest.param(
            [f("s", fields=[f("x")])], None, "fields[0].fields", "object", id="fields-on-str"
        ),
        pytest.param(
            [f("a"), f("b"), f("c"), f("o", "object", fields=[f("x"), f("a b"), f("a-b")])],
            None,
            "fields[3].fields[2].name",
            "both map",
            id="nested-collision",
        ),
        pytest.param(
            [f("o", "object", fields=[f("p", "object", fields=[f("d", "decimal")])])],
            None,
            "fields[0].fields[0].fields[0].precision",
            "needs",
            id="deep-nested",
        ),
        pytest.param([f("a")], "b", "key_field", "no top-level", id="key-missing"),
        pytest.param([f("a")], "A", "key_field", "no top-level", id="key-case"),
        pytest.param([f("a", nullable=True)], "a", "key_field", "nullable", id="key-nullable"),
        pytest.param([f("a", "array", items="string")], "a", "key_field", "scalar", id="key-arr"),
        pytest.param(
            [f("o", "object", fields=[f("k")])], "o", "key_field", "scalar", id="key-object"
        ),
        pytest.param(
            [f("o", "object", fields=[f("k")])], "k", "key_field", "top-level", id="key-nested"
        ),
    ],
)
def test_each_invalid_definition_names_its_path(
    fields: list[FieldSpec], key_field: str | None, path: str, reason: str
) -> None:
    problems = problems_of(fields, key_field)
    assert [problem.field for problem in problems] == [path]
    assert reason in problems[0].reason


def test_all_problems_are_collected_in_field_order() -> None:
    fields = [
        f(""),
        f("amount", "decimal", precision=40, scale=-2, symbols=["A"]),
        f("amount"),
        f("kind", "enum", symbols=["ok", "ok", "no way"]),
        f("obj", "object", fields=[f("a", "array"), f("A", "array", items="string")]),
    ]
    assert [problem.field for problem in problems_of(fields, "missing")] == [
        "fields[0].name",
        "fields[1].symbols",
        "fields[1].precision",
        "fields[1].scale",
        "fields[2].name",
        "fields[3].symbols[1]",
        "fields[3].symbols[2]",
        "fields[4].fields[0].items",
        "fields[4].fields[1].name",
        "key_field",
    ]


def test_invalid_connector_carries_the_code_and_message() -> None:
    with pytest.raises(InvalidConnector, match="invalid connector fields") as caught:
        validate_fields([], None)
    assert caught.value.error_code == 42250


def test_literals_are_checked_for_specs_built_in_code() -> None:
    # msgspec checks the Literals only when decoding; constructed specs skip that.
    spec = FieldSpec(name="x", type="array", items="decimal")  # type: ignore[arg-type]
    bad_type = FieldSpec(name="y", type="money")  # type: ignore[arg-type]
    assert [problem.field for problem in problems_of([spec, bad_type])] == [
        "fields[0].items",
        "fields[1].type",
    ]


def test_json_shape_of_the_admin_api() -> None:
    raw = b'{"name":"o","type":"object","fields":[{"name":"d","type":"decimal","precision":9}]}'
    spec = msgspec.json.decode(raw, type=FieldSpec)
    assert spec == FieldSpec(
        name="o", type="object", fields=[FieldSpec(name="d", type="decimal", precision=9)]
    )
    assert msgspec.json.encode(spec) == raw  # defaults are omitted


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"name":"x","type":"string","colour":"red"}', id="unknown-attribute"),
        pytest.param(b'{"name":"x","type":"money"}', id="unknown-type"),
        pytest.param(b'{"name":"x","type":"array","items":"decimal"}', id="decimal-items"),
        pytest.param(b'{"name":"x","type":"array","items":"object"}', id="object-items"),
        pytest.param(b'{"type":"string"}', id="no-name"),
    ],
)
def test_json_shape_rejects(raw: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(raw, type=FieldSpec)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("orders", []),
        ("x" * 128, []),
        (" Orders from Shopify ", []),
        ("", [Problem(field="name", reason="must not be blank")]),
        (" \t", [Problem(field="name", reason="must not be blank")]),
        ("x" * 129, [Problem(field="name", reason="must be at most 128 characters")]),
    ],
)
def test_validate_connector_name(name: str, expected: list[Problem]) -> None:
    assert validate_connector_name(name) == expected
