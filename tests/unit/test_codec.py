from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from decimal import Decimal
from typing import Any

import fastavro
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import AllRecordsInvalid, RateLimited, RecordsInvalid, UnknownToken
from inlet.codec import record_codec
from inlet.codec._avro_writer import record_encoder
from inlet.codec._decimals import unscaled_decimal
from inlet.codec._record_errors import parse_validation_error
from inlet.codec.bodies import parse_body
from inlet.codec.errors import TooDeeplyNested
from inlet.codec.record_codec import EncodeResult, RecordCodec
from inlet.errors import KafkaUnavailable
from inlet.model.avro import avro_schema
from inlet.model.fields import FieldSpec, avro_name
from inlet.records import RecordError, RecordErrorCode
from tests.unit.test_avro import ALL_TYPES, f

UTC = dt.UTC
ID = "8a4c4f1e-2f5e-4f1a-9c55-5d1f0b0f3a7e"


def make_codec(fields: list[FieldSpec], **options: Any) -> RecordCodec:
    options.setdefault("schema_id", 7)
    return RecordCodec(fields, avro_schema("Order", fields), schema_version=1, **options)


def encode(
    codec: RecordCodec, records: object, content_type: str = "application/json"
) -> EncodeResult:
    body = records if isinstance(records, bytes) else msgspec.json.encode(records)
    return codec.encode(parse_body(body, content_type))


def read(codec: RecordCodec, value: bytes) -> Any:
    """The record a consumer reads back: the wire format's header checked, then Avro."""
    assert value[:5] == b"\x00" + codec.schema_id.to_bytes(4, "big")
    schema = fastavro.parse_schema(dict(codec.avro_schema))
    return fastavro.schemaless_reader(io.BytesIO(value[5:]), schema, schema)


def only_value(codec: RecordCodec, record: dict[str, Any]) -> Any:
    result = encode(codec, [record])
    assert result.rejected == [], result.errors
    [(index, _, value)] = result.records
    assert index == 0
    return read(codec, value)


def only_errors(codec: RecordCodec, record: object) -> list[tuple[str, str | None, str]]:
    result = encode(codec, [record])
    assert result.records == []
    return [(error.pointer, error.field, error.code) for error in result.errors]


def fastavro_bytes(fields: list[FieldSpec], record: dict[str, Any]) -> bytes:
    schema = fastavro.parse_schema(avro_schema("Order", fields))
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, record)
    return buffer.getvalue()


# --- each type, valid ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "sent", "read_back"),
    [
        (f("x"), "Zoë ✓", "Zoë ✓"),
        (f("x"), "", ""),
        (f("x", "integer"), 2**63 - 1, 2**63 - 1),
        (f("x", "integer"), -(2**63), -(2**63)),
        (f("x", "float"), 0.25, 0.25),
        (f("x", "float"), 3, 3.0),  # an integer is a number
        (f("x", "boolean"), False, False),
        (f("x", "date"), "2024-02-29", dt.date(2024, 2, 29)),
        (f("x", "datetime"), "2024-05-01T12:00:00Z", dt.datetime(2024, 5, 1, 12, tzinfo=UTC)),
        (
            f("x", "datetime"),
            "2024-05-01T00:30:00.123456+02:00",  # normalised to UTC
            dt.datetime(2024, 4, 30, 22, 30, 0, 123456, tzinfo=UTC),
        ),
        (
            f("x", "datetime"),
            "1969-12-31T23:59:59-00:30",
            dt.datetime(1970, 1, 1, 0, 29, 59, tzinfo=UTC),
        ),
        (f("x", "time"), "13:14:15.999999", dt.time(13, 14, 15, 999999)),
        (f("x", "time"), "00:00:00", dt.time(0)),
        (f("x", "decimal", precision=5, scale=2), "123.45", Decimal("123.45")),
        (f("x", "decimal", precision=5, scale=2), "-0.5", Decimal("-0.50")),
        (f("x", "decimal", precision=5, scale=2), "1.500", Decimal("1.50")),  # exact, not rounded
        (f("x", "decimal", precision=5, scale=2), "1E+2", Decimal("100.00")),
        (f("x", "decimal", precision=3), "999", Decimal("999")),
        (f("x", "decimal", precision=2, scale=2), "-0.99", Decimal("-0.99")),
        (f("x", "decimal", precision=38, scale=2), "9" * 36 + ".99", Decimal("9" * 36 + ".99")),
        (f("x", "uuid"), ID, uuid.UUID(ID)),
        (f("x", "uuid"), ID.upper(), uuid.UUID(ID)),
        (f("x", "enum", symbols=["NEW", "DONE"]), "DONE", "DONE"),
        (f("x", "array", items="integer"), [1, -2, 3], [1, -2, 3]),
        (f("x", "array", items="string"), [], []),
        (f("x", "array", items="date"), ["1970-01-01"], [dt.date(1970, 1, 1)]),
        (f("x", "array", items="uuid"), [ID], [uuid.UUID(ID)]),
        (
            f("x", "object", fields=[f("e-mail"), f("n", "integer", nullable=True)]),
            {"e-mail": "a@b.c"},
            {"e_mail": "a@b.c", "n": None},
        ),
    ],
    ids=lambda value: value.type if isinstance(value, FieldSpec) else "",
)
def test_each_type_valid(spec: FieldSpec, sent: object, read_back: object) -> None:
    codec = make_codec([spec])
    assert only_value(codec, {"x": sent}) == {"x": read_back}
    nullable = make_codec([msgspec.structs.replace(spec, nullable=True)])
    assert only_value(nullable, {"x": sent}) == {"x": read_back}
    assert only_value(nullable, {"x": None}) == {"x": None}
    assert only_value(nullable, {}) == {"x": None}


