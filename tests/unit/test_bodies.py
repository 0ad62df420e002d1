from __future__ import annotations

import gzip
import tracemalloc
import zlib

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inlet.codec import bodies
from inlet.codec.bodies import (
    BodyFormat,
    CsvRecords,
    JsonRecords,
    RecordLocation,
    body_format,
    decode_content,
    known_record_count,
    parse_body,
    parse_steps,
)
from inlet.codec.errors import (
    BodyTooLarge,
    BodyUnparseable,
    RecordTooLarge,
    TooDeeplyNested,
    TooManyRecords,
    UnsupportedMediaType,
)
from inlet.codec.steps import STEP_BYTES

JSON = "application/json"
NDJSON = "application/x-ndjson"
CSV = "text/csv"


def json_records(body: bytes, content_type: str = JSON, **options: int) -> JsonRecords:
    batch = parse_body(body, content_type, **options)  # type: ignore[arg-type]
    assert isinstance(batch, JsonRecords)
    return batch


def csv_records(body: bytes, **options: int) -> CsvRecords:
    batch = parse_body(body, CSV, **options)  # type: ignore[arg-type]
    assert isinstance(batch, CsvRecords)
    return batch


def raw(batch: JsonRecords) -> list[bytes]:
    return [bytes(record) for record in batch.records]


def unparseable(body: bytes, content_type: str = JSON) -> BodyUnparseable:
    with pytest.raises(BodyUnparseable) as caught:
        parse_body(body, content_type)
    return caught.value


