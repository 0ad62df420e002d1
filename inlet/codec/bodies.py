"""Request bodies into raw records: JSON, NDJSON or CSV, maybe gzip-compressed.

Nothing here knows the connector's fields. JSON and NDJSON records stay ``msgspec.Raw`` slices of
the body (validated as JSON, not yet typed), so the codec decodes each one once, straight into its
Struct, and a rejected record can be kept byte for byte. CSV rows become ``{column: cell}`` dicts of
strings, leaving out empty cells (an empty cell is an absent value).

Limits: the body (after decompression) and each record have a byte cap, and a body a cap on its
records, checked as each record is found: a body over it is refused without parsing the rest.
Decompression never inflates more than the byte cap (plus one byte) into memory, whatever the
compressed size; an NDJSON or CSV body stops inflating once what it inflated so far holds more
records than the cap (``_past_the_cap``), so a compressed body that is refused for its record
count costs about what its first records cost.

``parse_steps`` does the work in steps (``steps.py``) so that an event loop can serve other
requests while a large body is parsed; ``parse_body`` does it at once.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import math
import re
import zlib
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Final, NamedTuple

import msgspec

from inlet.codec.errors import (
    BodyTooLarge,
    BodyUnparseable,
    RecordTooLarge,
    TooDeeplyNested,
    TooManyRecords,
    UnsupportedMediaType,
)
from inlet.codec.steps import STEP_BYTES, STEP_RECORDS, Steps, run

DEFAULT_MAX_BODY_BYTES: Final = 10 * 1024 * 1024
DEFAULT_MAX_RECORD_BYTES: Final = 1024 * 1024
DEFAULT_MAX_RECORDS: Final = 100_000

# The body-size cap already bounds memory; csv's own limit (128 KiB a cell, process-wide) would
# only turn a large but allowed cell into a confusing parse error.
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))


class BodyFormat(StrEnum):
    JSON = "json"
    NDJSON = "ndjson"
    CSV = "csv"


_MEDIA_TYPES: Final = {
    "application/json": BodyFormat.JSON,
    "application/x-ndjson": BodyFormat.NDJSON,
    "application/ndjson": BodyFormat.NDJSON,
    "application/jsonl": BodyFormat.NDJSON,
    "application/x-jsonlines": BodyFormat.NDJSON,
    "text/csv": BodyFormat.CSV,
}
_SUPPORTED_TEXT: Final = "application/json, application/x-ndjson, application/jsonl, text/csv"

_UTF8_BOM: Final = b"\xef\xbb\xbf"
_NON_WHITESPACE = re.compile(rb"[^ \t\r\n]")  # JSON's whitespace
_MSGSPEC_BYTE = re.compile(r"\s*\(byte (\d+)\)$")

_RAW = msgspec.json.Decoder(msgspec.Raw)
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])

# zstd is in the standard library from Python 3.14 (compression.zstd); never a dependency.
_ZSTD: Any = (
    importlib.import_module("compression.zstd")
    if importlib.util.find_spec("compression") is not None
    and importlib.util.find_spec("compression.zstd") is not None
    else None
)


class RecordLocation(msgspec.Struct, frozen=True, omit_defaults=True):
    """Where a record came from: its 0-based index, and its 1-based first line when known."""

    index: int
    line: int | None = None


class JsonRecords(msgspec.Struct, frozen=True):
    """Records of a JSON or NDJSON body; ``lines[i]`` is record i's line (NDJSON only)."""

    format: BodyFormat
    records: list[msgspec.Raw]
    lines: list[int] | None = None
    body_bytes: int = 0  # what the records were parsed from (the codec sizes its steps by it)

    def __len__(self) -> int:
        return len(self.records)

    def location(self, index: int) -> RecordLocation:
        return RecordLocation(index, None if self.lines is None else self.lines[index])