def test_decimals_are_exact_from_json_numbers() -> None:
    codec = make_codec([f("x", "decimal", precision=24, scale=4)])
    # Beyond a float's 17 digits: never through float.
    body = b'[{"x": 12345678901234567890.1234}, {"x": 0.1}, {"x": 1e-4}]'
    result = encode(codec, body)
    values = [read(codec, value)["x"] for _, _, value in result.records]
    assert values == [Decimal("12345678901234567890.1234"), Decimal("0.1"), Decimal("0.0001")]
    assert str(values[1]) == "0.1000"


# --- each type, invalid --------------------------------------------------------------------

WRONG, INVALID = RecordErrorCode.WRONG_TYPE, RecordErrorCode.INVALID_VALUE


@pytest.mark.parametrize(
    ("spec", "sent", "code", "words"),
    [
        (f("x"), 5, WRONG, "expected string, got integer"),
        (f("x", "integer"), "3", WRONG, "expected integer, got string"),
        (f("x", "integer"), 1.5, WRONG, "expected integer, got number"),
        (f("x", "integer"), 2**63, INVALID, "-9223372036854775808 to 9223372036854775807"),
        (f("x", "integer"), -(2**63) - 1, INVALID, "integer from"),
        (f("x", "float"), "1.5", WRONG, "expected number, got string"),
        (f("x", "boolean"), "true", WRONG, "expected boolean, got string"),
        (f("x", "boolean"), 1, WRONG, "expected boolean, got integer"),
        (f("x", "date"), "2024-02-30", INVALID, "date like 2024-05-01"),
        (f("x", "date"), 20240101, WRONG, "expected date, got integer"),
        (f("x", "datetime"), "2024-05-01T12:00:00", INVALID, "with an offset"),
        (f("x", "datetime"), "yesterday", INVALID, "RFC 3339"),
        (f("x", "time"), "12:00:00Z", INVALID, "without an offset"),
        (f("x", "time"), "25:00:00", INVALID, "time of day"),
        (f("x", "decimal", precision=5, scale=2), "1.234", INVALID, "more than 2 decimal place"),
        (f("x", "decimal", precision=5, scale=2), 1.005, INVALID, "never rounded"),
        (f("x", "decimal", precision=5, scale=2), "1234", INVALID, "more than 3 digit(s) before"),
        (f("x", "decimal", precision=5, scale=2), "-1234.5", INVALID, "before the decimal point"),
        (f("x", "decimal", precision=2, scale=2), "1", INVALID, "less than 1 in magnitude"),
        (f("x", "decimal", precision=5, scale=2), "NaN", INVALID, "finite"),
        (f("x", "decimal", precision=5, scale=2), "-Infinity", INVALID, "finite"),
        (f("x", "decimal", precision=5, scale=2), "1E+999999999", INVALID, "digit(s) before"),
        (f("x", "decimal", precision=5, scale=2), "1E-999999999", INVALID, "decimal place"),
        (f("x", "decimal", precision=5, scale=2), "12,5", INVALID, "decimal number"),
        (f("x", "decimal", precision=5, scale=2), True, WRONG, "expected decimal, got boolean"),
        (f("x", "uuid"), "not-a-uuid", INVALID, "UUID like"),
        (f("x", "enum", symbols=["NEW", "DONE"]), "done", INVALID, "one of NEW, DONE"),
        (f("x", "array", items="integer"), "1,2", WRONG, "expected array, got string"),
        (f("x", "object", fields=[f("y")]), [1], WRONG, "expected object, got array"),
    ],
    ids=lambda value: value.type if isinstance(value, FieldSpec) else "",
)
def test_each_type_invalid(
    spec: FieldSpec, sent: object, code: RecordErrorCode, words: str
) -> None:
    codec = make_codec([spec])
    result = encode(codec, [{"x": sent}])
    assert result.records == []
    [error] = result.errors
    assert (error.index, error.pointer, error.field, error.code) == (0, "/0/x", "x", code)
    assert words in error.message


