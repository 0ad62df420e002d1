"""A connector's fields as msgspec types: one Struct per record level, built once per schema.

Struct attributes are the Avro names (so a Struct's field order and names line up with the Avro
record), and ``rename`` maps them to the user's names, which are the JSON keys. The one exception:
an Avro name starting with two underscores would be mangled by Python (``__a``) or clash with its
own attributes (``__init__``), so it gets a neutral attribute name; nothing outside this package
sees attributes (the Avro writer takes values by position).

Each level has two Struct types: ``strict`` refuses keys the schema does not know (so a batch with
none takes the fast path and needs no key scan), ``lenient`` ignores them. ``probe_struct`` extends
a strict one with given unknown keys, for batches whose records share them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

import msgspec

from inlet.model.fields import FieldSpec, avro_name

_INT64: Final[Any] = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]  # Avro long
_SCALARS: Final[dict[str, Any]] = {
    "string": str,
    "integer": _INT64,
    "float": float,  # JSON integers are accepted
    "boolean": bool,
    "date": dt.date,
    "datetime": Annotated[dt.datetime, msgspec.Meta(tz=True)],  # RFC 3339 with an offset
    "time": Annotated[dt.time, msgspec.Meta(tz=False)],  # Avro's time-micros has no zone
    "decimal": Decimal,  # exact from a JSON number or string; precision and scale checked later
    "uuid": uuid.UUID,
}
_HINTS: Final = {
    "string": "must be a string",
    "integer": "must be an integer from -9223372036854775808 to 9223372036854775807",
    "float": "must be a number",
    "boolean": "must be true or false",
    "date": "must be a date like 2024-05-01",
    "datetime": "must be an RFC 3339 datetime with an offset, like 2024-05-01T12:34:56Z",
    "time": "must be a time of day without an offset, like 12:34:56",
    "decimal": "must be a decimal number",
    "uuid": "must be a UUID like 123e4567-e89b-12d3-a456-426614174000",
}


_StructField = tuple[str, Any, Any] | tuple[str, Any]  # what defstruct takes


def scalar_type(type_name: str) -> Any:
    """The msgspec type a value of a scalar field type (not enum) decodes into: what the codec
    accepts, for whoever must judge a value as the codec will (``field_inference.py``)."""
    return _SCALARS[type_name]


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """One field: its names, and the types that check a value of it."""

    name: str  # the user's, the JSON key
    attr: str  # the Struct attribute
    spec: FieldSpec
    optional_type: Any  # the type of the value or null; the nested lenient Struct for an object
    json_decoder: msgspec.json.Decoder[Any]  # decodes optional_type
    level: LevelPlan | None  # the nested level of an object field
    hint: str  # what a valid value looks like, for error messages


@dataclass(frozen=True, slots=True)
class LevelPlan:
    """One record level: its fields in order, and its Struct types."""

    name: str
    fields: tuple[FieldPlan, ...]
    by_name: dict[str, FieldPlan]
    names: frozenset[str]
    objects: tuple[tuple[str, LevelPlan], ...]  # (name, level) of the fields that nest one
    strict: type[msgspec.Struct]
    lenient: type[msgspec.Struct]
    strict_fields: tuple[_StructField, ...]  # to extend into a probe


def plan_level(fields: list[FieldSpec], struct_name: str) -> LevelPlan:
    """Build the types of one level (and, recursively, of its objects)."""
    plans: list[FieldPlan] = []
    strict_fields: list[_StructField] = []
    lenient_fields: list[_StructField] = []
    attrs = _attributes([avro_name(spec.name) for spec in fields])
    for spec, attr in zip(fields, attrs, strict=True):
        level = (
            plan_level(spec.fields or [], f"{struct_name}_{attr}")
            if spec.type == "object"
            else None
        )
        strict_type = level.strict if level is not None else _value_type(spec)
        lenient_type = level.lenient if level is not None else strict_type
        strict_fields.append(_struct_field(attr, strict_type, nullable=spec.nullable))
        lenient_fields.append(_struct_field(attr, lenient_type, nullable=spec.nullable))
        optional_type = lenient_type | None
        plans.append(
            FieldPlan(
                name=spec.name,
                attr=attr,
                spec=spec,
                optional_type=optional_type,
                json_decoder=msgspec.json.Decoder(optional_type),
                level=level,
                hint=_hint(spec),
            )
        )
    rename = _rename(plans)
    return LevelPlan(
        name=struct_name,
        fields=tuple(plans),
        by_name={plan.name: plan for plan in plans},
        names=frozenset(plan.name for plan in plans),
        objects=tuple((plan.name, plan.level) for plan in plans if plan.level is not None),
        strict=_struct(struct_name, strict_fields, rename, forbid_unknown_fields=True),
        lenient=_struct(struct_name, lenient_fields, rename, forbid_unknown_fields=False),
        strict_fields=tuple(strict_fields),
    )


def probe_struct(
    level: LevelPlan, unknown: list[str], value_type: Any
) -> tuple[type[msgspec.Struct], list[tuple[str, str]]]:
    """The strict Struct of ``level`` plus one field per ``unknown`` key, typed ``value_type``
    (``msgspec.Raw`` for JSON: skipped, not decoded) and UNSET when absent, after the known
    fields. Decoding into it refuses keys beyond those, so a batch whose records share a few
    unknown keys stays on a fast path; the (key, attribute) pairs tell which keys were seen."""
    taken = {plan.attr for plan in level.fields}
    extra: list[tuple[str, str]] = []
    for key in unknown:
        attr = f"_unknown_{len(extra)}"
        while attr in taken:  # an Avro name may look like this too
            attr += "_"  # not "_" in front: "__" names are Python's (and msgspec refuses them)
        taken.add(attr)
        extra.append((key, attr))
    fields = [*level.strict_fields, *((attr, value_type, msgspec.UNSET) for _, attr in extra)]
    rename = _rename(level.fields) | {attr: key for key, attr in extra}
    probe = _struct(f"{level.name}_probe", fields, rename, forbid_unknown_fields=True)
    return probe, extra


def _attributes(names: list[str]) -> list[str]:
    taken = set(names)
    attrs = []
    for index, name in enumerate(names):
        attr = name
        if name.startswith("__"):
            attr = f"_field_{index}"
            while attr in taken:
                attr += "_"
            taken.add(attr)
        attrs.append(attr)
    return attrs


def _value_type(spec: FieldSpec) -> Any:
    if spec.type == "enum":
        return Literal[tuple(spec.symbols or ())]  # Literal["A", "B"]: msgspec checks membership
    if spec.type == "array":
        item_type = _SCALARS[spec.items or "string"]
        return list[item_type]  # type: ignore[valid-type]  # a type built at runtime
    return _SCALARS[spec.type]


def _hint(spec: FieldSpec) -> str:
    if spec.type == "enum":
        return f"must be one of {', '.join(spec.symbols or ())}"
    if spec.type == "array":
        return _HINTS[spec.items or ""].replace("must be", "each item must be", 1)
    if spec.type == "object":
        return "must be an object"
    return _HINTS[spec.type]


def _rename(plans: Iterable[FieldPlan]) -> dict[str, str]:
    return {plan.attr: plan.name for plan in plans if plan.attr != plan.name}


def _struct_field(attr: str, value_type: Any, *, nullable: bool) -> _StructField:
    return (attr, value_type | None, None) if nullable else (attr, value_type)


def _struct(
    name: str,
    fields: Iterable[_StructField],
    rename: dict[str, str],
    *,
    forbid_unknown_fields: bool,
) -> type[msgspec.Struct]:
    # kw_only keeps the declared (Avro) order although optional fields come between required
    # ones; gc=False because decoded records never hold reference cycles (msgspec's perf tip).
    return msgspec.defstruct(
        name,
        fields,
        rename=rename or None,
        kw_only=True,
        forbid_unknown_fields=forbid_unknown_fields,
        gc=False,
    )
