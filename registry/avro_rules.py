"""The Avro specification's rules for schemas, checked as Apache Avro Java's parser checks them.

Confluent Schema Registry parses every schema with Avro Java's ``Schema.Parser`` (names validated,
defaults validated for new schemas). A schema it refuses cannot be read by Java consumers nor by
Confluent's tooling, and fastavro accepts many of them, so the registry checks these rules itself
before fastavro parses the schema:

* names of records, enums, fixed and fields, and enum symbols, match ``[A-Za-z_][A-Za-z0-9_]*``; a
  namespace is such names joined by dots (or empty); a named type is not named after a primitive
  and not defined twice; a record's field names and an enum's symbols are distinct;
* a union does not directly contain a union, nor two branches of the same type (two arrays, two
  maps, two ``long``, two definitions of one name);
* an enum's ``default`` is one of its symbols; a fixed ``size`` is a non-negative int;
  a field's ``order`` is ``ascending``, ``descending`` or ``ignore``;
* a field's ``default`` matches its type as Avro Java's ``isValidDefault`` decides: a union's
  default matches its first branch (Avro 1.11, the Avro used by Confluent 7), numbers must fit
  (an int default is an integer in 32 bits), a record's default gives every field without one.

The spec names letters and digits in ASCII; Avro Java also accepts other Unicode letters, which
other languages' Avro libraries refuse, so the registry keeps to the spec (README, "Registry").
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from inlet.errors import InvalidSchema

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# What Java's ``Double.valueOf`` reads: Avro Java takes a float or double default given as text.
_DOUBLE_TEXT = re.compile(
    r"[+-]?(NaN|Infinity|([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?[fFdD]?)"
)
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED = frozenset({"record", "error", "enum", "fixed"})
_ORDERS = frozenset({"ascending", "descending", "ignore"})
_INT_RANGE = range(-(2**31), 2**31)
_LONG_RANGE = range(-(2**63), 2**63)
_FULL = " full name"  # the key a definition's full name is kept under (no schema key has a space)


def check_avro(schema: object, references: Sequence[object] = ()) -> None:
    """Raise ``InvalidSchema`` with the reason when ``schema`` breaks one of the rules above.

    ``references`` are the schemas the schema's references resolve to, dependencies first: the
    named types they define may be used by the schema (and by each later reference).
    """
    rules = _Rules()
    try:
        for reference in references:
            rules.schema(reference, "")
        rules.schema(schema, "")
    except (KeyError, TypeError, AttributeError) as exc:  # a malformed part met by a default
        raise _fail(f"malformed schema: {exc!r}") from exc
    except RecursionError:
        raise InvalidSchema("Invalid schema: nested too deeply") from None


def _fail(reason: str) -> InvalidSchema:
    return InvalidSchema(f"Invalid schema: {reason}")


def _full_name(name: str, namespace: str) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _defined_name(node: dict[str, Any], namespace: str) -> str:
    """The full name of a named type's definition, met inline or found by name."""
    if _FULL in node:
        return str(node[_FULL])
    space = node.get("namespace")
    return _full_name(node["name"], space if isinstance(space, str) else namespace)


def _check_name(name: object, what: str) -> str:
    if not isinstance(name, str):
        raise _fail(f"{what} name {name!r} is not a string")
    if not _NAME.fullmatch(name):
        raise _fail(f"Illegal {what} name {name!r}: a name must match [A-Za-z_][A-Za-z0-9_]*")
    return name


def _check_full_name(full: str) -> None:
    *space, short = full.split(".")
    if space and space != [""]:
        for part in space:
            if not _NAME.fullmatch(part):
                raise _fail(
                    f"Illegal namespace in {full!r}: each of its dot-separated parts must match "
                    "[A-Za-z_][A-Za-z0-9_]*"
                )
    _check_name(short, "type")
    if short in _PRIMITIVES:
        raise _fail(f"Schemas may not be named after primitives: {full}")