def test_array_item_errors_point_at_the_item() -> None:
    codec = make_codec([f("tags", "array", items="integer")])
    assert only_errors(codec, {"tags": [1, "two", 3]}) == [("/0/tags/1", "tags", WRONG)]


def test_null_and_missing_values() -> None:
    codec = make_codec([f("a", "integer"), f("b", "integer", nullable=True)])
    assert only_errors(codec, {"a": None}) == [("/0/a", "a", RecordErrorCode.NULL_NOT_ALLOWED)]
    assert only_errors(codec, {"b": 1}) == [("/0/a", "a", RecordErrorCode.MISSING_FIELD)]
    assert only_value(codec, {"a": 1, "b": None}) == {"a": 1, "b": None}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (42, "expected object, got integer"),
        ([{"a": 1}], "expected object, got array"),
        (None, "expected object, got null"),
        ("x", "expected object, got string"),
    ],
)
def test_a_record_that_is_not_an_object(record: object, message: str) -> None:
    codec = make_codec([f("a", "integer")])
    [error] = encode(codec, [record]).errors
    assert error == RecordError(0, "/0", None, WRONG, message)


def test_every_error_of_a_record_is_reported_in_field_order() -> None:
    fields = [
        f("id", "integer"),
        f("at", "datetime"),
        f("customer", "object", fields=[f("e-mail"), f("vip", "boolean")]),
        f("amount", "decimal", precision=4, scale=2),
    ]
    record = {"id": "x", "at": None, "customer": {"vip": "yes"}, "amount": 123.4}
    assert only_errors(make_codec(fields), record) == [
        ("/0/id", "id", WRONG),
        ("/0/at", "at", RecordErrorCode.NULL_NOT_ALLOWED),
        ("/0/customer/e-mail", "customer.e-mail", RecordErrorCode.MISSING_FIELD),
        ("/0/customer/vip", "customer.vip", WRONG),
        ("/0/amount", "amount", INVALID),
    ]


def test_pointers_escape_names() -> None:
    codec = make_codec([f("a/b~c", "integer")])
    assert only_errors(codec, {"a/b~c": "x"}) == [("/0/a~1b~0c", "a/b~c", WRONG)]


def test_user_names_are_the_json_keys() -> None:
    fields = [f("order-id"), f("2fa", "boolean"), f("class"), f("__init__", "integer")]
    codec = make_codec(fields)
    record = {"order-id": "A-1", "2fa": True, "class": "gold", "__init__": 3}
    assert only_value(codec, record) == {
        "order_id": "A-1",
        "_2fa": True,
        "class": "gold",
        "__init__": 3,
    }
    assert only_errors(codec, {**record, "order-id": 1}) == [("/0/order-id", "order-id", WRONG)]
    assert only_errors(codec, {**record, "order_id": "x", "order-id": None})[0][0] == "/0/order-id"


# --- batches -------------------------------------------------------------------------------


def test_valid_and_invalid_records_keep_their_order() -> None:
    codec = make_codec([f("n", "integer")])
    result = encode(codec, [{"n": 0}, {"n": "bad"}, {"n": 2}, 3, {"n": 4}])
    assert [index for index, _, _ in result.records] == [0, 2, 4]
    assert [read(codec, value)["n"] for _, _, value in result.records] == [0, 2, 4]
    assert [rejected.index for rejected in result.rejected] == [1, 3]
    assert [error.index for error in result.errors] == [1, 3]


def test_rejected_records_are_kept_as_sent() -> None:
    codec = make_codec([f("n", "integer")])
    body = b'[{"n": 1}, {"n" :  "bad", "x": [1, 2]}]'
    [rejected] = encode(codec, body).rejected
    assert rejected.raw == b'{"n" :  "bad", "x": [1, 2]}'
    assert rejected.errors == (RecordError(1, "/1/n", "n", WRONG, "expected integer, got string"),)


def test_ndjson_errors_carry_lines() -> None:
    codec = make_codec([f("n", "integer")])
    result = encode(codec, b'{"n": 1}\n\n{"n": "x"}\n', "application/x-ndjson")
    [rejected] = result.rejected
    assert (rejected.index, rejected.line) == (1, 3)
    assert rejected.errors[0].line == 3
    assert msgspec.json.encode(rejected.errors[0]) == (
        b'{"index":1,"pointer":"/1/n","field":"n","code":"wrong_type",'
        b'"message":"expected integer, got string","line":3}'
    )


