"""Every connector definition the admin API accepts can be ingested; the others are refused with
422 naming the field and the limit (issue 10, items 8 and 9).

The gate is the admin API itself (the registry app on an in-memory log); a definition it accepts
is then driven through the gateway's codec and read back with the schema it registered.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastavro
import msgspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import TestClient

from inlet.codec._avro_writer import (
    _OP_ARRAY,
    _OP_OPTIONAL,
    _OP_RECORD,
    MAX_PROGRAM_DEPTH,
    NATIVE,
    native_program,
    record_encoder,
)
from inlet.codec.bodies import parse_body
from inlet.codec.record_codec import RecordCodec
from inlet.model.avro import avro_schema
from inlet.model.connectors import Connector
from inlet.model.fields import (
    FIELD_TYPES,
    ITEM_TYPES,
    MAX_NESTING_DEPTH,
    RESERVED_PREFIX,
    FieldSpec,
    avro_name,
    name_problem,
)
from inlet.settings import Settings
from inlet.sink_layout.file_rows import OFFSET_FIELD, PARTITION_FIELD, RECEIVED_AT_FIELD
from inlet.sink_layout.postgres import KEYED_METADATA_COLUMNS
from inlet.statelog.fold import InMemoryStateLog
from tests.registry_app import ADMIN_TOKEN, InMemoryRegistry
from tests.unit.test_codec import as_json, expected, records
from tests.unit.test_connector_api import FakeTopics

WRITERS = [pytest.param(True, id="C"), pytest.param(False, id="fastavro")]


class Admin:
    """The registry app as production wires it, on an in-memory log: the admin API's gate."""

    def __init__(self, client: TestClient[Litestar], registry: InMemoryRegistry[Any]) -> None:
        self.client = client
        self.registry = registry
        self._made = 0

    def create(self, fields: list[Any], **extra: Any) -> Any:
        self._made += 1
        body = {"name": f"c{self._made}", "fields": fields, **extra}
        return self.client.post("/v1/connectors", json=body)

    def create_nested(self, depth: int) -> Any:
        """A connector of ``depth`` objects inside one another, as JSON too deep for json= (whose
        encoder recurses in Python): the body is written out here."""
        self._made += 1
        fields = b'[{"name":"leaf","type":"string"}]'
        for level in range(depth, 0, -1):
            fields = b'[{"name":"o%d","type":"object","fields":%s}]' % (level, fields)
        body = b'{"name":"c%d","fields":%s}' % (self._made, fields)
        headers = {"Content-Type": "application/json"}
        return self.client.post("/v1/connectors", content=body, headers=headers)

    def connector(self, created: dict[str, Any]) -> Connector:
        connector = self.registry.state.connectors.get(created["id"])
        assert connector is not None
        return connector

    def registered_schema(self, created: dict[str, Any]) -> Any:
        """The schema a consumer reads with: the registry's, by the id the records carry."""
        stored = self.registry.state.schemas.schema_by_id(created["schema_id"])
        assert stored is not None
        return fastavro.parse_schema(json.loads(stored.schema))


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[Admin]:
    settings = Settings(data_dir=str(tmp_path), public_gateway_url="https://ingest.example")
    registry = InMemoryRegistry(settings, InMemoryStateLog, topics=FakeTopics())
    with TestClient(registry.app) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        yield Admin(client, registry)


def refused(response: Any, field: str, *reason_parts: str) -> None:
    """A 422 whose problems name ``field`` with every one of ``reason_parts`` in its reason."""
    assert response.status_code == 422, response.text
    problems = response.json()["problems"]
    matching = [p for p in problems if p["field"] == field]
    assert matching, problems
    for part in reason_parts:
        assert part in matching[0]["reason"], matching[0]


def ingest(
    admin: Admin, created: dict[str, Any], records: list[Any], *, native: bool = NATIVE
) -> list[Any]:
    """``records`` through the gateway's codec; what a consumer reads back from each value."""
    connector = admin.connector(created)
    codec = RecordCodec.of_connector(connector) if native == NATIVE else _codec(connector, native)
    result = codec.encode(parse_body(msgspec.json.encode(records), "application/json"))
    assert result.rejected == [], result.errors
    schema = admin.registered_schema(created)
    return [
        fastavro.schemaless_reader(io.BytesIO(value[5:]), schema, schema)
        for _, _, value in result.records
    ]


