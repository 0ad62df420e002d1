"""Avro schema compatibility: can data written with one schema be read with another?

Pure functions over parsed Avro JSON (what ``json.loads`` makes of a schema string), implementing
the schema-resolution rules of the Avro specification the way Confluent Schema Registry and Karapace
check them (both use Avro's ``SchemaCompatibility``):

* primitives match themselves, plus the promotions int→long/float/double, long→float/double,
  float→double and string↔bytes;
* records, enums and fixed match by *unqualified* name or by a reader alias equal to the writer's
  full name, so moving a type to another namespace is compatible (the spec's rule and Confluent's);
* reader record fields are found in the writer by name or reader alias; a reader field the writer
  lacks needs a default; writer fields the reader lacks are skipped;
* a writer enum symbol the reader lacks is a problem unless the reader enum declares a ``default``;
* a writer union is readable when each of its branches is; a reader union reads a writer type when
  any of its branches does.

Logical types are annotations here: like Karapace (whose checker is Apache Avro's Python one) and
Avro Java's ``SchemaCompatibility``, only the underlying type decides. ``timestamp-micros`` and
``long`` are interchangeable, and a decimal whose precision or scale changed is still compatible
although its stored unscaled values would then be read at the other scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from inlet.errors import InvalidSchema
from registry.errors import InvalidCompatibilityLevel


class CompatibilityLevel(StrEnum):
    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"


DEFAULT_LEVEL = CompatibilityLevel.BACKWARD

# Reasons kept per compared pair of types (and so per direction and version in ``check``). A type
# reused at many places repeats its reasons at each; the cap keeps that from growing exponentially.
MAX_REASONS = 20


def parse_level(text: str) -> CompatibilityLevel:
    """The level named by ``text``, in any letter case (Confluent's API takes ``backward`` too)."""
    try:
        return CompatibilityLevel(text.upper())
    except ValueError:
        raise InvalidCompatibilityLevel(
            "Invalid compatibility level. Valid values are none, backward, forward, full, "
            "backward_transitive, forward_transitive, and full_transitive"
        ) from None


@dataclass(frozen=True)
class WithReferences:
    """A parsed schema and the parsed schemas its references resolve to, dependencies first: the
    named types they define are known when the schema is read. Wherever this module takes a
    parsed schema, it takes one of these too."""

    schema: object
    references: tuple[object, ...]


def check(level: CompatibilityLevel, new: object, existing: list[object]) -> list[str]:
    """Why ``new`` may not follow ``existing`` (the live schemas, oldest first) under ``level``.

    Transitive levels compare with every existing schema, the others with the latest only. Each
    reason says which direction failed and against which existing schema (#1 is the oldest).
    """
    if level == CompatibilityLevel.NONE or not existing:
        return []
    new_type = _parse(new)
    targets = list(enumerate(existing, 1))
    if not level.endswith("_TRANSITIVE"):
        targets = targets[-1:]
    checker = _Checker()
    reasons: list[str] = []
    for number, old in targets:
        old_type = _parse(old)
        if level.startswith(("BACKWARD", "FULL")):
            reasons += [
                f"backward: new schema cannot read existing schema #{number}: {reason}"
                for reason in checker.reasons(new_type, old_type)
            ]
        if level.startswith(("FORWARD", "FULL")):
            reasons += [
                f"forward: existing schema #{number} cannot read new schema: {reason}"
                for reason in checker.reasons(old_type, new_type)
            ]
    return reasons


def reader_writer_problems(reader: object, writer: object) -> list[str]:
    """Why data written with ``writer`` cannot be read with ``reader``; empty when it can.

    Raises ``InvalidSchema`` when either schema is not valid Avro JSON as far as this check needs.
    """
    return _Checker().reasons(_parse(reader), _parse(writer))


# --- A parsed schema: names resolved, every reference to a named type is the same object. ---


@dataclass(eq=False)
class _Type:
    type: str  # a primitive name, "record", "enum", "fixed", "array", "map" or "union"


@dataclass(eq=False)
class _Named(_Type):
    name: str  # full name
    aliases: frozenset[str]  # full names


@dataclass(eq=False)
class _Record(_Named):
    fields: list[_Field] = field(default_factory=list)


@dataclass(eq=False)
class _Field:
    name: str
    type: _Type
    aliases: tuple[str, ...]
    has_default: bool


@dataclass(eq=False)
class _Enum(_Named):
    symbols: tuple[str, ...]
    default: str | None


@dataclass(eq=False)
class _Fixed(_Named):
    size: int


@dataclass(eq=False)
class _Container(_Type):
    child: _Type  # an array's items or a map's values


@dataclass(eq=False)
class _Union(_Type):
    branches: list[_Type]


_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_PROMOTIONS = {  # reader type -> writer types it also reads
    "long": {"int"},
    "float": {"int", "long"},
    "double": {"int", "long", "float"},
    "string": {"bytes"},
    "bytes": {"string"},
}


_TOO_DEEP = "Invalid Avro schema: nested too deeply"


def _parse(schema: object) -> _Type:
    try:
        parser = _Parser()
        if isinstance(schema, WithReferences):
            for reference in schema.references:
                parser.parse(reference, "")
            schema = schema.schema
        return parser.parse(schema, "")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidSchema(f"Invalid Avro schema: {exc!r}") from exc
    except RecursionError:
        raise InvalidSchema(_TOO_DEEP) from None


def _full_name(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _short_name(name: str) -> str:
    return name.rpartition(".")[2]


class _Parser:
    def __init__(self) -> None:
        self.names: dict[str, _Named] = {}  # full name -> definition, within one schema

    def parse(self, schema: object, namespace: str) -> _Type:
        if isinstance(schema, str):
            return _Type(schema) if schema in _PRIMITIVES else self._lookup(schema, namespace)
        if isinstance(schema, list):
            return _Union("union", [self.parse(branch, namespace) for branch in schema])
        if not isinstance(schema, dict):
            raise InvalidSchema(f"Invalid Avro schema: {schema!r} is not a type")
        kind = schema["type"]
        if kind in {"record", "error", "enum", "fixed"}:
            return self._named(schema, kind, namespace)
        if kind in {"array", "map"}:
            return _Container(
                kind, self.parse(schema["items" if kind == "array" else "values"], namespace)
            )
        # A primitive with attributes, such as a logical type (ignored, see the module docstring),
        # or a named type referenced or defined under "type".
        return self.parse(kind, namespace)

    def _lookup(self, name: str, namespace: str) -> _Named:
        found = self.names.get(_full_name(name, namespace)) or self.names.get(name)
        if found is None:
            raise InvalidSchema(f"Invalid Avro schema: unknown type {name!r}")
        return found

    def _named(self, schema: dict[str, Any], kind: str, namespace: str) -> _Named:
        name = _full_name(schema["name"], schema.get("namespace", namespace))
        own_namespace = name.rpartition(".")[0]  # the enclosing namespace of nested definitions
        aliases = frozenset(_full_name(alias, own_namespace) for alias in schema.get("aliases", []))
        node: _Named
        if kind == "enum":
            node = _Enum(kind, name, aliases, tuple(schema["symbols"]), schema.get("default"))
        elif kind == "fixed":
            node = _Fixed(kind, name, aliases, int(schema["size"]))
        else:
            node = _Record("record", name, aliases)
        self.names[name] = node  # before the fields, so that they may refer to it
        if isinstance(node, _Record):
            node.fields = [
                _Field(
                    name=spec["name"],
                    type=self.parse(spec["type"], own_namespace),
                    aliases=tuple(spec.get("aliases", [])),
                    has_default="default" in spec,
                )
                for spec in schema["fields"]
            ]
        return node


# --- The check proper. A problem is (location relative to the pair compared, message). ---

_Problem = tuple[str, str]


def _format(problems: list[_Problem]) -> list[str]:
    reasons = (f"/{location}: {message}" if location else message for location, message in problems)
    return list(dict.fromkeys(reasons))


def _at(segment: str, problems: list[_Problem]) -> list[_Problem]:
    return [(f"{segment}/{location}" if location else segment, msg) for location, msg in problems]


def _describe(node: _Type) -> str:
    return f"{node.type} '{node.name}'" if isinstance(node, _Named) else f"'{node.type}'"


def _names_match(reader: _Named, writer: _Named) -> bool:
    return _short_name(reader.name) == _short_name(writer.name) or writer.name in reader.aliases


def _same_kind(reader: _Type, writer: _Type) -> bool:
    """Whether ``writer`` data would resolve to the union branch ``reader`` (by type and name)."""
    if reader.type != writer.type:
        return False
    return not isinstance(reader, _Named) or (
        isinstance(writer, _Named) and _names_match(reader, writer)
    )


class _Checker:
    def __init__(self) -> None:
        # Results by (reader, writer) node pair. A pair under comparison maps to [] meanwhile, so a
        # recursive type met again inside itself is assumed compatible: any problem it has is
        # reported where its comparison started.
        self._memo: dict[tuple[_Type, _Type], list[_Problem]] = {}

    def reasons(self, reader: _Type, writer: _Type) -> list[str]:
        try:
            return _format(self.problems(reader, writer))
        except RecursionError:
            raise InvalidSchema(_TOO_DEEP) from None

    def problems(self, reader: _Type, writer: _Type) -> list[_Problem]:
        key = (reader, writer)
        if key not in self._memo:
            self._memo[key] = []
            self._memo[key] = self._compare(reader, writer)[:MAX_REASONS]
        return self._memo[key]

    def _compare(self, reader: _Type, writer: _Type) -> list[_Problem]:
        if isinstance(writer, _Union):
            return [p for branch in writer.branches for p in self.problems(reader, branch)]
        if isinstance(reader, _Union):
            return self._reader_union(reader, writer)
        if reader.type == writer.type:
            return self._same_type(reader, writer)
        if writer.type in _PROMOTIONS.get(reader.type, ()):
            return []
        return [
            ("", f"reader type {_describe(reader)} cannot read writer type {_describe(writer)}")
        ]

    def _same_type(self, reader: _Type, writer: _Type) -> list[_Problem]:
        if isinstance(reader, _Container) and isinstance(writer, _Container):
            segment = "items" if reader.type == "array" else "values"
            return _at(segment, self.problems(reader.child, writer.child))
        if isinstance(reader, _Named) and isinstance(writer, _Named):
            return self._named(reader, writer)
        return []  # the same primitive type

    def _named(self, reader: _Named, writer: _Named) -> list[_Problem]:
        if not _names_match(reader, writer):
            message = f"reader name '{reader.name}' does not match writer name '{writer.name}'"
            return [("name", f"{message} nor any reader alias")]
        if isinstance(reader, _Record) and isinstance(writer, _Record):
            return self._fields(reader, writer)
        if isinstance(reader, _Enum) and isinstance(writer, _Enum):
            return _enum_symbols(reader, writer)
        if isinstance(reader, _Fixed) and isinstance(writer, _Fixed):
            return _fixed_size(reader, writer)
        return []  # unreachable: named types of the same kind are of the same class

    def _reader_union(self, reader: _Union, writer: _Type) -> list[_Problem]:
        candidates: list[list[_Problem]] = []
        for branch in reader.branches:
            found = self.problems(branch, writer)
            if not found:
                return []
            if _same_kind(branch, writer):
                candidates.append(found)
        if len(candidates) == 1:  # the branch the writer's data would go to: say why it fails
            return candidates[0]
        return [("", f"no branch of the reader union can read writer type {_describe(writer)}")]

    def _fields(self, reader: _Record, writer: _Record) -> list[_Problem]:
        writer_fields = {f.name: f for f in writer.fields}
        found: list[_Problem] = []
        for reader_field in reader.fields:
            names = (reader_field.name, *reader_field.aliases)
            match = next((writer_fields[n] for n in names if n in writer_fields), None)
            if match is not None:
                nested = self.problems(reader_field.type, match.type)
                found += _at(f"fields/{reader_field.name}", nested)
            elif not reader_field.has_default:
                message = (
                    f"field '{reader_field.name}' has no default in the reader"
                    " and is missing from the writer"
                )
                found.append(("", message))
        return found


def _enum_symbols(reader: _Enum, writer: _Enum) -> list[_Problem]:
    missing = [symbol for symbol in writer.symbols if symbol not in reader.symbols]
    if not missing or reader.default in reader.symbols:
        return []
    listed = ", ".join(f"'{symbol}'" for symbol in missing)
    return [("symbols", f"reader enum lacks writer symbols {listed} and has no default symbol")]


def _fixed_size(reader: _Fixed, writer: _Fixed) -> list[_Problem]:
    if reader.size == writer.size:
        return []
    return [
        ("size", f"reader fixed size {reader.size} differs from writer fixed size {writer.size}")
    ]