def test_a_decimal_refused_by_the_writer_is_rejected_alone() -> None:
    codec = make_codec([f("n", "integer"), f("d", "decimal", precision=3, scale=1)])
    result = encode(codec, [{"n": 1, "d": 1.5}, {"n": 2, "d": 1.55}, {"n": 3, "d": "12.5"}])
    assert [index for index, _, _ in result.records] == [0, 2]
    assert [(e.pointer, e.code) for e in result.errors] == [("/1/d", INVALID)]


# --- unknown fields ------------------------------------------------------------------------

NESTED = [f("a", "integer"), f("o", "object", nullable=True, fields=[f("b")])]


def test_unknown_fields_are_ignored_and_reported_once() -> None:
    codec = make_codec(NESTED)
    records = [
        {"a": 1, "zeta": 1, "extra": "x"},
        {"a": 2, "extra": "y"},
        {"a": 3, "o": {"b": "q", "deep": True}},
        {"a": 4},
    ]
    result = encode(codec, records)
    assert result.rejected == []
    assert [read(codec, value)["a"] for _, _, value in result.records] == [1, 2, 3, 4]
    assert result.unknown_fields == ["extra", "o.deep", "zeta"]


@pytest.mark.parametrize("count", [1, 3, 50])
def test_records_sharing_unknown_keys(count: int) -> None:
    codec = make_codec(NESTED)
    records: list[dict[str, Any]] = [{"a": n, "extra": {"z": [n]}, "more": n} for n in range(count)]
    records[-1] = {"a": -1, "more": None}  # not every record has every key
    result = encode(codec, records)
    assert [read(codec, value)["a"] for _, _, value in result.records] == [
        *range(count - 1),
        -1,
    ]
    assert result.unknown_fields == (["extra", "more"] if count > 1 else ["more"])
    again = encode(codec, [{"a": 1, "more": 1}, {"a": "bad", "more": 2}])  # probe, then one by one
    assert [index for index, _, _ in again.records] == [0]
    assert again.unknown_fields == ["more"]


@pytest.mark.parametrize("key", ['say "hi"', "back\\slash", "tab\there", "nul\u0000", "\u001f"])
def test_unknown_keys_msgspec_cannot_name(key: str) -> None:
    # Found by schemathesis (tests/integration/test_openapi_conformance.py): such a key made the
    # probe Struct fail to build, and every request holding one answered 500.
    codec = make_codec(NESTED)
    result = encode(codec, [{"a": 1, key: 2}, {"a": 2, key: 3}])
    assert [read(codec, value)["a"] for _, _, value in result.records] == [1, 2]
    assert result.unknown_fields == [key]


def test_unknown_fields_may_be_rejected() -> None:
    codec = make_codec(NESTED, reject_unknown_fields=True)
    result = encode(codec, [{"a": 1}, {"a": 2, "x": 1, "o": {"b": "q", "y": 2}}])
    assert [index for index, _, _ in result.records] == [0]
    assert [(e.pointer, e.field, e.code, e.message) for e in result.errors] == [
        ("/1/x", "x", RecordErrorCode.UNKNOWN_FIELD, "is not a field of the schema"),
        ("/1/o/y", "o.y", RecordErrorCode.UNKNOWN_FIELD, "is not a field of the schema"),
    ]
    assert result.unknown_fields == ["o.y", "x"]


# --- keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "sent", "key"),
    [
        (f("k"), "Zoë", "Zoë".encode()),
        (f("k", "integer"), -42, b"-42"),
        (f("k", "float"), 2, b"2.0"),
        (f("k", "boolean"), True, b"true"),
        (f("k", "date"), "2024-02-29", b"2024-02-29"),
        (f("k", "datetime"), "2024-05-01T02:00:00+02:00", b"2024-05-01T00:00:00+00:00"),
        (f("k", "time"), "10:11:12.5", b"10:11:12.500000"),
        (f("k", "decimal", precision=6, scale=2), "1.5", b"1.50"),  # one value, one key
        (f("k", "decimal", precision=6, scale=2), 1.500, b"1.50"),
        (f("k", "uuid"), ID.upper(), ID.encode()),
        (f("k", "enum", symbols=["A", "B"]), "B", b"B"),
    ],
    ids=lambda value: value.type if isinstance(value, FieldSpec) else "",
)
def test_keys(spec: FieldSpec, sent: object, key: bytes) -> None:
    codec = make_codec([f("other", nullable=True), spec], key_field="k")
    [(_, found, _)] = encode(codec, [{"k": sent, "extra": 1}]).records  # probe path too
    assert found == key
    [(_, found, _)] = encode(codec, [{"k": sent}]).records
    assert found == key