def _codec(connector: Connector, native: bool) -> RecordCodec:
    return RecordCodec(
        connector.fields,
        avro_schema(connector.record_name, connector.fields),
        schema_id=connector.schema_id,
        schema_version=connector.schema_version,
        native=native,
    )


def nested(depth: int, leaf: dict[str, Any], *, nullable: bool = True) -> list[dict[str, Any]]:
    """``depth`` objects inside one another, the innermost holding ``leaf``."""
    fields = [leaf]
    for level in range(depth, 0, -1):
        fields = [{"name": f"o{level}", "type": "object", "nullable": nullable, "fields": fields}]
    return fields


def nested_record(depth: int, leaf: dict[str, Any]) -> dict[str, Any]:
    record = leaf
    for level in range(depth, 0, -1):
        record = {f"o{level}": record}
    return record


def deep_path(depth: int) -> str:
    return "fields[0]" + ".fields[0]" * (depth - 1)


# --- Item 8: names msgspec cannot rename to ------------------------------------------------


@pytest.mark.parametrize("name", ['say "hi"', "back\\slash", "tab\there", "new\nline", "nul\x00"])
def test_a_name_no_json_decoder_can_match_is_refused(admin: Admin, name: str) -> None:
    response = admin.create([{"name": "ok", "type": "string"}, {"name": name, "type": "string"}])
    refused(response, "fields[1].name", "must not contain")


def test_a_nested_name_no_json_decoder_can_match_is_refused(admin: Admin) -> None:
    response = admin.create(nested(2, {"name": 'a"b', "type": "string"}))
    refused(response, "fields[0].fields[0].fields[0].name", "must not contain")


@pytest.mark.parametrize("key", ['say "hi"', "back\\slash", "tab\there", "new\nline"])
@pytest.mark.parametrize("content_type", ["application/json", "text/csv"])
def test_an_unknown_key_no_field_could_be_named_is_ignored(
    admin: Admin, key: str, content_type: str
) -> None:
    created = admin.create([{"name": "a", "type": "string"}]).json()
    codec = RecordCodec.of_connector(admin.connector(created))
    if content_type == "text/csv":
        text = io.StringIO()
        csv.writer(text).writerows([["a", key], ["x", "1"], ["y", "2"]])
        body = text.getvalue().encode()
    else:
        body = msgspec.json.encode([{"a": "x", key: 1}, {"a": "y", key: 2}])
    result = codec.encode(parse_body(body, content_type))
    assert result.rejected == []
    assert len(result.records) == 2
    assert result.unknown_fields == [key]


# --- Item 8: names that look like the codec's own ------------------------------------------


@pytest.mark.parametrize("native", WRITERS)
@pytest.mark.parametrize("name", ["_unknown_0", "-unknown-0", "__unknown_0", "_unknown_1"])
def test_a_field_named_like_a_probe_attribute_ingests_with_unknown_keys(
    admin: Admin, name: str, native: bool
) -> None:
    if native and not NATIVE:
        pytest.fail("the C writer is not built")
    fields = [{"name": name, "type": "string"}, {"name": "n", "type": "integer"}]
    created = admin.create(fields).json()
    sent = [{name: "x", "n": 1, "extra": True, "more": [1]}, {name: "y", "n": 2, "extra": 0}]
    got = ingest(admin, created, sent, native=native)
    avro = created["fields"][0]["name"].replace("-", "_")
    avro = "_" + avro if avro[0].isdigit() else avro
    assert [record["n"] for record in got] == [1, 2]
    assert [next(iter(record.values())) for record in got] == ["x", "y"]


# --- Item 8: one maximum nesting depth -----------------------------------------------------

# The deepest program a definition can make: every object nullable, the innermost field a
# nullable array (optional, array, item: three program nodes).
_DEEPEST_LEAF = {"name": "tags", "type": "array", "items": "string", "nullable": True}