# --- media types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", BodyFormat.JSON),
        ("Application/JSON; charset=utf-8", BodyFormat.JSON),
        ("application/cloudevents+json", BodyFormat.JSON),
        ("application/x-ndjson", BodyFormat.NDJSON),
        ("application/jsonl", BodyFormat.NDJSON),
        ("application/ndjson ; charset=UTF-8", BodyFormat.NDJSON),
        ("text/csv; header=present", BodyFormat.CSV),
    ],
)
def test_media_types(content_type: str, expected: BodyFormat) -> None:
    assert body_format(content_type) is expected


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "", None, "json"])
def test_other_media_types_are_unsupported(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        parse_body(b"{}", content_type)
    assert caught.value.code == "unsupported_media_type"
    assert "text/csv" in caught.value.message  # says what would work
    assert caught.value.details() == ({"media_type": content_type} if content_type else {})


# --- JSON ----------------------------------------------------------------------------------


def test_json_object_is_one_record() -> None:
    batch = json_records(b' \n{"a": 1}\n')
    assert batch.format is BodyFormat.JSON
    assert raw(batch) == [b'{"a": 1}']
    assert batch.lines is None
    assert batch.location(0) == RecordLocation(0)


def test_json_array_items_are_the_records_byte_for_byte() -> None:
    batch = json_records(b'[{"a": 1},\n {"b": [1, {"c": null}]}, 3, "x"]')
    assert raw(batch) == [b'{"a": 1}', b'{"b": [1, {"c": null}]}', b"3", b'"x"']  # kept: the
    # codec reports items that are not objects, per record


def test_json_empty_array_has_no_records() -> None:
    assert json_records(b"[]").records == []


def test_json_utf8_bom_is_skipped() -> None:
    assert raw(json_records(b'\xef\xbb\xbf{"a": "\xc3\xa9"}')) == [b'{"a": "\xc3\xa9"}']


@pytest.mark.parametrize(
    ("body", "offset", "line", "column"),
    [
        (b"[1, x]", 4, 1, 5),
        (b'[\n  {"a": 1},\n  {"a": 2,,}\n]', 24, 3, 11),
        (b'{"a": 1} {"b": 2}', 10, 1, 11),  # one object, then more (msgspec points 1 past)
        (b"", 0, 1, 1),
        (b'[{"a": 1}', 9, 1, 10),  # truncated: the position is the end
        (b'{"a": "\xff"}', 7, 1, 8),  # not UTF-8
        (b'\xef\xbb\xbf{"a": x}', 9, 1, 7),  # offsets count the BOM, lines and columns not
    ],
)
def test_json_errors_give_the_position(body: bytes, offset: int, line: int, column: int) -> None:
    error = unparseable(body)
    assert (error.offset, error.line, error.column) == (offset, line, column)
    assert error.details() == {"offset": offset, "line": line, "column": column}
    assert f"line {line}, column {column}" in error.message


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(TooDeeplyNested):
        parse_body(b"[" * 100_000, JSON)
    with pytest.raises(TooDeeplyNested) as caught:
        parse_body(b'{"a": 1}\n' + b"[" * 100_000, NDJSON)
    assert caught.value.details() == {"line": 2}


def test_json_record_too_large_names_the_record() -> None:
    body = msgspec.json.encode([{"a": "x"}, {"a": "x" * 200}, {"a": "x" * 300}])
    with pytest.raises(RecordTooLarge) as caught:
        parse_body(body, JSON, max_record_bytes=100)
    assert caught.value.details() == {"index": 1, "limit_bytes": 100}
    assert json_records(body, max_record_bytes=400).records  # at the limit is fine


# --- NDJSON --------------------------------------------------------------------------------


def test_ndjson_one_record_per_line_blank_lines_ignored() -> None:
    batch = json_records(b'{"a": 1}\r\n\n   \n{"a": 2}\n[1]\n', "application/jsonl")
    assert batch.format is BodyFormat.NDJSON
    assert raw(batch) == [b'{"a": 1}', b'{"a": 2}', b"[1]"]
    assert batch.lines == [1, 4, 5]
    assert batch.location(1) == RecordLocation(1, 4)


def test_ndjson_error_names_the_line() -> None:
    error = unparseable(b'{"a": 1}\n{"a": 2}\n{"a": oops}\n', NDJSON)
    assert (error.offset, error.line, error.column) == (24, 3, 7)
    error = unparseable(b'{"a": 1}\n{"a": \n{"a": 3}\n', NDJSON)  # an object across lines
    assert error.line == 2


def test_ndjson_record_too_large_names_the_line() -> None:
    body = b'{"a": 1}\n\n{"a": "' + b"x" * 100 + b'"}\n'
    with pytest.raises(RecordTooLarge) as caught:
        parse_body(body, NDJSON, max_record_bytes=50)
    assert caught.value.details() == {"index": 1, "limit_bytes": 50, "line": 3}


# --- CSV -----------------------------------------------------------------------------------


def test_csv_header_names_fields_and_empty_cells_are_absent() -> None:
    body = b'id, name ,note\r\n1,"Zo\xc3\xab",\r\n\r\n2,"two\nlines",hi\r\n3\r\n'
    batch = csv_records(body)
    assert batch.format is BodyFormat.CSV
    assert batch.header == ["id", "name", "note"]
    assert batch.rows == [
        {"id": "1", "name": "Zoë"},
        {"id": "2", "name": "two\nlines", "note": "hi"},
        {"id": "3"},  # fewer cells than columns: the rest are empty
    ]
    assert batch.lines == [2, 4, 6]  # each row's first line
    assert batch.location(2) == RecordLocation(2, 6)


def test_csv_bom_and_header_only() -> None:
    batch = csv_records(b"\xef\xbb\xbfa,b\n")
    assert (batch.header, batch.rows) == (["a", "b"], [])


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        (b"", 1, "header"),
        (b"a,,b\n1,2,3\n", 1, "empty column name"),
        (b"a,b,a\n", 1, "repeats a"),
        (b"a,b\n1,2\n1,2,3\n", 3, "3 cells"),
        (b'a,b\n1,"x"y\n', 2, "invalid CSV"),
        (b"a,b\n1,\xff\n", 2, "UTF-8"),
    ],
)
def test_csv_errors_name_the_line(body: bytes, line: int, words: str) -> None:
    error = unparseable(body, CSV)
    assert error.line == line
    assert words in error.message


def test_csv_cells_may_exceed_the_csv_modules_default_limit() -> None:
    big = "x" * 200_000
    assert csv_records(f"a\n{big}\n".encode()).rows == [{"a": big}]


def test_csv_row_too_large_names_the_line() -> None:
    body = b"a,b\n1,2\n3," + "é".encode() * 40 + b"\n"
    with pytest.raises(RecordTooLarge) as caught:
        parse_body(body, CSV, max_record_bytes=60)  # 40 characters, 80 bytes
    assert caught.value.details() == {"index": 1, "limit_bytes": 60, "line": 3}