def test_no_key_field_no_key() -> None:
    codec = make_codec([f("k")])
    assert encode(codec, [{"k": "a"}]).records[0][1] is None


# --- CSV -----------------------------------------------------------------------------------


def test_csv_values_are_parsed_per_field_type() -> None:
    fields = [
        f("id", "integer"),
        f("paid", "boolean"),
        f("amount", "decimal", precision=6, scale=2),
        f("at", "datetime"),
        f("note", nullable=True),
        f("tags", "array", items="integer", nullable=True),
        f("customer", "object", nullable=True, fields=[f("e-mail"), f("score", "float")]),
    ]
    codec = make_codec(fields, key_field="id")
    body = (
        b"id,paid,amount,at,note,tags,customer,source\n"
        b'42,true,1.10,2024-05-01T12:00:00+01:00,,"[1, 2]",'
        b'"{""e-mail"": ""x@y"", ""score"": 1.5}",web\n'
        b"43,0,7,2024-05-01T12:00:00Z,hi,,,\n"
    )
    result = encode(codec, body, "text/csv")
    assert result.rejected == []
    assert [key for _, key, _ in result.records] == [b"42", b"43"]
    first, second = (read(codec, value) for _, _, value in result.records)
    assert first == {
        "id": 42,
        "paid": True,
        "amount": Decimal("1.10"),
        "at": dt.datetime(2024, 5, 1, 11, tzinfo=UTC),
        "note": None,
        "tags": [1, 2],
        "customer": {"e_mail": "x@y", "score": 1.5},
    }
    assert (second["paid"], second["note"], second["tags"]) == (False, "hi", None)
    assert result.unknown_fields == ["source"]  # a header column the schema lacks


def test_csv_errors_name_the_cell_and_line() -> None:
    codec = make_codec(
        [f("id", "integer"), f("paid", "boolean"), f("tags", "array", items="integer")]
    )
    result = encode(codec, b'id,paid,tags,zz\n1,true,[1],\n\nx,maybe,"[1,,a"\n', "text/csv")
    assert [index for index, _, _ in result.records] == [0]
    [rejected] = result.rejected
    assert (rejected.index, rejected.line) == (1, 4)
    assert msgspec.json.decode(rejected.raw) == {"id": "x", "paid": "maybe", "tags": "[1,,a"}
    assert [(e.pointer, e.code, e.message) for e in rejected.errors] == [
        (
            "/1/id",
            INVALID,
            "must be an integer from -9223372036854775808 to 9223372036854775807 (got 'x')",
        ),
        ("/1/paid", INVALID, "must be true or false (got 'maybe')"),
        ("/1/tags", INVALID, "must be a JSON array (got '[1,,a')"),
    ]
    assert all(error.line == 4 for error in rejected.errors)


def test_csv_unknown_columns_may_be_rejected() -> None:
    codec = make_codec([f("id", "integer")], reject_unknown_fields=True)
    result = encode(codec, b"id,zz\n1,\n2,x\n", "text/csv")
    assert [index for index, _, _ in result.records] == [0]  # an empty cell is no value
    assert [(e.pointer, e.code) for e in result.errors] == [
        ("/1/zz", RecordErrorCode.UNKNOWN_FIELD)
    ]


# --- the errors a batch may end in ---------------------------------------------------------


def test_batch_errors_carry_codes_and_details() -> None:
    codec = make_codec([f("n", "integer")])
    errors = encode(codec, [{"n": "x"}, {}]).errors
    failed = AllRecordsInvalid(errors)
    assert (failed.code, failed.retryable, failed.message) == (
        "all_records_invalid",
        False,
        "every record is invalid",
    )
    assert failed.details() == {
        "accepted": 0,
        "rejected": 2,
        "errors": msgspec.to_builtins(errors),
        "errors_total": 2,
    }
    assert isinstance(failed, RecordsInvalid)
    failed.max_listed = 1  # a huge bad batch lists only the first errors, and says how many
    assert failed.details()["errors"] == msgspec.to_builtins(errors[:1])
    assert failed.details()["errors_total"] == 2
    assert RecordsInvalid(errors).message == "2 record(s) are invalid"
    assert RecordsInvalid(errors).code == "records_invalid"
    for retryable in (RateLimited(1.5), KafkaUnavailable(retry_after_s=2.0)):
        assert retryable.retryable
        assert retryable.details() == {"retry_after_s": retryable.retry_after_s}
    assert (UnknownToken().code, UnknownToken().retryable) == ("unknown_token", False)


