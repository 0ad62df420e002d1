"""Connector field definitions: the admin API's JSON shape, and its validation.

Avro name rule
--------------
An Avro name must match ``[A-Za-z_][A-Za-z0-9_]*``, but users name fields freely ("order-id",
"Total Amount", "2fa"). ``avro_name`` maps a user's name to an Avro name:

1. every character outside ``[A-Za-z0-9_]`` (including any non-ASCII character) becomes ``_``;
2. if the result starts with a digit, ``_`` is put in front.

So "order-id" -> "order_id", "Total Amount" -> "Total_Amount", "2fa" -> "_2fa". A name is invalid
when it is empty, longer than 128 characters, or maps to underscores only ("---", "_", "日本").
Field names at one level must be unique case-insensitively *after* mapping: "order-id" and
"Order_ID" collide. The Avro field keeps the user's name in the custom attribute ``inlet.name``
when it differs (not in ``aliases``, which Avro uses for schema resolution). Enum symbols are not
mapped: a symbol that is not an Avro name is rejected.

Field names, besides, must be keys a record can be matched by, and leave room for what Inlet adds:

* no ``"``, ``\\`` or control character (U+0000-U+001F, U+007F-U+009F): msgspec, which decodes
  records into Structs whose fields are renamed to the users' names, refuses such names;
* no Avro name starting with ``_inlet_`` (``RESERVED_PREFIX``, any case, at any level): the sinks
  name their own columns so (``_inlet_partition``, ``_inlet_offset``, ``_inlet_received_at``).

Objects nest at most ``MAX_NESTING_DEPTH`` (32) levels: a top-level object is level 1, an object
among its fields level 2. The one limit that the admin API checks, the codec's Avro writers are
built for (``inlet/codec/_avro_writer.py`` derives the C writer's from it) and every record of an
accepted definition fits in (a JSON body may nest about 1,000 deep).
"""

from __future__ import annotations

import re
from typing import Final, Literal, get_args

import msgspec

from inlet.errors import InvalidConnector, Problem

FieldType = Literal[
    "string",
    "integer",
    "float",
    "boolean",
    "date",
    "datetime",
    "time",
    "decimal",
    "uuid",
    "enum",
    "array",
    "object",
]
# Array items are primitives only: no per-item precision, symbols or nested fields to carry.
ItemType = Literal["string", "integer", "float", "boolean", "date", "datetime", "time", "uuid"]

FIELD_TYPES: Final[frozenset[str]] = frozenset(get_args(FieldType))
ITEM_TYPES: Final[frozenset[str]] = frozenset(get_args(ItemType))
SCALAR_TYPES: Final[frozenset[str]] = FIELD_TYPES - {"array", "object"}

MAX_NAME_LENGTH: Final = 128
MAX_NESTING_DEPTH: Final = 32
RESERVED_PREFIX: Final = "_inlet_"  # the sinks' own columns; compared case-insensitively
MAX_DECIMAL_PRECISION: Final = 38  # what a 16-byte decimal holds; what most sinks accept

_NON_AVRO_CHAR = re.compile(r"[^A-Za-z0-9_]")
_AVRO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# What msgspec refuses to rename a Struct field to (see the docstring).
_UNMATCHABLE_CHAR = re.compile(r'["\\\x00-\x1f\x7f-\x9f]')

# Attributes that only one type may carry.
_OWNED_ATTRIBUTES: Final = (
    ("precision", "decimal"),
    ("scale", "decimal"),
    ("symbols", "enum"),
    ("items", "array"),
    ("fields", "object"),
)


