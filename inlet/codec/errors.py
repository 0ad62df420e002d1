"""Errors about a whole request body, raised while reading it (``inlet/codec/bodies.py``).

They know nothing of HTTP; the gateway's table maps them to 400, 413 and 415. ``error_code``, in
the Confluent scheme the registry's table reads its statuses from, says the same for the admin
API, which reads example bodies (``POST /v1/connectors/infer-fields``). Errors about single
records are not exceptions: the codec returns them as ``RecordError`` values (``inlet/records.py``).
"""

from __future__ import annotations

from inlet.errors import InletError


class BodyUnparseable(InletError):
    """The body is not valid JSON, NDJSON, CSV or gzip. Positions are 0-based bytes, 1-based
    lines and columns (columns count bytes), each None when unknown."""

    error_code = 400

    def __init__(
        self,
        message: str,
        *,
        offset: int | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.offset = offset
        self.line = line
        self.column = column

    def details(self) -> dict[str, object]:
        position = {"offset": self.offset, "line": self.line, "column": self.column}
        return {name: value for name, value in position.items() if value is not None}


class UnsupportedMediaType(InletError):
    """A Content-Type or Content-Encoding the gateway does not read."""

    error_code = 415

    def __init__(
        self, message: str, *, media_type: str | None = None, encoding: str | None = None
    ) -> None:
        super().__init__(message)
        self.media_type = media_type
        self.encoding = encoding

    def details(self) -> dict[str, object]:
        given = {"media_type": self.media_type, "encoding": self.encoding}
        return {name: value for name, value in given.items() if value is not None}


class BodyTooLarge(InletError):
    """The body, after decompression, is larger than the limit."""

    error_code = 413

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"the body is larger than {limit_bytes} bytes (after decompression)")
        self.limit_bytes = limit_bytes

    def details(self) -> dict[str, object]:
        return {"limit_bytes": self.limit_bytes}


class RecordTooLarge(InletError):
    """One record is larger than the per-record limit; the whole batch is refused."""

    error_code = 413

    def __init__(self, index: int, limit_bytes: int, *, line: int | None = None) -> None:
        where = f"record {index}" if line is None else f"record {index} (line {line})"
        super().__init__(f"{where} is larger than {limit_bytes} bytes")
        self.index = index
        self.limit_bytes = limit_bytes
        self.line = line

    def details(self) -> dict[str, object]:
        found: dict[str, object] = {"index": self.index, "limit_bytes": self.limit_bytes}
        if self.line is not None:
            found["line"] = self.line
        return found


class TooDeeplyNested(InletError):
    """JSON nested deeper than the parser's recursion limit (about 1000 levels): a JSON or NDJSON
    body, or the JSON of a CSV cell (``index`` and ``field`` then say whose)."""

    error_code = 400

    def __init__(
        self, *, line: int | None = None, index: int | None = None, field: str | None = None
    ) -> None:
        where = [
            part
            for part in (
                None if index is None else f"record {index}",
                None if field is None else f"field {field!r}",
                None if line is None else f"line {line}",
            )
            if part
        ]
        shown = f" ({', '.join(where)})" if where else ""
        super().__init__(f"the JSON is nested too deeply{shown}")
        self.line = line
        self.index = index
        self.field = field

    def details(self) -> dict[str, object]:
        found = {"index": self.index, "field": self.field, "line": self.line}
        return {name: value for name, value in found.items() if value is not None}


class TooManyRecords(InletError):
    """The body holds more records than one request may (``INLET_MAX_RECORDS_PER_REQUEST``).
    Found while parsing: the records past the limit are never parsed, ``line`` (NDJSON, CSV) is
    where the first record over it starts."""

    error_code = 413

    def __init__(self, limit: int, *, line: int | None = None) -> None:
        where = "" if line is None else f" (record {limit} starts at line {line})"
        super().__init__(
            f"the body holds more than {limit} records{where}; send at most {limit} a request"
        )
        self.limit = limit
        self.line = line

    def details(self) -> dict[str, object]:
        found: dict[str, object] = {"limit_records": self.limit}
        if self.line is not None:
            found["line"] = self.line
        return found