def test_a_csv_cell_nested_too_deeply_is_refused_as_a_json_body_is() -> None:
    """Issue #10, item 6: a cell of an array field nested 10k deep raised RecursionError (500)."""
    codec = make_codec([f("id"), f("tags", "array", items="string", nullable=True)])
    deep = "[" * 10_000 + "]" * 10_000
    body = f'id,tags\na,[]\nb,"{deep}"\n'.encode()
    with pytest.raises(TooDeeplyNested) as caught:
        encode(codec, body, "text/csv")
    assert caught.value.details() == {"index": 1, "field": "tags", "line": 3}
    with pytest.raises(TooDeeplyNested):  # the limit a JSON body has
        parse_body(
            msgspec.json.encode([{"id": "b", "tags": None}]).replace(b"null", deep.encode()),
            "application/json",
        )


def test_when_nothing_is_written_only_the_listed_errors_are_looked_for() -> None:
    """Issue #10, item 2: every invalid record of a refused batch was examined, however many."""
    codec = make_codec([f("id"), f("n", "integer")])
    records = [{"id": str(i), "n": "x"} for i in range(50)]
    full = encode(codec, records)
    assert (len(full.rejected), full.unexamined) == (50, 0)  # the default: every one examined
    body = parse_body(msgspec.json.encode(records), "application/json")
    capped = codec.encode(body, errors_listed=5)  # none valid: nothing will be written
    assert [r.index for r in capped.rejected] == [0, 1, 2, 3, 4]
    assert (capped.unexamined, capped.rejected_count) == (45, 50)
    mixed = [{"id": "ok", "n": 1}, *records]
    body = parse_body(msgspec.json.encode(mixed), "application/json")
    kept = codec.encode(body, errors_listed=5)  # one valid: the invalid ones go to the topic
    assert (len(kept.rejected), kept.unexamined) == (50, 0)
    atomic = codec.encode(body, errors_listed=5, all_or_nothing=True)
    assert (len(atomic.records), len(atomic.rejected), atomic.unexamined) == (1, 5, 45)
    failed = AllRecordsInvalid(capped.errors, unexamined=capped.unexamined)
    assert failed.details()["rejected"] == 50
    assert failed.details()["unexamined"] == 45
    assert "45 more invalid records were counted, not examined" in failed.message


def test_a_batch_encoded_in_steps_is_the_batch_encoded_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codec = make_codec([f("id"), f("n", "integer"), f("tags", "array", items="integer")])
    rows = [f'{i},{i if i % 3 else "x"},"[{i}]"' for i in range(40)]
    for body, content_type in (
        ("id,n,tags\n" + "\n".join(rows) + "\n", "text/csv"),
        (
            "\n".join(
                f'{{"id": "{i}", "n": {i if i % 3 else 1.5}, "tags": [], "extra": {i % 2}}}'
                for i in range(40)
            ),
            "application/x-ndjson",
        ),
    ):
        at_once = codec.encode(parse_body(body.encode(), content_type))
        monkeypatch.setattr(record_codec, "STEP_RECORDS", 3)
        steps = codec.encode_steps(parse_body(body.encode(), content_type))
        taken = 0
        while True:
            try:
                next(steps)
            except StopIteration as done:
                in_steps = done.value
                break
            taken += 1
        monkeypatch.undo()
        assert taken >= 13
        assert in_steps == at_once
        assert len(at_once.rejected) == 14


# --- construction --------------------------------------------------------------------------


def test_codec_checks_its_inputs() -> None:
    fields = [f("a"), f("o", "object", fields=[f("b")])]
    with pytest.raises(ValueError, match="not the connector's fields"):
        RecordCodec(fields, avro_schema("R", [f("a")]), schema_id=1, schema_version=1)
    other = avro_schema("R", [f("a"), f("o", "object", fields=[f("c")])])
    with pytest.raises(ValueError, match="not the connector's fields"):
        RecordCodec(fields, other, schema_id=1, schema_version=1)
    with pytest.raises(ValueError, match="schema id"):
        RecordCodec(fields, avro_schema("R", fields), schema_id=2**31, schema_version=1)
    with pytest.raises(ValueError, match="key field"):
        RecordCodec(fields, avro_schema("R", fields), schema_id=1, schema_version=1, key_field="o")
    with pytest.raises(ValueError, match="key field"):
        RecordCodec(fields, avro_schema("R", fields), schema_id=1, schema_version=1, key_field="b")
    optional = [f("a", nullable=True)]
    with pytest.raises(ValueError, match="key field"):
        RecordCodec(
            optional, avro_schema("R", optional), schema_id=1, schema_version=1, key_field="a"
        )


