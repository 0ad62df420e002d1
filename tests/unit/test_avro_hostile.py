"""The C writer given hostile Python objects: memory-safe, and an answer that is true or an error.

Over HTTP the writer only ever sees what msgspec decoded; these are the values no decoder makes:
subclasses overriding what the writer reads, callbacks into Python (``__index__``, ``__float__``,
``__bool__``, ``utcoffset``, properties) that mutate the list being encoded, numbers out of range.
Each case either writes the value as it really is (the same bytes as the plain value) or raises a
Python exception; none may crash, read freed memory or wrap an integer into another value.
Without the sanitizers such a bug may pass silently; test_avro_sanitized.py runs this module again
against a build under AddressSanitizer + UBSan, where it cannot.
"""

from __future__ import annotations

import datetime as dt
import gc
import sys
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from inlet.codec._avro_native import Writer
from inlet.codec._avro_writer import MAX_PROGRAM_DEPTH, native_program, record_encoder

_astuple = msgspec.structs.astuple
_One = msgspec.defstruct("One", [("value", object)])
_UTC = dt.UTC


def writer_of(avro_type: object) -> Callable[[Any], bytes]:
    """The C writer of a record with one field, ``value``, of ``avro_type``."""
    schema = {"type": "record", "name": "R", "fields": [{"name": "value", "type": avro_type}]}
    return record_encoder(schema, b"", native=True)


def encode(avro_type: object, value: object) -> bytes:
    return writer_of(avro_type)(_One(value))


LONGS = {"type": "array", "items": "long"}
TIMESTAMP = {"type": "long", "logicalType": "timestamp-micros"}
DECIMAL = {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}
UUID = {"type": "string", "logicalType": "uuid"}


class Zone(dt.tzinfo):
    """A tzinfo of its subclasses' utcoffset."""

    def dst(self, _when: dt.datetime | None) -> None:
        return None

    def tzname(self, _when: dt.datetime | None) -> None:
        return None


# --- a list that changes while it is encoded ------------------------------------------------


