"""The slow path: every error of one record the fast path refused, and the keys nobody declared.

The fast path is one Struct decode per record, which stops at the first problem and drops unknown
keys silently. For a refused record, this module walks it level by level: each field's value is
checked on its own (with the same msgspec types), so one pass finds every problem of the record,
and each error knows its field without parsing dotted paths (a user's name may hold dots).

Values come through a ``Reader``: JSON records keep each value as ``msgspec.Raw`` (decoded with the
field's own decoder, so a decimal stays exact); CSV rows hold strings, converted laxly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import msgspec

from inlet.codec._decimals import unscaled_decimal
from inlet.codec._record_types import FieldPlan, LevelPlan
from inlet.records import RecordError, RecordErrorCode

_RAW_OBJECT: Final[msgspec.json.Decoder[dict[str, msgspec.Raw] | None]] = msgspec.json.Decoder(
    dict[str, msgspec.Raw] | None
)
_DECODE_ERRORS: Final = (msgspec.DecodeError, UnicodeDecodeError)  # ValidationError included

# What a reason may quote of a value, and how long a reason may be: bounded, so a record's
# reasons stay small beside the record itself (the rejected record keeps both).
QUOTE_CHARS: Final = 64
REASON_CHARS: Final = 500
_LONG_QUOTE: Final = re.compile(f"'[^']{{{QUOTE_CHARS + 1},}}'")
_AT = re.compile(r" - at `(\$[^`]*)`$")
_PATH_PART = re.compile(r"\[(\d+|\.\.\.)\]|\.([^.\[]+)")
_EXPECTED = re.compile(r"Expected `([^`]+)`, got `([^`]+)`$")
_NAMED = re.compile(r"Object (missing required|contains unknown) field `(.*)`$")
_TYPE_WORDS: Final = {
    "int": "integer",
    "str": "string",
    "bool": "boolean",
    "float": "number",
    "array": "array",
    "object": "object",
    "null": "null",
}


class Reader(Protocol):
    """How to look at the values of one record's format."""

    lax: bool  # values arrive as text (CSV): a type mismatch is a badly written value

    def as_object(self, value: Any) -> dict[str, Any] | None:
        """The object's members, None for null; ValidationError if it is neither."""
        ...

    def check(self, plan: FieldPlan, value: Any) -> Any:
        """The value as the field's type, None for null; msgspec errors if it is neither."""
        ...


class JsonReader:
    lax = False

    def as_object(self, value: Any) -> dict[str, Any] | None:
        return _RAW_OBJECT.decode(value)

    def check(self, plan: FieldPlan, value: Any) -> Any:
        return plan.json_decoder.decode(value)


class CsvReader:
    lax = True

    def as_object(self, value: Any) -> dict[str, Any] | None:
        return msgspec.convert(value, dict[str, Any] | None)

    def check(self, plan: FieldPlan, value: Any) -> Any:
        return msgspec.convert(value, plan.optional_type, strict=False)


JSON_READER: Final = JsonReader()
CSV_READER: Final = CsvReader()


@dataclass
class _Found:
    index: int
    line: int | None
    reject_unknown: bool
    errors: list[RecordError] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def add(
        self, path: tuple[str, ...], names: tuple[str, ...], code: RecordErrorCode, message: str
    ) -> None:
        pointer = "".join(f"/{_escape(part)}" for part in (str(self.index), *path))
        field_name = ".".join(names) or None
        message = bounded_reason(message)
        self.errors.append(RecordError(self.index, pointer, field_name, code, message, self.line))


def record_errors(
    level: LevelPlan,
    record: Any,
    reader: Reader,
    *,
    index: int,
    line: int | None,
    reject_unknown: bool,
) -> tuple[list[RecordError], list[str]]:
    """Every error of ``record``, and the dotted paths of its keys the schema does not know."""
    found = _Found(index, line, reject_unknown)
    try:
        items = reader.as_object(record)
    except _DECODE_ERRORS as exc:
        code, message, _ = parse_validation_error(str(exc))
        found.add((), (), code, message)
        return found.errors, found.unknown
    if items is None:
        found.add((), (), RecordErrorCode.WRONG_TYPE, "expected object, got null")
    else:
        _check_level(level, items, reader, (), found)
    return found.errors, found.unknown


def unknown_fields(level: LevelPlan, record: Any, reader: Reader) -> list[str]:
    """The dotted paths of the keys of a valid ``record`` that the schema does not know."""
    found: list[str] = []
    _collect_unknown(level, reader.as_object(record) or {}, reader, (), found)
    return found


def top_level_unknown_keys(level: LevelPlan, record: Any, reader: Reader) -> set[str]:
    """The record's own keys the schema does not know; empty if it is not an object."""
    try:
        items = reader.as_object(record)
    except _DECODE_ERRORS:
        return set()
    return set() if items is None else items.keys() - level.names


