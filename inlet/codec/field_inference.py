"""Example records into proposed connector fields: "start from an example".

The body is read by ``bodies.parse_body``, as the gateway reads an ingest body (JSON object or
array, NDJSON, CSV, gzip), and every value is judged by the types the codec decodes it into
(``_record_types.scalar_type``), strictly for JSON and laxly for CSV cells, as the codec does. So
the proposal is one the examples themselves pass, except where a field's values have no type in
common (then it is a string, and a note says so).

The inference table, per field, over every record:

* ``true``/``false`` (CSV: ``true``/``false`` in any case) → ``boolean``
* JSON integers (CSV: ``-?(0|[1-9][0-9]*)``) → ``integer``; outside Avro's long → ``decimal``
  with scale 0 (``float`` beyond 38 digits)
* numbers with a fraction or exponent (JSON numbers; CSV cells) → ``float``, unless one of them
  is written with a trailing zero after the point (``19.90``, ``5.00``): a float's shortest text
  never ends so, so the sender writes a fixed number of places → ``decimal``
* strings holding a number with a point (``"19.90"``, ``"-0.5"``): a sender that quotes a number
  wants it exact → ``decimal``; with JSON numbers in the same field, still ``decimal``
* for decimals, scale = the most places seen, precision = the most digits seen before the point
  plus the scale, at least ``DECIMAL_PRECISION_FLOOR`` (18, what a 64-bit integer holds) so that
  larger amounts than the examples' fit too, at most 38
* strings: RFC 3339 with an offset → ``datetime``; ``YYYY-MM-DD`` → ``date``; a time of day
  without an offset → ``time``; the canonical 8-4-4-4-12 hex form → ``uuid``; anything else
  (integers in quotes too: ids, zip codes) → ``string``. Different kinds of strings → ``string``
* JSON arrays (CSV: a cell holding a JSON array) → ``array``, items typed as above from every
  item (integers and fractions → ``float``: an item cannot be a decimal); JSON objects (CSV: a
  cell holding a JSON object) → ``object`` with its keys as nested fields, inferred the same way
* ``nullable`` when any record lacks the field, has it null (CSV: an empty cell), or, for a
  nested field, any occurrence of its object lacks it
* enums are never guessed (any string field could be one).

Names are kept as given, in the order they first appear. A key that cannot name a field (see
``model/fields.py``), one that collides with an earlier one after Avro mapping, an object with no
keys, an array whose items are null, arrays or objects, and objects nested deeper than
``MAX_NESTING_DEPTH`` are left out, each with a note (``notes``: the key's dotted path, why).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import msgspec

from inlet.codec._record_types import scalar_type
from inlet.codec.bodies import CsvRecords, RecordBatch, parse_body
from inlet.errors import InletError
from inlet.model.fields import (
    MAX_DECIMAL_PRECISION,
    MAX_NESTING_DEPTH,
    FieldSpec,
    ItemType,
    avro_name,
    field_name_problem,
)

# A paste, not a data set: bounded so that inferring never costs a request much.
MAX_EXAMPLE_BYTES: Final = 1024 * 1024
MAX_EXAMPLE_RECORDS: Final = 1000
DECIMAL_PRECISION_FLOOR: Final = 18

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# Numbers decoded exact: a Decimal keeps the text's places (19.90 stays 19.90).
_JSON: Final = msgspec.json.Decoder(float_hook=Decimal)
_CSV_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
_CSV_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")  # "007": a code
_DECIMAL_TEXT = re.compile(r"-?[0-9]+\.[0-9]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_TEXT_TYPES: Final = ("datetime", "date", "time")
_STRINGS: Final = frozenset(
    {"string", "datetime", "date", "time", "uuid", "decimal_text", "integer_text"}
)
_NUMBERS: Final = frozenset({"integer", "number"})
# Kinds of value that are field (and item) types of the same name.
_SAME_NAMED: Final[dict[str, ItemType]] = {
    "boolean": "boolean",
    "datetime": "datetime",
    "date": "date",
    "time": "time",
    "uuid": "uuid",
    "string": "string",
}


class InvalidExample(InletError):
    """The example holds a record that is not an object: there is no field to propose."""

    error_code = 42252


class FieldNote(msgspec.Struct, frozen=True):
    """What was left out or guessed: the key's dotted path in the records, and why."""

    field: str
    reason: str


