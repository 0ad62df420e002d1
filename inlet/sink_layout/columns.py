"""A record schema as typed columns: the one reading of Avro that every sink maps from.

Sinks make columns from the schema a record was *written* with (its wire-format id), so a record
always meets columns that can hold it, and a schema edit reaches a sink with the first record that
uses it. Kinds are Inlet's field types (``inlet/model/fields.py``), recovered from the Avro that
``inlet/model/avro.py`` generates; an Avro type Inlet never generates (a schema registered by hand)
becomes ``other`` and is kept as JSON.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from inlet.model.fields import FieldType

Kind = FieldType | Literal["other"]

_LOGICAL: dict[tuple[str, str], Kind] = {
    ("int", "date"): "date",
    ("long", "timestamp-micros"): "datetime",
    ("long", "timestamp-millis"): "datetime",
    ("long", "time-micros"): "time",
    ("int", "time-millis"): "time",
    ("string", "uuid"): "uuid",
    ("bytes", "decimal"): "decimal",
}
_PRIMITIVE: dict[str, Kind] = {
    "string": "string",
    "long": "integer",
    "int": "integer",
    "double": "float",
    "float": "float",
    "boolean": "boolean",
}


class Column(NamedTuple):
    name: str  # the Avro field name: the key in decoded records
    kind: Kind
    nullable: bool
    precision: int | None = None  # decimal
    scale: int | None = None  # decimal
    symbols: tuple[str, ...] = ()  # enum
    items: Column | None = None  # array: the item's column (its name is "item")
    fields: tuple[Column, ...] = ()  # object


def record_columns(schema: dict[str, Any]) -> list[Column]:
    """The columns of a record schema, in field order."""
    return [_column(field["name"], field["type"]) for field in schema.get("fields", [])]


def _column(name: str, avro_type: Any) -> Column:
    nullable = False
    if isinstance(avro_type, list):
        branches = [t for t in avro_type if t != "null"]
        nullable = len(branches) < len(avro_type)
        if len(branches) != 1:
            return Column(name, "other", True)
        avro_type = branches[0]
    column = _typed(name, avro_type)
    return column._replace(nullable=nullable)


def _typed(name: str, avro_type: Any) -> Column:
    if isinstance(avro_type, str):
        return Column(name, _PRIMITIVE.get(avro_type, "other"), False)
    if not isinstance(avro_type, dict):
        return Column(name, "other", False)
    return _complex(name, avro_type)


def _complex(name: str, avro_type: dict[str, Any]) -> Column:
    base, logical = avro_type.get("type"), avro_type.get("logicalType")
    kind = _LOGICAL.get((base, logical)) if isinstance(base, str) and logical else None
    if kind == "decimal":
        precision = int(avro_type.get("precision", 38))
        return Column(name, kind, False, precision, int(avro_type.get("scale", 0)))
    if kind is not None:
        return Column(name, kind, False)
    if base == "enum":
        return Column(name, "enum", False, symbols=tuple(avro_type.get("symbols", ())))
    if base == "array":
        return Column(name, "array", False, items=_column("item", avro_type.get("items")))
    if base == "record":
        return Column(name, "object", False, fields=tuple(record_columns(avro_type)))
    # A named primitive ({"type": "long"}) is the primitive; anything else is kept as JSON.
    return Column(name, _PRIMITIVE.get(base, "other") if isinstance(base, str) else "other", False)