@pytest.mark.parametrize("native", WRITERS)
@pytest.mark.parametrize("nullable", [True, False])
def test_the_deepest_definition_allowed_ingests(admin: Admin, native: bool, nullable: bool) -> None:
    if native and not NATIVE:
        pytest.fail("the C writer is not built")
    created = admin.create(nested(MAX_NESTING_DEPTH, _DEEPEST_LEAF, nullable=nullable))
    assert created.status_code == 201, created.text
    record = nested_record(MAX_NESTING_DEPTH, {"tags": ["a", "b"]})
    assert ingest(admin, created.json(), [record], native=native) == [record]


@pytest.mark.parametrize("depth", [MAX_NESTING_DEPTH + 1, 400, 2000])
def test_a_definition_nested_deeper_is_refused_naming_the_field_and_the_limit(
    admin: Admin, depth: int
) -> None:
    response = admin.create_nested(depth)
    if depth == 2000:  # deeper than any JSON the admin API parses: refused as a body
        assert response.status_code == 400, response.text
        return
    refused(response, deep_path(MAX_NESTING_DEPTH + 1), f"at most {MAX_NESTING_DEPTH}")


def test_a_patch_nested_deeper_is_refused(admin: Admin) -> None:
    created = admin.create([{"name": "a", "type": "string"}]).json()
    deep = nested(MAX_NESTING_DEPTH + 1, {"name": "b", "type": "string"})
    fields = [{"name": "a", "type": "string"}, *deep]
    response = admin.client.patch(f"/v1/connectors/{created['id']}", json={"fields": fields})
    refused(
        response, "fields[1]" + ".fields[0]" * MAX_NESTING_DEPTH, f"at most {MAX_NESTING_DEPTH}"
    )


def _program_depth(program: tuple[Any, ...]) -> int:
    """How deep a native program's deepest node is, the root at 0 (as the C writer counts)."""
    op = program[0]
    if op == _OP_RECORD:
        return 1 + max((_program_depth(child) for child in program[1]), default=-1)
    if op in {_OP_ARRAY, _OP_OPTIONAL}:
        return 1 + _program_depth(program[1])
    return 0


def test_the_writers_limit_is_the_deepest_program_a_definition_makes() -> None:
    fields = msgspec.convert(nested(MAX_NESTING_DEPTH, _DEEPEST_LEAF), list[FieldSpec])
    assert _program_depth(native_program(avro_schema("R", fields))) == MAX_PROGRAM_DEPTH


def _chain(depth: int) -> tuple[Any, ...]:
    """A program whose deepest node (a string) is at ``depth``: a record of optionals."""
    node: tuple[Any, ...] = (1,)
    for _ in range(depth - 1):
        node = (_OP_OPTIONAL, node)
    return (_OP_RECORD, (node,))


def test_the_c_writer_refuses_a_program_deeper_than_it_is_given() -> None:
    if not NATIVE:
        pytest.fail("the C writer is not built")
    from inlet.codec._avro_native import Writer

    astuple = msgspec.structs.astuple
    Writer(_chain(MAX_PROGRAM_DEPTH), b"", astuple, MAX_PROGRAM_DEPTH)
    with pytest.raises(ValueError, match=f"deeper than {MAX_PROGRAM_DEPTH}"):
        Writer(_chain(MAX_PROGRAM_DEPTH + 1), b"", astuple, MAX_PROGRAM_DEPTH)


@pytest.mark.parametrize("native", WRITERS)
def test_both_writers_refuse_a_schema_deeper_than_a_definition_makes(native: bool) -> None:
    schema: Any = "string"
    for level in range(MAX_PROGRAM_DEPTH + 1):  # the string one deeper than allowed
        schema = {"type": "record", "name": f"r{level}", "fields": [{"name": "f", "type": schema}]}
    with pytest.raises(ValueError, match="nests deeper"):
        record_encoder(schema, b"", native=native)