@pytest.mark.parametrize("native", [True, False], ids=["C", "fastavro"])
def test_writer_refuses_what_it_does_not_know(native: bool) -> None:
    with pytest.raises(ValueError, match="record schema is required"):
        record_encoder({"type": "string"}, b"", native=native)
    for avro_type in ["float", ["string", "null"], {"type": "fixed", "size": 2, "name": "F"}]:
        with pytest.raises(ValueError, match=r"unsupported|only"):
            record_encoder(
                {"type": "record", "name": "R", "fields": [{"name": "a", "type": avro_type}]},
                b"",
                native=native,
            )


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1.23", 123), ("-1.2", -120), ("0E+30", 0), ("0E-30", 0), ("9.99", 999), ("-128", -12800)],
)
def test_unscaled_decimal(value: str, expected: int) -> None:
    assert unscaled_decimal(Decimal(value), 5, 2) == expected


def test_decimal_checks_do_not_blow_up_on_huge_numbers() -> None:
    digits = "1." + "0" * 1_000_000 + "1"  # 1 MB of digits: linear time, no giant int
    with pytest.raises(ValueError, match="decimal place"):
        unscaled_decimal(Decimal(digits), 38, 2)


# --- msgspec's messages --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "parsed"),
    [
        (
            "Expected `int`, got `str` - at `$[3].total`",
            (WRONG, "expected integer, got string", ("3", "total")),
        ),
        (
            "Expected `int | null`, got `float` - at `$.a.b[0]`",
            (WRONG, "expected integer, got number", ("a", "b", "0")),
        ),
        (
            "Expected `str`, got `null`",
            (RecordErrorCode.NULL_NOT_ALLOWED, "expected string, got null", ()),
        ),
        (
            "Object missing required field `id` - at `$[0]`",
            (RecordErrorCode.MISSING_FIELD, "is required", ("0", "id")),
        ),
        (
            "Object contains unknown field `order-id`",
            (RecordErrorCode.UNKNOWN_FIELD, "is not a field of the schema", ("order-id",)),
        ),
        ("Invalid enum value 'C' - at `$[2]`", (INVALID, "invalid enum value 'C'", ("2",))),
        (
            "Expected `int` >= -9223372036854775808 - at `$.n`",
            (INVALID, "expected int >= -9223372036854775808", ("n",)),
        ),
        (
            "Expected `object`, got `str` - at `$[...]`",
            (WRONG, "expected object, got string", ("...",)),
        ),
    ],
)
def test_parse_validation_error(
    message: str, parsed: tuple[RecordErrorCode, str, tuple[str, ...]]
) -> None:
    assert parse_validation_error(message) == parsed


def test_msgspec_paths_hold_the_users_names() -> None:
    # What parse_validation_error relies on: renamed fields show their JSON names in paths.
    struct = msgspec.defstruct("S", [("order_id", int)], rename={"order_id": "order-id"})
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.json.decode(b'[{"order-id": "x"}]', type=list[struct])  # type: ignore[valid-type]
    assert parse_validation_error(str(caught.value))[2] == ("0", "order-id")


# --- the Avro bytes: exactly fastavro's, for every type ------------------------------------

SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "string": st.text(),
    "integer": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(allow_nan=False, allow_infinity=False),
    "boolean": st.booleans(),
    "date": st.dates(),
    # Offsets in whole minutes, as RFC 3339 writes them; years away from the ends of datetime.
    "datetime": st.datetimes(
        min_value=dt.datetime(2, 1, 1),
        max_value=dt.datetime(9998, 12, 31),
        timezones=st.builds(
            dt.timezone,
            st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: dt.timedelta(minutes=m)),
        ),
    ),
    "time": st.times(),
    "uuid": st.uuids(),
}


def values(spec: FieldSpec) -> st.SearchStrategy[Any]:
    """Python values a field accepts, as they read back from Avro."""
    if spec.type == "decimal":
        precision, scale = spec.precision or 1, spec.scale or 0
        bound = 10**precision - 1
        return st.integers(-bound, bound).map(lambda n: Decimal(f"{n}E-{scale}"))  # exact
    if spec.type == "enum":
        return st.sampled_from(spec.symbols or [])
    if spec.type == "array":
        return st.lists(SCALARS[spec.items or "string"], max_size=4)
    if spec.type == "object":
        return records(spec.fields or [])
    return SCALARS[spec.type]


def records(fields: list[FieldSpec]) -> st.SearchStrategy[dict[str, Any]]:
    """Records keyed by Avro names, with values as a consumer reads them back."""
    return st.fixed_dictionaries(
        {
            avro_name(spec.name): (st.none() | values(spec)) if spec.nullable else values(spec)
            for spec in fields
        }
    )


def as_json(
    fields: list[FieldSpec], record: dict[str, Any], *, decimals_as_numbers: bool
) -> dict[str, Any]:
    """What a sender posts for ``record``: the users' names; datetimes with their offsets."""
    sent: dict[str, Any] = {}
    for spec in fields:
        value = record[avro_name(spec.name)]
        if value is None:
            continue  # absent, which is null for a nullable field
        if spec.type == "object":
            value = as_json(spec.fields or [], value, decimals_as_numbers=decimals_as_numbers)
        elif spec.type == "decimal" and decimals_as_numbers:
            value = msgspec.Raw(str(value).encode())
        sent[spec.name] = value
    return sent