class CsvRecords(msgspec.Struct, frozen=True):
    """Rows of a CSV body as ``{column: cell}`` without empty cells; ``lines[i]`` is row i's
    first line. ``header`` holds every column name, in order."""

    header: list[str]
    rows: list[dict[str, str]]
    lines: list[int]
    body_bytes: int = 0

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def format(self) -> BodyFormat:
        return BodyFormat.CSV

    def location(self, index: int) -> RecordLocation:
        return RecordLocation(index, self.lines[index])


RecordBatch = JsonRecords | CsvRecords


def body_format(content_type: str | None) -> BodyFormat:
    """The body format a Content-Type names, parameters (``; charset=utf-8``) ignored."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    found = _MEDIA_TYPES.get(media_type)
    if found is None and media_type.startswith("application/") and media_type.endswith("+json"):
        found = BodyFormat.JSON  # structured suffix (RFC 6839): application/cloudevents+json
    if found is None:
        shown = repr(media_type) if media_type else "no Content-Type"
        raise UnsupportedMediaType(
            f"unsupported media type {shown}; send one of {_SUPPORTED_TEXT}",
            media_type=media_type or None,
        )
    return found


def decode_content(
    body: bytes, content_encoding: str | None, *, max_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> bytes:
    """Undo the Content-Encoding (gzip, deflate, identity; zstd where the stdlib has it).

    Raises BodyTooLarge when the result would exceed ``max_bytes``, never holding more than that.
    """
    return run(_decode_content(body, content_encoding, max_bytes))


def decode_content_steps(body: bytes, content_encoding: str | None, max_bytes: int) -> Steps[bytes]:
    """``decode_content`` in steps (``steps.py``)."""
    return _decode_content(body, content_encoding, max_bytes)


class PrefixCheck(NamedTuple):
    """What tells, from the start of a body still inflating, that it is over the records cap:
    ``parse`` raises ``TooManyRecords`` for a start (whole lines) that holds more records than the
    cap; it is worth calling once more than ``lines`` lines came."""

    lines: int
    parse: Callable[[bytes], Steps[None]]


def _decode_content(
    body: bytes, content_encoding: str | None, max_bytes: int, check: PrefixCheck | None = None
) -> Steps[bytes]:
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    for number, coding in reversed(list(enumerate(codings))):  # in the order they were applied
        last = check if number == 0 else None  # what this one inflates is the body itself
        if coding == "identity":
            continue
        if coding in {"gzip", "x-gzip"}:
            body = yield from _inflate(body, 16 + zlib.MAX_WBITS, max_bytes, "gzip", last)
        elif coding == "deflate":
            # zlib-wrapped (RFC 9110)
            body = yield from _inflate(body, zlib.MAX_WBITS, max_bytes, "deflate", last)
        elif coding == "zstd" and _ZSTD is not None:
            body = _unzstd(body, max_bytes)
        else:
            raise UnsupportedMediaType(
                f"unsupported Content-Encoding {coding!r}; send gzip, deflate or identity",
                encoding=coding,
            )
    if len(body) > max_bytes:
        raise BodyTooLarge(max_bytes)
    return body


def parse_body(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None = None,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    max_records: int = DEFAULT_MAX_RECORDS,
) -> RecordBatch:
    """The raw records of a request body.

    JSON: one object, or an array whose items are the records. NDJSON: one record per line, blank
    lines ignored. CSV: a header row naming the fields, then one record per row. Items that are not
    objects are kept: the codec reports them per record.
    """
    return run(
        parse_steps(
            body,
            content_type,
            content_encoding,
            max_body_bytes=max_body_bytes,
            max_record_bytes=max_record_bytes,
            max_records=max_records,
        )
    )


def parse_steps(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None = None,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    max_records: int = DEFAULT_MAX_RECORDS,
) -> Steps[RecordBatch]:
    """``parse_body`` in steps (``steps.py``)."""
    kind = body_format(content_type)  # before decompressing: refuse cheaply
    check = None
    if kind is not BodyFormat.JSON:  # (a JSON array's items are not counted as cheaply)

        def past_the_cap(prefix: bytes) -> Steps[None]:
            return _past_the_cap(kind, prefix, max_record_bytes, max_records)

        # One record a line at most (a CSV header line and rows that span lines have fewer).
        check = PrefixCheck(max_records + 1, past_the_cap)
    body = yield from _decode_content(body, content_encoding, max_body_bytes, check)
    if kind is BodyFormat.CSV:
        return (yield from _parse_csv(body, max_record_bytes, max_records))
    skipped = 0
    if body.startswith(_UTF8_BOM):  # RFC 8259 lets a parser ignore it
        body, skipped = body[len(_UTF8_BOM) :], len(_UTF8_BOM)
    _require_utf8(body, skipped)  # msgspec checks UTF-8 only where it decodes a string
    if kind is BodyFormat.NDJSON:
        return (yield from _parse_ndjson(body, max_record_bytes, max_records, skipped))
    return (yield from _parse_json(body, max_record_bytes, max_records, skipped))


def known_record_count(
    body: bytes, content_type: str | None, content_encoding: str | None
) -> int | None:
    """How many records the body holds if that is known without parsing it, else None.

    A plain JSON body that is not an array is one record (or none, if it does not parse): what a
    rate limit may charge before the body costs anything.
    """
    if (content_encoding or "identity").strip().lower() != "identity":
        return None
    try:
        if body_format(content_type) is not BodyFormat.JSON:
            return None
    except UnsupportedMediaType:
        return None
    first = _NON_WHITESPACE.search(body[len(_UTF8_BOM) :] if body.startswith(_UTF8_BOM) else body)
    return None if first is None or first[0] == b"[" else 1


def _inflate(
    data: bytes, wbits: int, max_bytes: int, coding: str, check: PrefixCheck | None
) -> Steps[bytes]:
    """``data`` inflated, ``STEP_BYTES`` a step. With ``check``: once the lines inflated so far
    outnumber the records cap, their records are counted (``_past_the_cap``), again each time
    the lines double, so that a body over the cap is not inflated to its end."""
    parts: list[bytes] = []
    total = 0
    inflater = zlib.decompressobj(wbits)
    lines, check_at = 0, math.inf if check is None else check.lines
    while True:
        try:
            part = inflater.decompress(data, min(STEP_BYTES, max_bytes - total + 1))
        except zlib.error as exc:
            raise BodyUnparseable(f"invalid {coding} data: {exc}") from exc
        total += len(part)
        if total > max_bytes:
            raise BodyTooLarge(max_bytes)
        parts.append(part)
        lines += part.count(b"\n")
        if lines > check_at and check is not None:
            parts = [b"".join(parts)]
            yield from check.parse(parts[0][: parts[0].rfind(b"\n") + 1])
            check_at = 2 * lines
        if inflater.eof:
            data = inflater.unused_data
            if not data:
                return b"".join(parts)
            inflater = zlib.decompressobj(wbits)  # a gzip body may hold several members
        else:
            data = inflater.unconsumed_tail
            if not data and not part:
                raise BodyUnparseable(f"truncated {coding} data")
        yield


def _unzstd(data: bytes, max_bytes: int) -> bytes:  # pragma: no cover - Python 3.14+
    decompressor = _ZSTD.ZstdDecompressor()
    try:
        result: bytes = decompressor.decompress(data, max_length=max_bytes + 1)
    except _ZSTD.ZstdError as exc:
        raise BodyUnparseable(f"invalid zstd data: {exc}") from exc
    if len(result) > max_bytes:
        raise BodyTooLarge(max_bytes)
    if not decompressor.eof:
        raise BodyUnparseable("truncated zstd data")
    return result


def _past_the_cap(
    kind: BodyFormat, prefix: bytes, max_record_bytes: int, max_records: int
) -> Steps[None]:
    """Raises ``TooManyRecords`` if ``prefix``, the start of a body cut after a newline, holds more
    records than ``max_records``: the whole body is refused with the same error, at the same line.

    Any other error in the start is left to the whole body's parse (a CSV cut inside a quoted cell
    is unparseable only here). So a body refused this way could otherwise have been refused for a
    byte further on, invalid UTF-8, or inflating past the byte cap; its records make it too large
    either way.
    """
    try:
        if kind is BodyFormat.CSV:
            yield from _parse_csv(prefix, max_record_bytes, max_records)
        else:
            skipped = len(_UTF8_BOM) if prefix.startswith(_UTF8_BOM) else 0
            _require_utf8(prefix[skipped:], skipped)
            yield from _parse_ndjson(prefix[skipped:], max_record_bytes, max_records, skipped)
    except TooManyRecords:
        raise
    except (BodyUnparseable, RecordTooLarge, TooDeeplyNested):
        return


def _require_utf8(body: bytes, skipped: int) -> None:
    if body.isascii():  # the common case, and far cheaper than decoding
        return
    try:
        body.decode()
    except UnicodeDecodeError as exc:
        raise _unparseable(body, exc.start, "invalid UTF-8", skipped) from exc


def _parse_json(
    body: bytes, max_record_bytes: int, max_records: int, skipped: int
) -> Steps[JsonRecords]:
    first = _NON_WHITESPACE.search(body)
    try:
        if first is not None and first[0] == b"[":
            records = yield from _json_items(body, first.start(), max_records)
        else:
            records = [_RAW.decode(body)]
    except RecursionError as exc:
        raise TooDeeplyNested from exc
    except msgspec.DecodeError as exc:
        raise _from_msgspec(body, exc, skipped) from exc
    if len(body) > max_record_bytes:  # else no record can be too large
        for index, record in enumerate(records):
            if len(record) > max_record_bytes:
                raise RecordTooLarge(index, max_record_bytes)
    return JsonRecords(BodyFormat.JSON, records, body_bytes=len(body))


def _json_items(body: bytes, start: int, max_records: int) -> Steps[list[msgspec.Raw]]:
    """The items of the array at ``body[start]``, decoded a slice of about ``STEP_BYTES`` at a time
    so that the count is checked as they come (and the loop gets its turns).

    A slice ends at a comma and is decoded as ``[`` + slice + ``]``. That is valid JSON only when
    the comma separates two items of the array: a comma inside an item leaves that item's string,
    array or object open in the slice, and one ``]`` cannot close it and the array both. A slice
    that does not decode is retried twice as long; at the end of the body, a failure is the body's,
    and the whole body is decoded once more so that the error names its true position.
    """
    end = body.rindex(b"]") if body.rstrip(b" \t\r\n").endswith(b"]") else -1
    if end == -1 or end - start <= STEP_BYTES:
        return _at_most(_RAW_LIST.decode(body), max_records)
    records = []
    position, size = start + 1, STEP_BYTES
    while True:
        cut = body.find(b",", position + size, end)
        items = _whole_items(body[position : end if cut == -1 else cut])
        if items is None:
            if cut == -1:  # the body's own error, named at its position by the whole decode
                return _at_most(_RAW_LIST.decode(body), max_records)
            size *= 2
            continue
        records += items
        if len(records) > max_records:
            raise TooManyRecords(max_records)
        if cut == -1:
            return records
        position, size = cut + 1, STEP_BYTES
        yield


def _at_most(records: list[msgspec.Raw], max_records: int) -> list[msgspec.Raw]:
    if len(records) > max_records:
        raise TooManyRecords(max_records)
    return records


def _whole_items(piece: bytes) -> list[msgspec.Raw] | None:
    """The items of ``piece`` when it is a run of whole array items, else None."""
    if not piece.strip(b" \t\r\n"):  # "[1,,2]" and "[1,]" are not JSON, though "[]" is
        return None
    try:
        return _RAW_LIST.decode(b"[" + piece + b"]")
    except msgspec.DecodeError:
        return None


def _parse_ndjson(
    body: bytes, max_record_bytes: int, max_records: int, skipped: int
) -> Steps[JsonRecords]:
    records: list[msgspec.Raw] = []
    lines: list[int] = []
    line_start, line_number, size = 0, 0, len(body)
    next_step = STEP_BYTES
    while line_start <= size:
        line_end = body.find(b"\n", line_start)
        if line_end == -1:
            line_end = size
        line = body[line_start:line_end]
        line_number += 1
        if line and not line.isspace():
            if len(records) == max_records:
                raise TooManyRecords(max_records, line=line_number)
            if len(line) > max_record_bytes:
                raise RecordTooLarge(len(records), max_record_bytes, line=line_number)
            try:
                records.append(_RAW.decode(line))
            except RecursionError as exc:
                raise TooDeeplyNested(line=line_number) from exc
            except msgspec.DecodeError as exc:
                raise _from_msgspec(body, exc, skipped, line_start) from exc
            lines.append(line_number)
        line_start = line_end + 1
        if line_start >= next_step or line_number % STEP_RECORDS == 0:
            next_step = line_start + STEP_BYTES
            yield
    return JsonRecords(BodyFormat.NDJSON, records, lines, body_bytes=size)


def _parse_csv(body: bytes, max_record_bytes: int, max_records: int) -> Steps[CsvRecords]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _unparseable(body, exc.start, "invalid UTF-8", 0) from exc
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = _csv_header(next(reader, None))
        rows: list[dict[str, str]] = []
        lines: list[int] = []
        line = reader.line_num + 1  # where the next row starts
        step = 0
        for cells in reader:
            if cells:  # a blank line
                if len(rows) == max_records:
                    raise TooManyRecords(max_records, line=line)
                if len(cells) > len(header):
                    message = f"CSV row has {len(cells)} cells; the header names {len(header)}"
                    raise BodyUnparseable(message, line=line)
                row_size = _csv_row_size(cells, max_record_bytes)
                if row_size > max_record_bytes:
                    raise RecordTooLarge(len(rows), max_record_bytes, line=line)
                rows.append({name: cell for name, cell in zip(header, cells, strict=False) if cell})
                lines.append(line)
                step += row_size + len(cells)
                if step >= STEP_BYTES or len(rows) % STEP_RECORDS == 0:
                    step = 0
                    yield
            line = reader.line_num + 1
    except csv.Error as exc:
        raise BodyUnparseable(f"invalid CSV: {exc}", line=reader.line_num) from exc
    return CsvRecords(header, rows, lines, body_bytes=len(body))


def _csv_header(cells: list[str] | None) -> list[str]:
    if not cells:
        raise BodyUnparseable("a CSV body needs a header row naming the fields", line=1)
    header = [cell.strip() for cell in cells]  # "id, name" means "name"
    if not all(header):
        raise BodyUnparseable("the CSV header has an empty column name", line=1)
    if len(set(header)) != len(header):
        duplicates = sorted({name for name in header if header.count(name) > 1})
        raise BodyUnparseable(f"the CSV header repeats {', '.join(duplicates)}", line=1)
    return header


def _csv_row_size(cells: list[str], max_record_bytes: int) -> int:
    characters = sum(map(len, cells))
    if characters * 4 <= max_record_bytes:  # a character is at most 4 UTF-8 bytes
        return characters
    return sum(len(cell.encode()) for cell in cells)


def _from_msgspec(
    body: bytes, exc: msgspec.DecodeError, skipped: int, line_start: int = 0
) -> BodyUnparseable:
    reason = str(exc)
    found = _MSGSPEC_BYTE.search(reason)
    if found is not None:
        return _unparseable(body, line_start + int(found[1]), reason[: found.start()], skipped)
    if reason == "Input data was truncated":  # msgspec's word for "ended too early"
        end = body.find(b"\n", line_start)
        offset = len(body) if end == -1 else end
        # msgspec says so too for a bad \u escape, which it finds only later in a string
        return _unparseable(body, offset, "incomplete JSON (or a bad \\u escape)", skipped)
    return BodyUnparseable(f"invalid JSON: {reason}")


def _unparseable(body: bytes, offset: int, reason: str, skipped: int) -> BodyUnparseable:
    line = body.count(b"\n", 0, offset) + 1
    column = offset - (body.rfind(b"\n", 0, offset) + 1) + 1
    message = f"{reason} at line {line}, column {column}"
    return BodyUnparseable(message, offset=offset + skipped, line=line, column=column)