# --- Content-Encoding ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        (None, lambda data: data),
        ("identity", lambda data: data),
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("GZip", gzip.compress),
        ("deflate", zlib.compress),
        ("gzip, identity", gzip.compress),
        ("deflate, gzip", lambda data: gzip.compress(zlib.compress(data))),
        ("gzip", lambda data: gzip.compress(data[:5]) + gzip.compress(data[5:])),  # 2 members
    ],
)
def test_content_encodings(encoding: str | None, compress: object) -> None:
    body = b'[{"a": 1}, {"a": 2}]'
    sent = compress(body)  # type: ignore[operator]
    assert raw(json_records_encoded(sent, encoding)) == [b'{"a": 1}', b'{"a": 2}']


def json_records_encoded(body: bytes, encoding: str | None) -> JsonRecords:
    batch = parse_body(body, JSON, encoding)
    assert isinstance(batch, JsonRecords)
    return batch


@pytest.mark.parametrize("encoding", ["br", "compress", "zstd"])
def test_unsupported_encodings_are_named(encoding: str) -> None:
    if encoding == "zstd" and bodies._ZSTD is not None:
        pytest.skip("this Python's standard library reads zstd")
    with pytest.raises(UnsupportedMediaType) as caught:
        parse_body(b"{}", JSON, encoding)
    assert caught.value.details() == {"encoding": encoding}
    assert repr(encoding) in caught.value.message


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"not gzip at all", "invalid gzip"),
        (gzip.compress(b'{"a": 1}')[:-12], "truncated gzip"),
        (gzip.compress(b'{"a": 1}') + b"trailing junk", "invalid gzip"),
    ],
)
def test_bad_gzip_is_unparseable(body: bytes, words: str) -> None:
    with pytest.raises(BodyUnparseable, match=words):
        parse_body(body, JSON, "gzip")


def test_decompressed_size_is_capped_exactly() -> None:
    data = b"x" * 1000
    assert decode_content(gzip.compress(data), "gzip", max_bytes=1000) == data
    with pytest.raises(BodyTooLarge) as caught:
        decode_content(gzip.compress(data), "gzip", max_bytes=999)
    assert caught.value.details() == {"limit_bytes": 999}
    with pytest.raises(BodyTooLarge):
        decode_content(data, None, max_bytes=999)  # an uncompressed body too


def test_gzip_bomb_is_refused_without_inflating_it() -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1 << 20)
    bomb = b"".join(compressor.compress(chunk) for _ in range(256)) + compressor.flush()
    assert len(bomb) < 300_000  # 256 MiB of zeros
    cap = 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLarge):
            parse_body(bomb, JSON, "gzip", max_body_bytes=cap)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * cap  # the cap and the compressed input, not the 256 MiB


def test_many_gzip_members_share_one_cap() -> None:
    member = gzip.compress(b" " * 600)
    with pytest.raises(BodyTooLarge):
        decode_content(member * 2, "gzip", max_bytes=1000)


# The records cap (issue #10, item 2): checked while parsing, in steps.


def test_a_gzip_bomb_of_tiny_ndjson_records_stops_at_the_cap() -> None:
    """14.6 KB of gzip inflating to 1.25M records held a worker for 30-57 s: parsing now stops at
    the first record over the cap, and never holds the records it did not need."""
    bomb = gzip.compress(b'{"a":1}\n' * 1_250_000, 9)
    assert len(bomb) < 20_000
    tracemalloc.start()
    try:
        with pytest.raises(TooManyRecords) as caught:
            parse_body(bomb, NDJSON, "gzip", max_records=100_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.details() == {"limit_records": 100_000, "line": 100_001}
    assert "more than 100000 records" in caught.value.message
    assert peak < 40 << 20  # the 10 MB body (and its inflated parts), not 1.25M parsed records


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"[" + b",".join([b"{}"] * 11) + b"]", JSON),
        (b"{}\n\n" * 11, NDJSON),
        (b"a\n" + b"1\n\n" * 11, CSV),
    ],
)
def test_every_format_counts_records_against_the_cap(body: bytes, content_type: str) -> None:
    assert len(parse_body(body, content_type, max_records=11)) == 11
    with pytest.raises(TooManyRecords):
        parse_body(body, content_type, max_records=10)


def test_a_large_json_array_is_capped_while_it_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    body = b"[" + b",".join([b"0"] * 5_000_000) + b"]"  # 10 MB: the smallest records there are
    taken = 0
    try:
        for _ in parse_steps(body, JSON, max_records=100_000):
            taken += 1
    except TooManyRecords:
        pass
    else:
        pytest.fail("not refused")
    # Refused within the first megabyte or so, not after 5M records.
    assert taken < (1 << 20) // STEP_BYTES + 2
    monkeypatch.setattr(bodies, "STEP_BYTES", 64)
    assert len(parse_body(body[:2000] + b"]", JSON)) == 1000


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet=',[]{}"\\ :a\u00e9', max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=12,
)