class Shrinks:
    """An int whose conversion empties the list it is in (and frees that list's items)."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def __index__(self) -> int:
        del self.items[1:]  # frees the list's item array of a long list: realloc'd smaller
        return 1


def test_a_list_shrunk_while_encoded_is_an_error_not_a_read_of_freed_memory() -> None:
    # The reproduction: the writer read the list's size once, then its items from memory the
    # shrinking freed (a crash, or under ASan a heap-use-after-free).
    items: list[Any] = []
    items.extend([Shrinks(items), *range(10**6, 10**6 + 200)])
    with pytest.raises(RuntimeError, match="changed size"):
        encode(LONGS, items)


def test_a_list_emptied_while_encoded() -> None:
    items: list[Any] = []

    class Clears:
        def __index__(self) -> int:
            items.clear()
            return 1

    items.extend([Clears(), 2, 3])
    with pytest.raises(RuntimeError, match="changed size"):
        encode(LONGS, items)


def test_a_list_grown_while_encoded() -> None:
    items: list[Any] = []

    class Grows:
        def __index__(self) -> int:
            items.extend(range(1000))  # reallocates the item array
            return 1

    items.extend([Grows(), 2, 3])
    with pytest.raises(RuntimeError, match="changed size"):
        encode(LONGS, items)


def test_an_item_replaced_while_encoded_is_written_as_it_was_read() -> None:
    # The list drops its only reference to the item being encoded: the writer holds its own.
    items: list[Any] = []

    class Replaces:
        def __index__(self) -> int:
            items[0] = 5
            return 1

    items.extend([Replaces(), 2])
    assert encode(LONGS, items) == encode(LONGS, [1, 2])
    assert items == [5, 2]


def test_the_writers_own_copy_of_a_sequence_changed_through_gc() -> None:
    # A sequence that is not a list or tuple is copied into a new list, which gc still finds.
    class Finds:
        def __index__(self) -> int:
            for holder in gc.get_referrers(self):
                if isinstance(holder, list):
                    holder.clear()
            return 1

    class Sequence:
        def __init__(self, *items: object) -> None:
            self.items = items

        def __len__(self) -> int:
            return len(self.items)

        def __iter__(self) -> Iterator[object]:
            return iter(self.items)

    with pytest.raises(RuntimeError, match="changed size"):
        encode(LONGS, Sequence(Finds(), 2, 3))


@pytest.mark.parametrize(
    ("item_type", "hook"),
    [
        ("double", "__float__"),
        ("boolean", "__bool__"),
    ],
)
def test_other_callbacks_that_shrink_the_list(item_type: str, hook: str) -> None:
    items: list[Any] = []

    def shrink(_self: object) -> Any:
        del items[1:]
        return 1.0 if hook == "__float__" else True

    hostile = type("Hostile", (), {hook: shrink})()
    items.extend([hostile, *([0.5] if item_type == "double" else [True]) * 100])
    with pytest.raises(RuntimeError, match="changed size"):
        encode({"type": "array", "items": item_type}, items)


def test_a_uuid_property_that_shrinks_the_list() -> None:
    items: list[Any] = []

    class Shrinking(uuid.UUID):
        @property  # type: ignore[misc]
        def int(self) -> int:
            del items[1:]
            return 0

    hostile = object.__new__(Shrinking)  # UUID.__init__ would set int: the property refuses
    items.extend([hostile, *(uuid.UUID(int=n) for n in range(100))])
    with pytest.raises(RuntimeError, match="changed size"):
        encode({"type": "array", "items": UUID}, items)


def test_a_tzinfo_that_shrinks_the_list() -> None:
    items: list[Any] = []

    class Shrinking(Zone):
        def utcoffset(self, _when: dt.datetime | None) -> dt.timedelta:
            del items[1:]
            return dt.timedelta(0)

    now = dt.datetime(2024, 5, 1, tzinfo=_UTC)
    items.extend([now.replace(tzinfo=Shrinking()), *[now] * 100])
    with pytest.raises(RuntimeError, match="changed size"):
        encode({"type": "array", "items": TIMESTAMP}, items)


# --- datetimes ------------------------------------------------------------------------------


def test_a_datetime_subclass_with_a_huge_utcoffset() -> None:
    # The reproduction: the writer called the value's own utcoffset(), and a day count of
    # 999,999,999 made seconds * 1,000,000 overflow int64 (undefined behaviour; here it wrapped
    # into a timestamp of another instant). The offset is the tzinfo's, as datetime arithmetic
    # (and so fastavro) reads it: the value is the instant it really is.
    class Lies(dt.datetime):
        def utcoffset(self) -> dt.timedelta:
            return dt.timedelta(days=999_999_999)

    at = dt.datetime(2020, 1, 1, tzinfo=_UTC)
    assert encode(TIMESTAMP, Lies(2020, 1, 1, tzinfo=_UTC)) == encode(TIMESTAMP, at)


def test_a_tzinfo_with_a_huge_offset_is_refused() -> None:
    class Huge(Zone):
        def utcoffset(self, _when: dt.datetime | None) -> dt.timedelta:
            return dt.timedelta(days=999_999_999)

    with pytest.raises(ValueError, match="offset must be a timedelta strictly between"):
        encode(TIMESTAMP, dt.datetime(2020, 1, 1, tzinfo=Huge()))


@pytest.mark.parametrize(
    ("offset", "error"),
    [(None, ValueError), ("+01:00", TypeError), (ZeroDivisionError, ZeroDivisionError)],
)
def test_a_tzinfo_with_no_usable_offset(offset: object, error: type[Exception]) -> None:
    class Odd(Zone):
        def utcoffset(self, _when: dt.datetime | None) -> Any:
            if offset is ZeroDivisionError:
                return 1 / 0
            return offset

    with pytest.raises(error):
        encode(TIMESTAMP, dt.datetime(2020, 1, 1, tzinfo=Odd()))


def test_the_ends_of_datetime_with_the_widest_offsets() -> None:
    almost_a_day = dt.timedelta(days=1) - dt.timedelta(microseconds=1)
    first = dt.datetime.min.replace(tzinfo=dt.timezone(almost_a_day))
    last = dt.datetime.max.replace(tzinfo=dt.timezone(-almost_a_day))
    epoch = dt.datetime(1970, 1, 1, tzinfo=_UTC)
    for when in (first, last):
        micros = (when - epoch) // dt.timedelta(microseconds=1)
        assert encode(TIMESTAMP, when) == encode("long", micros)


def test_values_of_the_wrong_type_for_dates_and_times() -> None:
    for avro_type, value in [
        (TIMESTAMP, dt.date(2024, 1, 1)),
        (TIMESTAMP, "2024-01-01T00:00:00Z"),
        ({"type": "int", "logicalType": "date"}, "2024-01-01"),
        ({"type": "long", "logicalType": "time-micros"}, dt.datetime(2024, 1, 1)),
    ]:
        with pytest.raises(TypeError):
            encode(avro_type, value)


# --- decimals, strings, UUIDs, numbers --------------------------------------------------------


def test_a_decimal_subclass_is_written_as_the_number_it_is() -> None:
    class Lies(Decimal):
        def __str__(self) -> str:
            return "1"

    assert encode(DECIMAL, Lies("12.50")) == encode(DECIMAL, Decimal("12.50"))


def test_a_decimal_subclass_that_does_not_fit_is_refused_in_the_usual_words() -> None:
    class Lies(Decimal):
        def __str__(self) -> str:
            return "1"

    with pytest.raises(ValueError, match="more than 2 decimal place"):
        encode(DECIMAL, Lies("0.125"))


def test_a_decimal_field_takes_only_decimals() -> None:
    for value in [12, 12.5, "12.50", b"12.50"]:
        with pytest.raises(TypeError, match="a decimal must be a Decimal"):
            encode(DECIMAL, value)


def test_a_str_subclass_is_written_as_its_text() -> None:
    class Odd(str):
        __slots__ = ()

        def __str__(self) -> str:
            return "other"

        def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
            return b"other"

    assert encode("string", Odd("héllo")) == encode("string", "héllo")


def test_strings_that_are_not_text() -> None:
    with pytest.raises(UnicodeEncodeError):  # a ValueError: the codec rejects the record
        encode("string", "a\ud800b")
    for value in [b"bytes", bytearray(b"bytes"), memoryview(b"bytes"), 5]:
        with pytest.raises(TypeError):
            encode("string", value)


def test_a_uuid_subclass_is_written_as_the_uuid_it_is() -> None:
    class Lies(uuid.UUID):
        def __str__(self) -> str:
            return "not-a-uuid"

    number = 0x8A4C4F1E2F5E4F1A9C555D1F0B0F3A7E
    assert encode(UUID, Lies(int=number)) == encode(UUID, uuid.UUID(int=number))


@pytest.mark.parametrize(
    ("number", "error"),
    [(-1, ValueError), (2**128, ValueError), (2**200, ValueError), ("1", TypeError)],
)
def test_a_uuid_whose_int_is_out_of_range(number: object, error: type[Exception]) -> None:
    value = uuid.UUID(int=0)
    object.__setattr__(value, "int", number)  # past UUID's own checks
    with pytest.raises(error):
        encode(UUID, value)


def test_a_uuid_whose_int_is_an_int_subclass() -> None:
    class Shifty(int):
        def __rshift__(self, other: object) -> int:
            return -1

    value = uuid.UUID(int=0)
    object.__setattr__(value, "int", Shifty(5))
    with pytest.raises(TypeError, match="must be an int"):
        encode(UUID, value)


def test_longs_out_of_range_are_refused() -> None:
    class Huge:
        def __index__(self) -> int:
            return 2**64

    for value in [2**63, -(2**63) - 1, 10**100, Huge()]:
        with pytest.raises(OverflowError):
            encode("long", value)
    assert encode("long", 2**63 - 1) == b"\xfe" + b"\xff" * 8 + b"\x01"


def test_callbacks_that_raise_are_passed_on() -> None:
    class Raises:
        def __index__(self) -> int:
            raise KeyError("index")

        def __float__(self) -> float:
            raise KeyError("float")

        def __bool__(self) -> bool:
            raise KeyError("bool")

    for avro_type in ["long", "double", "boolean"]:
        with pytest.raises(KeyError):
            encode(avro_type, Raises())


# --- enums, records, programs -----------------------------------------------------------------


def test_an_enum_keeps_the_symbols_it_was_made_with() -> None:
    symbols = {"A": 0, "B": 1}
    write = Writer((5, ((6, symbols),)), b"", _astuple, MAX_PROGRAM_DEPTH).encode
    symbols["C"] = 2**70  # the caller's dict, changed afterwards
    symbols["A"] = 1
    assert write(_One("A")) == b"\x00"
    with pytest.raises(ValueError, match="is not a symbol"):
        write(_One("C"))


@pytest.mark.parametrize(
    "symbols", [{"A": -1}, {"A": 2**31}, {"A": True}, {"A": "0"}, {b"A": 0}, {1: 0}]
)
def test_an_enum_of_odd_indexes_or_symbols_is_refused_when_made(symbols: dict[Any, Any]) -> None:
    with pytest.raises(ValueError, match="malformed program node"):
        Writer((5, ((6, symbols),)), b"", _astuple, MAX_PROGRAM_DEPTH)


def test_enum_values_that_are_not_symbols() -> None:
    class Sly(str):
        __slots__ = ()

        def __hash__(self) -> int:
            return hash("A")

        def __eq__(self, other: object) -> bool:
            gc.collect()  # Python code in the middle of the lookup
            return False

    avro_type = {"type": "enum", "name": "E", "symbols": ["A", "B"]}
    with pytest.raises(ValueError, match="is not a symbol"):
        encode(avro_type, Sly("A"))
    with pytest.raises(TypeError, match="unhashable"):
        encode(avro_type, ["A"])


def test_values_nested_deeper_than_the_program() -> None:
    looped: list[Any] = []
    looped.append(looped)
    with pytest.raises(TypeError):
        encode(LONGS, looped)
    node = msgspec.defstruct("Node", [("next", object)])
    inner = {"type": "record", "name": "N", "fields": [{"name": "next", "type": ["null", "long"]}]}
    cycle = node(None)
    cycle.next = cycle  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        encode(inner, cycle)


def test_an_astuple_that_answers_oddly() -> None:
    program = native_program(
        {"type": "record", "name": "R", "fields": [{"name": "a", "type": "long"}]}
    )
    for answer in [[1], (), None]:

        def astuple(_record: object, answer: object = answer) -> Any:
            return answer

        with pytest.raises(TypeError, match="fewer fields"):
            Writer(program, b"", astuple, MAX_PROGRAM_DEPTH).encode(object())


def test_error_paths_release_what_they_hold() -> None:
    # A reference leaked on an error path shows as a count that grows with each failed encode.
    items = [1, 2, "three"]
    text = "a\ud800b"
    number = 10**100
    cases: list[tuple[object, object]] = [
        (LONGS, items),
        ("string", text),
        ("long", number),
        (DECIMAL, Decimal("0.125")),
        (TIMESTAMP, dt.datetime(2020, 1, 1)),
        (UUID, uuid.UUID(int=0)),
    ]
    object.__setattr__(cases[-1][1], "int", -1)
    before = [sys.getrefcount(value) for _, value in cases]
    for avro_type, value in cases:
        write, record = writer_of(avro_type), _One(value)
        for _ in range(100):
            with pytest.raises((ValueError, TypeError, ArithmeticError)):
                write(record)
    del value, record
    assert [sys.getrefcount(value) for _, value in cases] == before