class FieldSpec(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    """One field of a connector's records, as the admin API sends and returns it."""

    name: str
    type: FieldType
    nullable: bool = False
    doc: str | None = None
    precision: int | None = None  # decimal
    scale: int | None = None  # decimal; None means 0
    symbols: list[str] | None = None  # enum
    items: ItemType | None = None  # array
    fields: list[FieldSpec] | None = None  # object


def _map_name(name: str) -> str:
    mapped = _NON_AVRO_CHAR.sub("_", name)
    return f"_{mapped}" if mapped[:1].isdigit() else mapped


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be given an Avro name, or None when it can."""
    if not name:
        return "must not be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"must be at most {MAX_NAME_LENGTH} characters"
    if not _map_name(name).strip("_"):
        return "must contain at least one ASCII letter or digit"
    return None


def field_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a field (``name_problem``, and see the docstring), or None."""
    problem = name_problem(name)
    if problem is not None:
        return problem
    found = unmatchable_character(name)
    if found is not None:
        return f"must not contain {found!r} (no quote, backslash or control character)"
    if _map_name(name).lower().startswith(RESERVED_PREFIX):
        return f"is reserved: Avro names starting with {RESERVED_PREFIX!r} are Inlet's own columns"
    return None


def unmatchable_character(key: str) -> str | None:
    """The first character of ``key`` that msgspec refuses in a renamed Struct field, or None."""
    found = _UNMATCHABLE_CHAR.search(key)
    return None if found is None else found.group()


def avro_name(name: str) -> str:
    """The Avro name for a user's ``name`` (see the module docstring); ValueError if invalid."""
    problem = name_problem(name)
    if problem is not None:
        raise ValueError(f"name {name!r} {problem}")
    return _map_name(name)


def validate_connector_name(name: str) -> list[Problem]:
    """Problems with a connector's name (1-128 characters, not blank)."""
    if not name.strip():
        return [Problem(field="name", reason="must not be blank")]
    if len(name) > MAX_NAME_LENGTH:
        return [Problem(field="name", reason=f"must be at most {MAX_NAME_LENGTH} characters")]
    return []


def field_problems(fields: list[FieldSpec], key_field: str | None) -> list[Problem]:
    """Every problem with ``fields`` and ``key_field``, in field order; empty when valid.

    Exposed beside ``validate_fields`` so a caller can report these together with other problems
    (the connector's name, its settings) in one error.
    """
    problems = _level_problems(fields, "fields", 0)
    if key_field is not None:
        problems.extend(_key_field_problems(fields, key_field))
    return problems


def validate_fields(fields: list[FieldSpec], key_field: str | None) -> None:
    """Raise InvalidConnector listing every problem with ``fields`` and ``key_field``."""
    problems = field_problems(fields, key_field)
    if problems:
        raise InvalidConnector("invalid connector fields", problems=problems)


def _level_problems(fields: list[FieldSpec], path: str, depth: int) -> list[Problem]:
    # depth: how many objects hold these fields (0 at the top)
    if not fields:
        return [Problem(field=path, reason="at least one field is required")]
    problems: list[Problem] = []
    seen: dict[str, int] = {}  # lower-cased Avro name -> index of the first field with it
    for index, spec in enumerate(fields):
        at = f"{path}[{index}]"
        reason = field_name_problem(spec.name)
        if reason is None:
            key = _map_name(spec.name).lower()
            if key in seen:
                reason = _duplicate_reason(
                    spec.name, fields[seen[key]].name, f"{path}[{seen[key]}]"
                )
            else:
                seen[key] = index
        if reason is not None:
            problems.append(Problem(field=f"{at}.name", reason=reason))
        problems.extend(_type_problems(spec, at, depth))
    return problems


def _duplicate_reason(name: str, other: str, other_at: str) -> str:
    if name.lower() == other.lower():
        return f"duplicates {other_at}.name {other!r} (names are case-insensitive)"
    return f"{name!r} and {other!r} ({other_at}.name) both map to Avro name {_map_name(other)!r}"


def _type_problems(spec: FieldSpec, at: str, depth: int) -> list[Problem]:
    # Runtime checks of the Literals too: a FieldSpec built in code is not checked by msgspec.
    if spec.type not in FIELD_TYPES:
        return [Problem(field=f"{at}.type", reason=f"unknown type {spec.type!r}")]
    problems = [
        Problem(field=f"{at}.{attribute}", reason=f"only allowed on {owner} fields")
        for attribute, owner in _OWNED_ATTRIBUTES
        if spec.type != owner and getattr(spec, attribute) is not None
    ]
    if spec.type == "decimal":
        problems.extend(_decimal_problems(spec, at))
    elif spec.type == "enum":
        problems.extend(_enum_problems(spec.symbols, at))
    elif spec.type == "array":
        if spec.items is None:
            problems.append(Problem(field=f"{at}.items", reason="an array needs an item type"))
        elif spec.items not in ITEM_TYPES:
            reason = f"must be one of {', '.join(sorted(ITEM_TYPES))}"
            problems.append(Problem(field=f"{at}.items", reason=reason))
    elif spec.type == "object" and depth >= MAX_NESTING_DEPTH:
        # Not looked into: the check itself must not recurse as deep as a body can nest.
        level = depth + 1
        reason = f"objects nest at most {MAX_NESTING_DEPTH} levels; this one is at level {level}"
        problems.append(Problem(field=at, reason=reason))
    elif spec.type == "object":
        problems.extend(_level_problems(spec.fields or [], f"{at}.fields", depth + 1))
    return problems


def _decimal_problems(spec: FieldSpec, at: str) -> list[Problem]:
    problems: list[Problem] = []
    precision = spec.precision
    if precision is None:
        problems.append(Problem(field=f"{at}.precision", reason="a decimal needs a precision"))
    elif not 1 <= precision <= MAX_DECIMAL_PRECISION:
        reason = f"must be between 1 and {MAX_DECIMAL_PRECISION}"
        problems.append(Problem(field=f"{at}.precision", reason=reason))
        precision = None  # an out-of-range precision says nothing about the scale
    scale = spec.scale or 0
    if scale < 0:
        problems.append(Problem(field=f"{at}.scale", reason="must not be negative"))
    elif precision is not None and scale > precision:
        reason = f"must not exceed the precision ({precision})"
        problems.append(Problem(field=f"{at}.scale", reason=reason))
    return problems


def _enum_problems(symbols: list[str] | None, at: str) -> list[Problem]:
    if not symbols:
        return [Problem(field=f"{at}.symbols", reason="an enum needs at least one symbol")]
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, symbol in enumerate(symbols):
        if not _AVRO_NAME.fullmatch(symbol):
            reason = f"{symbol!r} is not an Avro name ([A-Za-z_][A-Za-z0-9_]*)"
            problems.append(Problem(field=f"{at}.symbols[{index}]", reason=reason))
        elif symbol in seen:
            problems.append(Problem(field=f"{at}.symbols[{index}]", reason=f"duplicate {symbol!r}"))
        seen.add(symbol)
    return problems


def _key_field_problems(fields: list[FieldSpec], key_field: str) -> list[Problem]:
    spec = next((field for field in fields if field.name == key_field), None)
    if spec is None:
        reason = f"no top-level field is named {key_field!r}"
    elif spec.nullable:
        reason = f"field {key_field!r} is nullable; a key must always be present"
    elif spec.type not in SCALAR_TYPES:
        reason = f"field {key_field!r} is an {spec.type}; a key must be a scalar"
    else:
        return []
    return [Problem(field="key_field", reason=reason)]