@given(
    items=st.lists(_JSON_VALUES, max_size=30),
    spacing=st.sampled_from([b"", b" ", b"\n\t "]),
    cut=st.integers(min_value=0),
    junk=st.sampled_from([b"", b",", b"]", b"[", b'"', b"x", b",,"]),
)
def test_a_json_array_parsed_in_slices_is_the_array_parsed_at_once(
    items: list[object], spacing: bytes, cut: int, junk: bytes
) -> None:
    """Any JSON array (or a broken one) gives the same records, or the same error, in slices."""
    body = b"[" + (b"," + spacing).join(msgspec.json.encode(item) for item in items) + b"]"
    if junk:
        at = cut % len(body)
        body = body[:at] + junk + body[at:]
    expected: list[bytes] | int
    try:
        expected = [bytes(r) for r in json_records(body).records]
    except BodyUnparseable as exc:
        expected = exc.offset or -1
    setattr(bodies, "STEP_BYTES", 8)  # noqa: B010 - every item its own slice, slices retried
    try:
        got: list[bytes] | int = [bytes(r) for r in json_records(body).records]
    except BodyUnparseable as exc:
        got = exc.offset or -1
    finally:
        setattr(bodies, "STEP_BYTES", STEP_BYTES)  # noqa: B010
    assert got == expected


def test_a_single_json_object_is_known_to_be_one_record_before_parsing() -> None:
    assert known_record_count(b' {"id": 1}', JSON, None) == 1
    assert known_record_count(b"\xef\xbb\xbf{", "application/cloudevents+json", "identity") == 1
    assert known_record_count(b"[{}]", JSON, None) is None
    assert known_record_count(b"{}", NDJSON, None) is None
    assert known_record_count(b"{}", JSON, "gzip") is None
    assert known_record_count(b"{}", "text/plain", None) is None
    assert known_record_count(b"  ", JSON, None) is None


# A compressed body over the records cap stops inflating (issue #10, item 2).


def test_a_compressed_ndjson_body_over_the_records_cap_is_not_inflated_to_its_end() -> None:
    # Truncated far past the cap: inflated to the end, the body would be "truncated gzip data".
    body = gzip.compress(b'{"a":1}\n' * 200_000)[:-1000]
    with pytest.raises(TooManyRecords) as caught:
        parse_body(body, NDJSON, "gzip", max_records=1000)
    assert caught.value.details() == {"limit_records": 1000, "line": 1001}  # as parsed whole
    # And a bomb past the byte cap is refused for its records before it is inflated that far.
    with pytest.raises(TooManyRecords):
        parse_body(gzip.compress(b"{}\n" * 2_000_000), NDJSON, "gzip", max_records=1000)


def test_a_compressed_csv_body_over_the_records_cap_is_not_inflated_to_its_end() -> None:
    body = gzip.compress(b"a,b\n" + b"".join(b"%d,2\n" % i for i in range(200_000)))[:-1000]
    with pytest.raises(TooManyRecords) as caught:
        parse_body(body, CSV, "gzip", max_records=1000)
    assert caught.value.details() == {"limit_records": 1000, "line": 1002}


@pytest.mark.parametrize(
    ("body", "content_type", "records"),
    [
        (b"\n" * 5000 + b"{}\n" * 5, NDJSON, 5),  # more lines than the cap, few records
        (b"a\n" + b'"1\n' + b"\n" * 5000 + b'2"\n' + b"3\n", CSV, 2),  # a cell of 5,000 lines
    ],
)
def test_lines_that_are_not_records_do_not_count_against_the_cap(
    body: bytes, content_type: str, records: int
) -> None:
    assert len(parse_body(gzip.compress(body), content_type, "gzip", max_records=10)) == records


def test_an_error_before_the_cap_is_still_the_error_it_was() -> None:
    body = b'{"a":1}\n{"a":\n' + b'{"a":1}\n' * 5000
    with pytest.raises(BodyUnparseable) as caught:
        parse_body(gzip.compress(body), NDJSON, "gzip", max_records=10)
    assert caught.value.line == 2