class _Rules:
    def __init__(self) -> None:
        self.names: dict[str, dict[str, Any]] = {}  # full name -> definition

    def schema(self, node: object, namespace: str) -> None:
        if isinstance(node, str):
            self.resolve(node, namespace)
        elif isinstance(node, list):
            self._union(node, namespace)
        elif isinstance(node, dict):
            self._object(node, namespace)
        else:
            raise _fail(f"{node!r} is not a schema")

    def resolve(self, name: str, namespace: str) -> object:
        """What a type named ``name`` stands for: a primitive name or a named definition."""
        if name in _PRIMITIVES:
            return name
        found = self.names.get(_full_name(name, namespace)) or self.names.get(name)
        if found is None:
            raise _fail(f"Undefined name: {name!r}")
        return found

    def _union(self, branches: list[object], namespace: str) -> None:
        seen: set[str] = set()
        for branch in branches:
            if isinstance(branch, list):
                raise _fail(f"Nested union: {branches!r}: a union may not contain a union")
            self.schema(branch, namespace)
            key = self._union_key(branch, namespace)
            if key in seen:
                raise _fail(f"Duplicate in union: {key} (a union holds one branch per type)")
            seen.add(key)

    def _union_key(self, branch: object, namespace: str) -> str:
        # Avro Java tells union branches apart by full name: the type for unnamed types.
        target = self.resolve(branch, namespace) if isinstance(branch, str) else branch
        if isinstance(target, str):
            return target
        if isinstance(target, dict):
            kind = target["type"]
            if kind in _NAMED:
                return _defined_name(target, namespace)
            if isinstance(kind, str) and kind not in _PRIMITIVES and kind not in ("array", "map"):
                return self._union_key(kind, namespace)
            return str(kind)
        return "union"

    def _object(self, node: dict[str, Any], namespace: str) -> None:
        kind = node.get("type")
        if not isinstance(kind, str):
            raise _fail(f'No type: {node!r} ("type" must name a type)')
        if kind in _NAMED:
            self._named(node, kind, namespace)
        elif kind == "array":
            if "items" not in node:
                raise _fail(f"Array has no items type: {node!r}")
            self.schema(node["items"], namespace)
        elif kind == "map":
            if "values" not in node:
                raise _fail(f"Map has no values type: {node!r}")
            self.schema(node["values"], namespace)
        else:
            self.resolve(kind, namespace)  # a primitive (perhaps a logical type) or a named type

    def _named(self, node: dict[str, Any], kind: str, namespace: str) -> None:
        if not isinstance(node.get("name"), str):
            raise _fail(f"No name in schema: {node!r}")
        full = _defined_name(node, namespace)
        _check_full_name(full)
        if full in self.names:
            raise _fail(f"Can't redefine: {full}")
        own_namespace = full.rpartition(".")[0]
        self.names[full] = {**node, _FULL: full}  # what a later reference by name finds
        aliases = node.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise _fail(f"aliases of {full} must be an array of names")
        for alias in aliases:
            _check_full_name(_full_name(alias, own_namespace))
        if kind == "enum":
            _enum(node, full)
        elif kind == "fixed":
            size = node.get("size")
            if not isinstance(size, int) or isinstance(size, bool) or size not in _INT_RANGE:
                raise _fail(f"Invalid or no size: {node!r}")
            if size < 0:
                raise _fail(f"Invalid fixed size: {size}")
        else:
            self._fields(node, full, own_namespace)

    def _fields(self, node: dict[str, Any], full: str, namespace: str) -> None:
        fields = node.get("fields")
        if not isinstance(fields, list):
            raise _fail(f"Record has no fields: {full}")
        names: set[str] = set()
        for spec in fields:
            if not isinstance(spec, dict):
                raise _fail(f"a field of {full} is not an object: {spec!r}")
            name = _check_name(spec.get("name"), "field")
            if name in names:
                raise _fail(f"Duplicate field {name} in record {full}")
            names.add(name)
            if "type" not in spec:
                raise _fail(f"No field type: {spec!r}")
            self.schema(spec["type"], namespace)
            order = spec.get("order", "ascending")
            if order not in _ORDERS:
                raise _fail(f"Invalid order {order!r} of field {name} in record {full}")
            if "default" in spec and not self.valid_default(
                spec["type"], spec["default"], namespace
            ):
                default, of = json.dumps(spec["default"]), json.dumps(spec["type"])
                raise _fail(f"Invalid default for field {name}: {default} not a {of}")

    def valid_default(self, schema: object, value: object, namespace: str) -> bool:
        """Whether ``value`` is a valid default for ``schema`` (Avro Java's ``isValidDefault``)."""
        if isinstance(schema, str):
            schema = self.resolve(schema, namespace)
        if isinstance(schema, list):
            return bool(schema) and self.valid_default(schema[0], value, namespace)
        if isinstance(schema, dict):
            kind = schema["type"]
            if kind in _NAMED:
                namespace = _defined_name(schema, namespace).rpartition(".")[0]
            return self._valid_default_of(kind, schema, value, namespace)
        return self._valid_default_of(str(schema), {}, value, namespace)

    def _valid_default_of(
        self, kind: object, schema: dict[str, Any], value: object, namespace: str
    ) -> bool:
        if not isinstance(kind, str):
            return False
        if kind in _SCALAR_DEFAULTS:
            return _SCALAR_DEFAULTS[kind](value)
        if kind == "array":
            items = schema["items"]
            return isinstance(value, list) and all(
                self.valid_default(items, v, namespace) for v in value
            )
        if kind == "map":
            values = schema["values"]
            return isinstance(value, dict) and all(
                self.valid_default(values, v, namespace) for v in value.values()
            )
        if kind in ("record", "error"):
            return isinstance(value, dict) and all(
                isinstance(f, dict)
                and (f["name"] in value or "default" in f)
                and self.valid_default(f["type"], value.get(f["name"], f.get("default")), namespace)
                for f in schema["fields"]
            )
        return self.valid_default(kind, value, namespace)  # a named type under "type"


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_double(value: object) -> bool:
    if isinstance(value, str):
        return bool(_DOUBLE_TEXT.fullmatch(value))
    return isinstance(value, int | float) and not isinstance(value, bool)


_SCALAR_DEFAULTS: dict[str, Callable[[object], bool]] = {
    "string": lambda v: isinstance(v, str),
    "bytes": lambda v: isinstance(v, str),
    "enum": lambda v: isinstance(v, str),  # any text, as Avro Java (the symbols are not checked)
    "fixed": lambda v: isinstance(v, str),
    "int": lambda v: _is_integer(v) and v in _INT_RANGE,
    "long": lambda v: _is_integer(v) and v in _LONG_RANGE,
    "float": _is_double,
    "double": _is_double,
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _enum(node: dict[str, Any], full: str) -> None:
    symbols = node.get("symbols")
    if not isinstance(symbols, list):
        raise _fail(f"Enum has no symbols: {full}")
    for symbol in symbols:
        _check_name(symbol, "enum symbol")
    if len(set(symbols)) != len(symbols):
        duplicate = next(s for s in symbols if symbols.count(s) > 1)
        raise _fail(f"Duplicate enum symbol: {duplicate} in enum {full}")
    if "default" in node and node["default"] not in symbols:
        raise _fail(
            f"The Enum Default: {node['default']!r} is not in the enum symbol set of {full}"
        )
