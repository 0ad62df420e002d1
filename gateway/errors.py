"""Domain errors of the gateway. They know nothing of HTTP.

Each error carries a stable string ``code`` (``ErrorCode``) and says whether the sender may retry.
``details()`` gives the extra members an error response should carry (a position, a limit, the
record errors). The one table that maps these to HTTP lives with the gateway's app.

Errors about single records are not exceptions: the codec returns them as ``RecordError`` values
(codes in ``RecordErrorCode``), so one bad record never fails a batch by itself. The caller raises
``RecordsInvalid`` or ``AllRecordsInvalid`` when its policy says the batch fails.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

import msgspec

from inlet.records import RecordError


class ErrorCode(StrEnum):
    """Codes of the gateway's domain errors; stable, part of the API."""

    BODY_UNPARSEABLE = "body_unparseable"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    BODY_TOO_LARGE = "body_too_large"
    RECORD_TOO_LARGE = "record_too_large"
    TOO_DEEPLY_NESTED = "too_deeply_nested"
    RECORDS_INVALID = "records_invalid"
    ALL_RECORDS_INVALID = "all_records_invalid"
    UNKNOWN_TOKEN = "unknown_token"  # noqa: S105 - an error code, not a secret
    RATE_LIMITED = "rate_limited"
    KAFKA_UNAVAILABLE = "kafka_unavailable"


class GatewayError(Exception):
    """Base of the gateway's domain errors; ``retryable`` says whether a retry may succeed."""

    code: ClassVar[ErrorCode]
    retryable: ClassVar[bool] = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> dict[str, object]:
        """Extra members for the error response; empty when the message says it all."""
        return {}


class BodyUnparseable(GatewayError):
    """The body is not valid JSON, NDJSON, CSV or gzip. Positions are 0-based bytes, 1-based
    lines and columns (columns count bytes), each None when unknown."""

    code = ErrorCode.BODY_UNPARSEABLE

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


class UnsupportedMediaType(GatewayError):
    """A Content-Type or Content-Encoding the gateway does not read."""

    code = ErrorCode.UNSUPPORTED_MEDIA_TYPE

    def __init__(
        self, message: str, *, media_type: str | None = None, encoding: str | None = None
    ) -> None:
        super().__init__(message)
        self.media_type = media_type
        self.encoding = encoding

    def details(self) -> dict[str, object]:
        given = {"media_type": self.media_type, "encoding": self.encoding}
        return {name: value for name, value in given.items() if value is not None}


class BodyTooLarge(GatewayError):
    """The body, after decompression, is larger than the limit."""

    code = ErrorCode.BODY_TOO_LARGE

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"the body is larger than {limit_bytes} bytes (after decompression)")
        self.limit_bytes = limit_bytes

    def details(self) -> dict[str, object]:
        return {"limit_bytes": self.limit_bytes}


class RecordTooLarge(GatewayError):
    """One record is larger than the per-record limit; the whole batch is refused."""

    code = ErrorCode.RECORD_TOO_LARGE

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


class TooDeeplyNested(GatewayError):
    """JSON nested deeper than the parser's recursion limit (about 1000 levels)."""

    code = ErrorCode.TOO_DEEPLY_NESTED

    def __init__(self, *, line: int | None = None) -> None:
        where = "" if line is None else f" (line {line})"
        super().__init__(f"the JSON is nested too deeply{where}")
        self.line = line

    def details(self) -> dict[str, object]:
        return {} if self.line is None else {"line": self.line}


class RecordsInvalid(GatewayError):
    """Some records are invalid and the caller's policy refuses the batch for it."""

    code = ErrorCode.RECORDS_INVALID

    def __init__(self, errors: list[RecordError], message: str | None = None) -> None:
        records = len({error.index for error in errors})
        super().__init__(message or f"{records} record(s) are invalid")
        self.errors = errors
        self.rejected = records
        self.max_listed = 100  # a huge bad batch must not make a huge answer

    def details(self) -> dict[str, object]:
        return {
            "accepted": 0,
            "rejected": self.rejected,
            "errors": msgspec.to_builtins(self.errors[: self.max_listed]),
            "errors_total": len(self.errors),
        }


class AllRecordsInvalid(RecordsInvalid):
    """Every record of the batch is invalid: nothing was produced."""

    code = ErrorCode.ALL_RECORDS_INVALID

    def __init__(self, errors: list[RecordError], message: str | None = None) -> None:
        super().__init__(errors, message or "every record is invalid")


class UnknownToken(GatewayError):
    """The ingest token names no connector (or a deleted one)."""

    code = ErrorCode.UNKNOWN_TOKEN

    def __init__(self, message: str = "unknown ingest token") -> None:
        super().__init__(message)


class RateLimited(GatewayError):
    """The connector sent more than its rate allows; retry after ``retry_after_s`` seconds."""

    code = ErrorCode.RATE_LIMITED
    retryable = True

    def __init__(self, retry_after_s: float, message: str = "rate limit exceeded") -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def details(self) -> dict[str, object]:
        return {"retry_after_s": self.retry_after_s}


class KafkaUnavailable(GatewayError):
    """Kafka did not take the records; nothing of the batch is acknowledged."""

    code = ErrorCode.KAFKA_UNAVAILABLE
    retryable = True

    def __init__(self, retry_after_s: float, message: str = "Kafka is unavailable") -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def details(self) -> dict[str, object]:
        return {"retry_after_s": self.retry_after_s}