def parse_validation_error(message: str) -> tuple[RecordErrorCode, str, tuple[str, ...]]:
    """A msgspec error message as (code, message for a user, path).

    ``Expected `int`, got `str` - at `$[3].total``` gives wrong_type, "expected integer, got
    string" and ("3", "total"). msgspec writes the JSON (renamed) names in paths, which are the
    user's names, so none needs mapping back. A name holding "." or "[" would split wrongly, which
    is why the slow path only ever hands this the path inside one value (array indexes).
    """
    path: tuple[str, ...] = ()
    at = _AT.search(message)
    if at is not None:
        message = message[: at.start()]
        path = tuple(index or name for index, name in _PATH_PART.findall(at[1]))
    expected = _EXPECTED.match(message)
    if expected is not None:
        got = _type_words(expected[2])
        code = RecordErrorCode.NULL_NOT_ALLOWED if got == "null" else RecordErrorCode.WRONG_TYPE
        return code, f"expected {_type_words(expected[1])}, got {got}", path
    named = _NAMED.match(message)
    if named is not None:
        if named[1] == "missing required":
            return RecordErrorCode.MISSING_FIELD, "is required", (*path, named[2])
        return RecordErrorCode.UNKNOWN_FIELD, "is not a field of the schema", (*path, named[2])
    text = message.replace("`", "")
    return RecordErrorCode.INVALID_VALUE, text[:1].lower() + text[1:], path


def _check_level(
    level: LevelPlan, items: dict[str, Any], reader: Reader, path: tuple[str, ...], found: _Found
) -> None:
    # `path` holds field names only: arrays hold scalars, so no index leads to an object.
    for key in items:
        if key not in level.by_name:
            found.unknown.append(".".join((*path, key)))
            if found.reject_unknown:
                message = "is not a field of the schema"
                found.add((*path, key), (*path, key), RecordErrorCode.UNKNOWN_FIELD, message)
    for plan in level.fields:
        field_path = (*path, plan.name)
        if plan.name not in items:
            if not plan.spec.nullable:
                found.add(field_path, field_path, RecordErrorCode.MISSING_FIELD, "is required")
            continue
        if plan.level is not None:
            _check_object(plan, plan.level, items[plan.name], reader, path=field_path, found=found)
        else:
            _check_value(plan, items[plan.name], reader, field_path, found)


def _check_object(
    plan: FieldPlan,
    level: LevelPlan,
    value: Any,
    reader: Reader,
    *,
    path: tuple[str, ...],
    found: _Found,
) -> None:
    try:
        members = reader.as_object(value)
    except _DECODE_ERRORS as exc:
        code, message, _ = _value_problem(plan, value, exc, reader)
        found.add(path, path, code, message)
        return
    if members is None:
        if not plan.spec.nullable:
            found.add(path, path, RecordErrorCode.NULL_NOT_ALLOWED, "must not be null")
    else:
        _check_level(level, members, reader, path, found)


def _check_value(
    plan: FieldPlan, value: Any, reader: Reader, path: tuple[str, ...], found: _Found
) -> None:
    try:
        checked = reader.check(plan, value)
    except _DECODE_ERRORS as exc:
        code, message, inner = _value_problem(plan, value, exc, reader)
        found.add((*path, *inner), path, code, message)  # inner: an array item's index
        return
    if checked is None:
        if not plan.spec.nullable:
            found.add(path, path, RecordErrorCode.NULL_NOT_ALLOWED, "must not be null")
    elif plan.spec.type == "decimal":
        try:
            unscaled_decimal(checked, plan.spec.precision or 0, plan.spec.scale or 0)
        except ValueError as exc:
            found.add(path, path, RecordErrorCode.INVALID_VALUE, str(exc))


def _value_problem(
    plan: FieldPlan, value: Any, exc: Exception, reader: Reader
) -> tuple[RecordErrorCode, str, tuple[str, ...]]:
    code, message, inner = parse_validation_error(str(exc))
    if reader.lax and code is RecordErrorCode.WRONG_TYPE and message.endswith("got string"):
        # Every CSV cell is a string: the cell does not spell a value of the field's type.
        hint = plan.hint
        if plan.spec.type in {"array", "object"}:
            hint = f"must be a JSON {plan.spec.type}"  # written in the cell
        return RecordErrorCode.INVALID_VALUE, f"{hint} (got {quoted(value)})", inner
    if code is RecordErrorCode.INVALID_VALUE:
        return code, f"{plan.hint} ({message})", inner
    return code, message, inner


def _collect_unknown(
    level: LevelPlan,
    items: dict[str, Any],
    reader: Reader,
    names: tuple[str, ...],
    found: list[str],
) -> None:
    found.extend(".".join((*names, key)) for key in items.keys() - level.names)
    for name, nested_level in level.objects:
        nested = reader.as_object(items[name]) if name in items else None
        if nested:
            _collect_unknown(nested_level, nested, reader, (*names, name), found)


def quoted(value: object) -> str:
    """``repr(value)`` of at most ``QUOTE_CHARS`` of a string: reasons quote a slice, not a
    600 kB value (which would outgrow the rejected record's Kafka limit)."""
    if isinstance(value, str) and len(value) > QUOTE_CHARS:
        return f"{value[:QUOTE_CHARS]!r}… ({len(value):,} characters)"
    return repr(value)


def bounded_reason(message: str) -> str:
    """``message`` with its long quotes cut to ``QUOTE_CHARS``, and cut to ``REASON_CHARS`` in all:
    msgspec's own messages quote values too (an enum's)."""
    if len(message) <= REASON_CHARS:
        return message
    message = _LONG_QUOTE.sub(lambda m: f"{m[0][: QUOTE_CHARS + 1]}…'", message)
    return message if len(message) <= REASON_CHARS else message[: REASON_CHARS - 1] + "…"


def _type_words(types: str) -> str:
    words = [_TYPE_WORDS.get(name, name) for name in types.split(" | ")]
    if len(words) > 1 and "null" in words:
        words.remove("null")  # null is reported on its own (null_not_allowed)
    return " or ".join(words)


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")  # RFC 6901