def test_a_json_body_too_deep_to_decode_is_400_on_the_admin_api_and_422_on_confluents(
    admin: Admin,
) -> None:
    deep = b"[" * 5000 + b"]" * 5000
    headers = {"Content-Type": "application/json"}
    response = admin.client.post("/v1/connectors", content=deep, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["detail"] == "the JSON is nested too deeply"
    body = b'{"schema": "\\"string\\"", "references": %s}' % deep
    response = admin.client.post("/subjects/s/versions", content=body, headers=headers)
    assert response.status_code == 422, response.text


def test_an_avro_schema_too_deep_to_check_is_invalid_not_a_500(admin: Admin) -> None:
    schema = '"string"'
    for level in range(1000):
        schema = f'{{"type":"record","name":"r{level}","fields":[{{"name":"f","type":{schema}}}]}}'
    response = admin.client.post("/subjects/s/versions", json={"schema": schema})
    assert response.status_code == 422, response.text
    assert response.json() == {
        "error_code": 42201,
        "message": "Invalid Avro schema: nested too deeply",
    }


# --- Item 9: names reserved for the sinks' own columns -------------------------------------


@pytest.mark.parametrize(
    "name", ["_inlet_offset", "_inlet_partition", "_inlet_received_at", "-inlet-x", "_INLET_Y"]
)
def test_names_in_the_sinks_prefix_are_reserved(admin: Admin, name: str) -> None:
    response = admin.create([{"name": "ok", "type": "string"}, {"name": name, "type": "string"}])
    refused(response, "fields[1].name", "reserved", RESERVED_PREFIX)


def test_near_misses_of_the_prefix_are_names_like_any_other(admin: Admin) -> None:
    fields = [{"name": name, "type": "string"} for name in ["inlet_offset", "_inlet", "__inlet_x"]]
    created = admin.create(fields)
    assert created.status_code == 201, created.text


def test_every_sink_column_of_its_own_is_in_the_reserved_prefix() -> None:
    own = [*KEYED_METADATA_COLUMNS, PARTITION_FIELD, OFFSET_FIELD, RECEIVED_AT_FIELD]
    assert all(column.startswith(RESERVED_PREFIX) for column in own)


# --- The property: whatever the admin API accepts, ingests -------------------------------------

# Names a client may send: odd ones the admin API takes (the codec must cope: they look like its
# own attributes, Python's, JSON pointers' escapes), and ones it must refuse.
_ODD_NAMES = [
    *["_unknown_0", "-unknown-0", "_unknown_0_", "_unknown_1", "_field_0", "_field_1_", "__a"],
    *["__init__", "__struct_fields__", "class", "None", "copy", "self", "inlet_offset", "_inlet"],
    *["2fa", "日本x", "é", "order-id", "a b", "a.b", "a'b", "a/b", "~0", "a~1b", "\u2028a"],
    "x" * 128,
]
_REFUSED_NAMES = [
    *['a"b', "a\\b", "tab\tx", "line\nx", "nul\x00x", "del\x7fx", "c1\x85x"],
    *["_inlet_offset", "_Inlet_x", "-inlet-partition", "_", "日本", "", "x" * 129],
]
_PLAIN = st.text("abcdefghAB_-. 0", min_size=1, max_size=6).filter(lambda n: not name_problem(n))
_NAMES = st.one_of(_PLAIN, st.sampled_from(_ODD_NAMES))
_ANY_NAMES = st.one_of(_NAMES, st.sampled_from(_REFUSED_NAMES), st.text(max_size=6))
_SYMBOLS = st.lists(st.sampled_from(["A", "B", "c_1", "_d"]), min_size=1, max_size=3, unique=True)
_ANY_SYMBOLS = _SYMBOLS | st.lists(st.sampled_from(["A", "bad-symbol", ""]), max_size=3)


def _name_key(name: str) -> str:
    return avro_name(name).lower() if name_problem(name) is None else name


@st.composite
def _raw_fields(draw: st.DrawFn, hostile: bool, depth: int = 0) -> list[dict[str, Any]]:
    """Fields as a client sends them, every type, nullable or not; objects a few levels deep
    (deeper chains come from ``_raw_definitions``). Unless ``hostile``, names and attributes
    that should pass; else anything goes (duplicates, bad names, symbols and precisions)."""
    names = (
        st.lists(_ANY_NAMES, min_size=1, max_size=4)
        if hostile
        else st.lists(_NAMES, min_size=1, max_size=4, unique_by=_name_key)
    )
    fields = []
    for name in draw(names):
        kinds = sorted(FIELD_TYPES) if depth < 2 else sorted(FIELD_TYPES - {"object"})
        kind = draw(st.sampled_from(kinds))
        field: dict[str, Any] = {"name": name, "type": kind}
        if draw(st.booleans()):
            field["nullable"] = True
        if kind == "decimal":
            precision = draw(
                st.integers(1, 38) | st.sampled_from([0, 39]) if hostile else st.integers(1, 38)
            )
            scale = draw(st.integers(0, precision + 1) if hostile else st.integers(0, precision))
            field |= {"precision": precision, "scale": scale}
        elif kind == "enum":
            field["symbols"] = draw(_ANY_SYMBOLS if hostile else _SYMBOLS)
        elif kind == "array":
            field["items"] = draw(st.sampled_from(sorted(ITEM_TYPES)))
        elif kind == "object":
            field["fields"] = draw(_raw_fields(hostile, depth + 1))
        fields.append(field)
    return fields


@st.composite
def _raw_definitions(draw: st.DrawFn) -> tuple[list[dict[str, Any]], str | None]:
    """A definition's fields, maybe with a chain of objects up to past the nesting limit after
    them (which holds more fields), and a key field (mostly none; maybe a top-level field, maybe
    no field's name)."""
    hostile = draw(st.integers(0, 3)) == 0
    fields = draw(_raw_fields(hostile))
    chain = draw(_raw_fields(hostile))
    depth = draw(st.sampled_from([0, MAX_NESTING_DEPTH, MAX_NESTING_DEPTH + 1]) | st.integers(0, 6))
    for level in range(depth, 0, -1):  # "o1" to "o<depth>": no other name starts with "o"
        nullable = draw(st.booleans())
        chain = [{"name": f"o{level}", "type": "object", "nullable": nullable, "fields": chain}]
    if depth:
        fields = [*fields, *chain]
    top = st.sampled_from([field["name"] for field in fields])
    key_field = draw(st.one_of(st.none(), st.none(), st.none(), top, _ANY_NAMES))
    return fields, key_field


def _with_unknown_keys(
    fields: list[FieldSpec], sent: dict[str, Any], extra: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """``sent`` with the keys of ``extra`` that no field is named; those keys, sorted."""
    names = {spec.name for spec in fields}
    unknown = {key: value for key, value in extra.items() if key not in names}
    return {**sent, **unknown}, sorted(unknown)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.data())
def test_every_definition_the_admin_api_accepts_ingests(admin: Admin, data: st.DataObject) -> None:
    raw, key_field = data.draw(_raw_definitions(), label="definition")
    response = admin.create(raw, key_field=key_field)
    if response.status_code == 422:  # refused whole, with its reasons
        assert response.json()["problems"], response.text
        event("refused")
        return
    assert response.status_code == 201, response.text
    event("accepted")
    created = response.json()
    connector = admin.connector(created)
    fields = connector.fields
    batch = data.draw(st.lists(records(fields), min_size=1, max_size=3), label="records")
    extra = data.draw(st.dictionaries(_ANY_NAMES, st.integers() | st.text(max_size=3), max_size=2))
    sent, unknown = [], set()
    for record in batch:
        one, keys = _with_unknown_keys(
            fields, as_json(fields, record, decimals_as_numbers=True), extra
        )
        sent.append(one)
        unknown.update(keys)
    body = parse_body(msgspec.json.encode(sent), "application/json")
    schema = admin.registered_schema(created)
    written = []
    for native in [True, False] if NATIVE else [False]:
        result = _codec(connector, native).encode(body)
        assert result.rejected == [], result.errors
        assert result.unknown_fields == sorted(unknown)
        values = [value for _, _, value in result.records]
        assert [
            fastavro.schemaless_reader(io.BytesIO(value[5:]), schema, schema) for value in values
        ] == [expected(fields, record) for record in batch]
        written.append(values)
    assert all(values == written[0] for values in written)  # the C writer's bytes are fastavro's
    RecordCodec.of_connector(connector)  # what the gateway builds: the key function too