class InferredFields(msgspec.Struct, frozen=True):
    """The proposed fields, in the admin API's format, and what was left out or guessed."""

    fields: list[FieldSpec]
    notes: list[FieldNote]


@dataclass
class _Seen:
    """What one key's values were, over every record (or object) that had the key."""

    occurrences: int = 0  # values seen, null included
    null: bool = False
    kinds: set[str] = field(default_factory=set)
    int_digits: int = 0  # of numbers and decimal strings: the most digits before the point
    places: int = 0  # the most digits after it
    fixed: bool = False  # a number written with a trailing zero after the point
    exponent: bool = False
    wide: bool = False  # an integer outside Avro's long
    items: _Seen | None = None  # of arrays: every item
    children: _Level | None = None  # of objects


@dataclass
class _Level:
    count: int = 0  # objects seen at this level
    keys: dict[str, _Seen] = field(default_factory=dict)  # in order of first appearance


def infer_fields(
    body: bytes, content_type: str | None, content_encoding: str | None = None
) -> InferredFields:
    """Propose fields for the records of an example body (see the module docstring).

    Raises the body errors of ``bodies.py`` (at most ``MAX_EXAMPLE_BYTES`` and
    ``MAX_EXAMPLE_RECORDS``), and ``InvalidExample`` for a record that is not an object.
    """
    batch = parse_body(
        body,
        content_type,
        content_encoding,
        max_body_bytes=MAX_EXAMPLE_BYTES,
        max_record_bytes=MAX_EXAMPLE_BYTES,
        max_records=MAX_EXAMPLE_RECORDS,
    )
    return infer_from_batch(batch)


def infer_from_batch(batch: RecordBatch) -> InferredFields:
    """Propose fields for the records of a parsed body."""
    top = _Level()
    if isinstance(batch, CsvRecords):
        for row in batch.rows:
            _observe_object(top, row, csv=True, depth=0)
        # Every column is a key, though a column empty in every row was never seen.
        for name in batch.header:
            top.keys.setdefault(name, _Seen())
    else:
        for index, raw in enumerate(batch.records):
            record = _JSON.decode(raw)
            if not isinstance(record, dict):
                where = batch.location(index)
                line = "" if where.line is None else f" (line {where.line})"
                raise InvalidExample(f"record {index}{line} is not an object")
            _observe_object(top, record, csv=False, depth=0)
    notes: list[FieldNote] = []
    fields = _level_fields(top, "", notes, cells=isinstance(batch, CsvRecords))
    if not fields:
        notes.append(FieldNote(field="", reason="no field found: the records hold no keys"))
    return InferredFields(fields, notes)


def _observe_object(level: _Level, record: dict[str, Any], *, csv: bool, depth: int) -> None:
    level.count += 1
    for key, value in record.items():
        seen = level.keys.setdefault(key, _Seen())
        seen.occurrences += 1
        if csv:
            _observe_cell(seen, value, depth)
        else:
            _observe(seen, value, depth)


def _observe_cell(seen: _Seen, cell: str, depth: int) -> None:
    # A CSV cell is text; the codec reads an array or object field's cell as JSON.
    if cell[:1] in {"[", "{"}:
        try:
            value = _JSON.decode(cell)
        except (msgspec.DecodeError, RecursionError):
            value = None
        if isinstance(value, list | dict):
            _observe(seen, value, depth)
            return
    if cell.lower() in {"true", "false"}:
        seen.kinds.add("boolean")
    elif _CSV_INTEGER.fullmatch(cell):
        _observe(seen, int(cell), depth)
    elif _CSV_NUMBER.fullmatch(cell):
        _observe(seen, Decimal(cell), depth)
    else:
        _observe_text(seen, cell)


