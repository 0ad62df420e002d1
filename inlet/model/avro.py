"""Avro record schemas generated from connector fields, and the text they are registered as.

Named types (enums, nested records) are named after their path: the enum of field "status" in
nested object "customer" of record "Order" is ``Order_customer_status``. Two paths can give the same
name ("a_b" vs "a" -> "b"); the later one, in depth-first field order, gets ``_2``, ``_3``, ...
Names are compared case-insensitively so generated classes do not clash on case-insensitive file
systems.
"""

from __future__ import annotations

import json
from typing import Final

from inlet.errors import InvalidConnector, Problem
from inlet.model.fields import FieldSpec, avro_name, field_problems, name_problem

# dicts are built fresh per use (see _primitive): callers may mutate the schema they get back.
_PRIMITIVES: Final[dict[str, str | dict[str, str]]] = {
    "string": "string",
    "integer": "long",
    "float": "double",
    "boolean": "boolean",
    "date": {"type": "int", "logicalType": "date"},
    "datetime": {"type": "long", "logicalType": "timestamp-micros"},
    "time": {"type": "long", "logicalType": "time-micros"},
    "uuid": {"type": "string", "logicalType": "uuid"},
}

_KEY_ORDER: Final = (
    "name",
    "type",
    "fields",
    "symbols",
    "items",
    "logicalType",
    "precision",
    "scale",
    "default",
    "doc",
)
_KEY_RANK: Final = {key: rank for rank, key in enumerate(_KEY_ORDER)}


def avro_schema(
    record_name: str, fields: list[FieldSpec], *, namespace: str = "inlet"
) -> dict[str, object]:
    """The Avro record schema for ``fields``; InvalidConnector if the name or fields are invalid.

    Validates first so it never returns a schema an Avro library would reject.
    """
    problems = field_problems(fields, None)
    reason = name_problem(record_name)
    if reason is not None:
        problems.insert(0, Problem(field="name", reason=reason))
    if problems:
        raise InvalidConnector("cannot build an Avro schema", problems=problems)
    name = avro_name(record_name)
    taken = {name.lower()}
    return {
        "name": name,
        "type": "record",
        "fields": _record_fields(name, fields, taken),
        "namespace": namespace,
    }


def avro_field_names(fields: list[FieldSpec]) -> dict[str, str]:
    """Original name -> Avro name for one level of fields (call again on an object's ``fields``)."""
    return {spec.name: avro_name(spec.name) for spec in fields}


def schema_json(schema: object) -> str:
    """The text a generated schema is registered as: compact JSON with keys in a fixed, readable
    order, so equal schemas have equal text. (The registry's own identity of a schema, whatever
    its key order, is ``inlet.model.schemas.canonical_form``.)

    Each object's keys go name, type, fields, symbols, items, logicalType, precision, scale,
    default, doc, then any others sorted. Non-ASCII characters are kept as they are.
    """
    return json.dumps(_ordered(schema), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _ordered(value: object) -> object:
    if isinstance(value, dict):
        keys = sorted(value, key=lambda key: (_KEY_RANK.get(key, len(_KEY_RANK)), key))
        return {key: _ordered(value[key]) for key in keys}
    if isinstance(value, list):
        return [_ordered(item) for item in value]
    return value


def _record_fields(owner: str, fields: list[FieldSpec], taken: set[str]) -> list[object]:
    result: list[object] = []
    for spec in fields:
        name = avro_name(spec.name)
        avro_type = _avro_type(spec, f"{owner}_{name}", taken)
        field: dict[str, object] = {"name": name}
        if spec.nullable:
            field["type"] = ["null", avro_type]  # null first: only then may the default be null
            field["default"] = None
        else:
            field["type"] = avro_type  # no default: the field is required
        if spec.doc is not None:
            field["doc"] = spec.doc
        if name != spec.name:
            field["inlet.name"] = spec.name
        result.append(field)
    return result


def _avro_type(spec: FieldSpec, path_name: str, taken: set[str]) -> object:
    if spec.type == "decimal":
        return {
            "type": "bytes",
            "logicalType": "decimal",
            "precision": spec.precision,
            "scale": spec.scale or 0,
        }
    if spec.type == "enum":
        name = _claim(path_name, taken)
        return {"name": name, "type": "enum", "symbols": list(spec.symbols or [])}
    if spec.type == "array":
        return {"type": "array", "items": _primitive(spec.items or "")}
    if spec.type == "object":
        name = _claim(path_name, taken)
        return {
            "name": name,
            "type": "record",
            "fields": _record_fields(name, spec.fields or [], taken),
        }
    return _primitive(spec.type)


def _primitive(type_name: str) -> object:
    avro_type = _PRIMITIVES[type_name]
    return dict(avro_type) if isinstance(avro_type, dict) else avro_type


def _claim(name: str, taken: set[str]) -> str:
    candidate, suffix = name, 2
    while candidate.lower() in taken:
        candidate, suffix = f"{name}_{suffix}", suffix + 1
    taken.add(candidate.lower())
    return candidate
