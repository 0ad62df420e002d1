"""The text Confluent stores for an Avro schema: Apache Avro Java's ``Schema.toString()``.

Confluent Schema Registry parses every schema with Avro Java and keeps (and returns) what that
parser writes back: compact JSON, Avro's key order (``type``, ``name``, ``namespace``, ``doc``,
``fields``/``symbols``/``items``/``values``/``size``, then other attributes as given, then
``aliases``), a primitive without attributes as a bare name (``"string"``), attributes Avro ignores
dropped (a ``name`` on a primitive), namespaces written only where they differ from the enclosing
one, and a named type written in full only where it is first defined. Two schemas with the same
text here are the same schema to Avro: this text is also a schema's identity in the registry.

It works on the schema's JSON, not on a parsed schema, so names defined elsewhere (references)
stay names. The JSON must already be a valid Avro schema (``registry/schemas.py`` checks first).
"""

from __future__ import annotations

import json

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED = frozenset({"record", "error", "enum", "fixed"})
_BUILT_IN = PRIMITIVES | _NAMED | {"array", "map"}
# What Avro Java does not keep as a schema's or a field's own attributes ("props").
_SCHEMA_RESERVED = frozenset(
    {"doc", "fields", "items", "name", "namespace", "size", "symbols", "values", "type", "aliases"}
)
_ENUM_RESERVED = _SCHEMA_RESERVED | {"default"}
_FIELD_RESERVED = frozenset({"default", "doc", "name", "order", "type", "aliases"})


def avro_text(schema: object) -> str:
    """``schema`` (parsed JSON) as Avro Java writes it back."""
    return json.dumps(_Writer().schema(schema, None), separators=(",", ":"), ensure_ascii=False)


def _full_name(name: str, space: str | None) -> tuple[str | None, str]:
    """(namespace, simple name) of ``name`` read in namespace ``space``."""
    if "." in name:
        space_part, _, simple = name.rpartition(".")
        return space_part or None, simple
    return space, name


def _qualified(space: str | None, simple: str, default_space: str | None) -> str:
    # Avro's Name.getQualified: the simple name when the space is the default one (or none).
    return simple if space is None or space == default_space else f"{space}.{simple}"


class _Writer:
    """One schema's walk: which named types it has written so far (Avro's ``Names``)."""

    def __init__(self) -> None:
        self._defined: set[tuple[str | None, str]] = set()

    def schema(self, schema: object, space: str | None) -> object:
        if isinstance(schema, list):
            return [self.schema(branch, space) for branch in schema]
        if isinstance(schema, str):
            return schema if schema in PRIMITIVES else _qualified(*_full_name(schema, space), space)
        if not isinstance(schema, dict):
            return schema
        kind = schema.get("type")
        if isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind not in _BUILT_IN):
            # A type wrapped in an object is that type; {"type": "com.acme.Name"} a reference.
            return self.schema(kind, space)
        if kind in _NAMED:
            return self._named(schema, str(kind), space)
        return self._unnamed(schema, kind, space)

    def _unnamed(self, schema: dict[str, object], kind: object, space: str | None) -> object:
        props = _props(schema, _SCHEMA_RESERVED)
        if kind == "array":
            return {"type": kind, "items": self.schema(schema.get("items"), space)} | props
        if kind == "map":
            return {"type": kind, "values": self.schema(schema.get("values"), space)} | props
        return {"type": kind} | props if props else kind

    def _named(self, schema: dict[str, object], kind: str, space: str | None) -> object:
        namespace = schema.get("namespace")
        own_space = namespace or None if isinstance(namespace, str) else space
        name_space, simple = _full_name(str(schema.get("name", "")), own_space)
        if (name_space, simple) in self._defined:
            return _qualified(name_space, simple, space)
        self._defined.add((name_space, simple))
        out: dict[str, object] = {"type": kind, "name": simple}
        if name_space is not None:
            if name_space != space:
                out["namespace"] = name_space
        elif space is not None:
            out["namespace"] = ""  # null inside a namespace must be said
        if "doc" in schema:
            out["doc"] = schema["doc"]
        if kind in ("record", "error"):
            fields = schema.get("fields")
            out["fields"] = [self._field(f, name_space) for f in _listed(fields)]
            reserved = _SCHEMA_RESERVED
        elif kind == "enum":
            out["symbols"] = schema.get("symbols")
            if "default" in schema:
                out["default"] = schema["default"]
            reserved = _ENUM_RESERVED
        else:
            out["size"] = schema.get("size")
            reserved = _SCHEMA_RESERVED
        out |= _props(schema, reserved)
        aliases = schema.get("aliases")
        if isinstance(aliases, list) and aliases:
            out["aliases"] = [
                _qualified(*_full_name(str(alias), name_space), name_space) for alias in aliases
            ]
        return out

    def _field(self, field: object, space: str | None) -> object:
        if not isinstance(field, dict):
            return field
        kind = self.schema(field.get("type"), space)
        out: dict[str, object] = {"name": field.get("name"), "type": kind}
        for key in ("doc", "default"):
            if key in field:
                out[key] = field[key]
        if field.get("order", "ascending") != "ascending":
            out["order"] = field["order"]
        aliases = field.get("aliases")
        if isinstance(aliases, list) and aliases:
            out["aliases"] = aliases
        return out | _props(field, _FIELD_RESERVED)


def _listed(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _props(schema: dict[str, object], reserved: frozenset[str]) -> dict[str, object]:
    return {k: v for k, v in schema.items() if k not in reserved}