def _observe(seen: _Seen, value: Any, depth: int) -> None:
    if value is None:
        seen.null = True
    elif isinstance(value, bool):
        seen.kinds.add("boolean")
    elif isinstance(value, int):
        seen.kinds.add("integer")
        seen.wide |= not _INT64_MIN <= value <= _INT64_MAX
        _count_digits(seen, Decimal(value))
    elif isinstance(value, Decimal):
        seen.kinds.add("number")
        text = str(value)
        seen.exponent |= "E" in text
        # "5.0" is how Python (and others) write an integral float; "19.90" is written so
        seen.fixed |= "E" not in text and text.endswith("0") and not text.endswith(".0")
        _count_digits(seen, value)
    elif isinstance(value, str):
        _observe_text(seen, value)
    elif isinstance(value, list):
        seen.kinds.add("array")
        items = seen.items = seen.items or _Seen()
        for item in value:
            items.occurrences += 1
            _observe(items, item, depth)
    elif isinstance(value, dict):
        seen.kinds.add("object")
        # At depth d (0: a record's own keys) an object is at level d + 1; deeper than the limit
        # it is left out (a note says so), and not looked into.
        if depth < MAX_NESTING_DEPTH:
            seen.children = seen.children or _Level()
            _observe_object(seen.children, value, csv=False, depth=depth + 1)


def _observe_text(seen: _Seen, text: str) -> None:
    for type_name in _TEXT_TYPES:
        if _decodes(text, scalar_type(type_name)):
            seen.kinds.add(type_name)
            return
    if _UUID.fullmatch(text):
        seen.kinds.add("uuid")
    elif _DECIMAL_TEXT.fullmatch(text):
        seen.kinds.add("decimal_text")
        _count_digits(seen, Decimal(text))
    elif _CSV_INTEGER.fullmatch(text):  # alone a string (an id); beside "19.90" a decimal
        seen.kinds.add("integer_text")
        _count_digits(seen, Decimal(text))
    else:
        seen.kinds.add("string")


def _decodes(text: str, value_type: Any) -> bool:
    try:
        msgspec.convert(text, value_type)
    except msgspec.ValidationError:
        return False
    return True


def _count_digits(seen: _Seen, value: Decimal) -> None:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite: parsed from digits
    seen.places = max(seen.places, -exponent)
    if value:
        seen.int_digits = max(seen.int_digits, value.adjusted() + 1)


def _level_fields(
    level: _Level, path: str, notes: list[FieldNote], *, cells: bool = False
) -> list[FieldSpec]:
    # cells: the values are CSV cells, every one of which a string field takes
    fields: list[FieldSpec] = []
    taken: dict[str, str] = {}  # lower-cased Avro name -> the key that has it
    for key, seen in level.keys.items():
        at = f"{path}.{key}" if path else key
        problem = field_name_problem(key)
        if problem is None:
            other = taken.get(avro_name(key).lower())
            if other is not None:
                problem = f"collides with {other!r} (the same Avro name, ignoring case)"
        if problem is not None:
            notes.append(FieldNote(field=at, reason=f"left out: the name {problem}"))
            continue
        nullable = seen.null or seen.occurrences < level.count
        spec = _field(key, seen, at, notes, nullable=nullable, cells=cells)
        if spec is not None:
            taken[avro_name(key).lower()] = key
            fields.append(spec)
    return fields