def expected(fields: list[FieldSpec], record: dict[str, Any]) -> dict[str, Any]:
    """``record`` as it reads back: datetimes in UTC."""
    result = {}
    for spec in fields:
        value = record[avro_name(spec.name)]
        if value is not None and spec.type == "datetime":
            value = value.astimezone(UTC)
        elif value is not None and spec.type == "array" and spec.items == "datetime":
            value = [item.astimezone(UTC) for item in value]
        elif value is not None and spec.type == "object":
            value = expected(spec.fields or [], value)
        result[avro_name(spec.name)] = value
    return result


@settings(max_examples=300, deadline=None)
@given(st.lists(records(ALL_TYPES), min_size=1, max_size=5), st.booleans())
def test_round_trip_every_type(batch: list[dict[str, Any]], decimals_as_numbers: bool) -> None:
    codec = make_codec(ALL_TYPES, key_field="id")
    body = msgspec.json.encode(
        [as_json(ALL_TYPES, r, decimals_as_numbers=decimals_as_numbers) for r in batch]
    )
    result = encode(codec, body)
    assert result.rejected == []
    assert result.unknown_fields == []
    assert [index for index, _, _ in result.records] == list(range(len(batch)))
    for (_, key, value), record in zip(result.records, batch, strict=True):
        want = expected(ALL_TYPES, record)
        assert read(codec, value) == want
        assert value[5:] == fastavro_bytes(ALL_TYPES, want)  # byte for byte
        assert key == str(record["id"]).encode()


NAMES = st.text("abcdefgh -.", min_size=1, max_size=6).filter(lambda name: name.strip("-. ") != "")


@st.composite
def field_lists(draw: st.DrawFn, depth: int = 0) -> list[FieldSpec]:
    """Valid connector schemas: unique names, any types, objects two levels deep."""
    names = draw(
        st.lists(NAMES, min_size=1, max_size=6, unique_by=lambda name: avro_name(name).lower())
    )
    fields = []
    for name in names:
        types = [*SCALARS, "decimal", "enum", "array"] + (["object"] if depth < 2 else [])
        kind = draw(st.sampled_from(types))
        attributes: dict[str, object] = {"nullable": draw(st.booleans())}
        if kind == "decimal":
            precision = draw(st.integers(1, 38))
            attributes |= {"precision": precision, "scale": draw(st.integers(0, precision))}
        elif kind == "enum":
            attributes["symbols"] = draw(
                st.lists(st.sampled_from(["A", "B", "C_1", "d"]), min_size=1, unique=True)
            )
        elif kind == "array":
            attributes["items"] = draw(st.sampled_from(sorted(SCALARS)))
        elif kind == "object":
            attributes["fields"] = msgspec.to_builtins(draw(field_lists(depth + 1)))
        fields.append(f(name, kind, **attributes))
    return fields


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_round_trip_generated_schemas(data: st.DataObject) -> None:
    fields = data.draw(field_lists())
    batch = data.draw(st.lists(records(fields), min_size=1, max_size=3))
    codec = make_codec(fields)
    result = encode(codec, [as_json(fields, record, decimals_as_numbers=True) for record in batch])
    assert result.rejected == []
    for (_, _, value), record in zip(result.records, batch, strict=True):
        want = expected(fields, record)
        assert read(codec, value) == want
        assert value[5:] == fastavro_bytes(fields, want)


CSV_SCALARS = ["string", "integer", "float", "boolean", "date", "datetime", "time", "uuid"]


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_csv_round_trip(data: st.DataObject) -> None:
    kinds = data.draw(st.lists(st.sampled_from(CSV_SCALARS), min_size=1, max_size=6))
    fields = [f(f"c{n}", kind) for n, kind in enumerate(kinds)]
    batch = data.draw(st.lists(records(fields), min_size=1, max_size=3))
    # An empty cell is no value; csv refuses NUL characters.
    batch = [r for r in batch if all(v != "" and "\x00" not in str(v) for v in r.values())]
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow([spec.name for spec in fields])
    for record in batch:
        writer.writerow([_cell(record[spec.name]) for spec in fields])
    result = encode(make_codec(fields), text.getvalue().encode(), "text/csv")
    assert result.rejected == []
    for (_, _, value), record in zip(result.records, batch, strict=True):
        assert read(make_codec(fields), value) == expected(fields, record)


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return repr(value) if isinstance(value, float) else str(value)