def _field(
    name: str,
    seen: _Seen,
    at: str,
    notes: list[FieldNote],
    *,
    nullable: bool,
    cells: bool,
) -> FieldSpec | None:
    kinds = seen.kinds
    found: FieldSpec | str  # the field, or why it is left out
    if not kinds:
        notes.append(FieldNote(field=at, reason="only null or empty values: proposed as a string"))
        found, nullable = FieldSpec(name=name, type="string"), True
    elif kinds == {"object"}:
        found = _object_field(name, seen, at, notes)
    elif kinds == {"array"}:
        found = _array_field(name, seen.items, at, notes)
    else:
        found = _scalar(name, seen) or _mixed(name, kinds, at, notes, cells=cells)
    if isinstance(found, str):
        notes.append(FieldNote(field=at, reason=f"left out: {found}"))
        return None
    return msgspec.structs.replace(found, nullable=nullable)


def _object_field(name: str, seen: _Seen, at: str, notes: list[FieldNote]) -> FieldSpec | str:
    if seen.children is None:
        return f"objects nest at most {MAX_NESTING_DEPTH} levels"
    nested = _level_fields(seen.children, at, notes)
    if not nested:
        return "an object with no usable key"
    return FieldSpec(name=name, type="object", fields=nested)


def _mixed(
    name: str, kinds: set[str], at: str, notes: list[FieldNote], *, cells: bool
) -> FieldSpec:
    reason = f"values of several kinds ({_kind_words(kinds)}): proposed as a string"
    if not cells and not kinds <= _STRINGS:
        reason += "; a record whose value is not a string is refused until the type is edited"
    notes.append(FieldNote(field=at, reason=reason))
    return FieldSpec(name=name, type="string")


def _scalar(name: str, seen: _Seen) -> FieldSpec | None:
    """The one scalar type every value of ``seen`` is, or None."""
    kinds = seen.kinds
    if len(kinds) == 1 and next(iter(kinds)) in _SAME_NAMED:
        return FieldSpec(name=name, type=_SAME_NAMED[next(iter(kinds))])
    if "decimal_text" in kinds and kinds <= _NUMBERS | {"decimal_text", "integer_text"}:
        kinds = (kinds - {"integer_text"}) | {"decimal_text"}
    if kinds <= _NUMBERS | {"decimal_text"}:
        exact = "decimal_text" in kinds or seen.wide or (seen.fixed and not seen.exponent)
        if kinds == {"integer"} and not seen.wide:
            return FieldSpec(name=name, type="integer")
        if exact and seen.int_digits + seen.places <= MAX_DECIMAL_PRECISION:
            precision = max(seen.int_digits + seen.places, DECIMAL_PRECISION_FLOOR)
            precision = min(precision, MAX_DECIMAL_PRECISION)
            return FieldSpec(name=name, type="decimal", precision=precision, scale=seen.places)
        if "decimal_text" not in kinds:
            return FieldSpec(name=name, type="float")
    if kinds <= _STRINGS:
        return FieldSpec(name=name, type="string")
    return None


def _array_field(
    name: str, items: _Seen | None, at: str, notes: list[FieldNote]
) -> FieldSpec | str:
    item_type: ItemType | None = None
    kinds = set() if items is None else items.kinds
    if items is not None and items.null:
        return "an array item is null (items cannot be)"
    if kinds & {"array", "object"}:
        return "array items must be scalars"
    if not kinds:
        notes.append(FieldNote(field=at, reason="only empty arrays: items proposed as strings"))
        item_type = "string"
    elif kinds <= _NUMBERS:  # an item cannot be a decimal
        wide = items is not None and items.wide
        item_type = "integer" if kinds == {"integer"} and not wide else "float"
    elif len(kinds) == 1 and next(iter(kinds)) in _SAME_NAMED:
        item_type = _SAME_NAMED[next(iter(kinds))]
    elif kinds <= _STRINGS:
        item_type = "string"
    else:
        return f"items of several kinds ({_kind_words(kinds)})"
    return FieldSpec(name=name, type="array", items=item_type)


def _kind_words(kinds: set[str]) -> str:
    return ", ".join(sorted(kind.replace("_text", " string") for kind in kinds))
