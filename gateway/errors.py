"""The gateway's own domain errors. They know nothing of HTTP.

Errors about single records are not exceptions: the codec returns them as ``RecordError`` values
(codes in ``RecordErrorCode``), so one bad record never fails a batch by itself. The caller raises
``RecordsInvalid`` or ``AllRecordsInvalid`` when its policy says the batch fails. Errors about a
body are the codec's (``inlet/codec/errors.py``); ``KafkaUnavailable`` is shared
(``inlet/errors.py``). The one table that maps them all to HTTP is ``gateway/_http_errors.py``.
"""

from __future__ import annotations

import msgspec

from inlet.codec.errors import RecordTooLarge
from inlet.errors import InletError, KafkaUnavailable
from inlet.records import RecordError


class RecordsInvalid(InletError):
    """Some records are invalid and the caller's policy refuses the batch for it."""

    def __init__(
        self, errors: list[RecordError], message: str | None = None, *, unexamined: int = 0
    ) -> None:
        records = len({error.index for error in errors}) + unexamined
        super().__init__((message or f"{records} record(s) are invalid") + _unexamined(unexamined))
        self.errors = errors
        self.rejected = records
        self.unexamined = unexamined
        self.max_listed = 100  # a huge bad batch must not make a huge answer

    def details(self) -> dict[str, object]:
        found: dict[str, object] = {
            "accepted": 0,
            "rejected": self.rejected,
            "errors": msgspec.to_builtins(self.errors[: self.max_listed]),
            "errors_total": len(self.errors),
        }
        if self.unexamined:
            found["unexamined"] = self.unexamined
        return found


class AllRecordsInvalid(RecordsInvalid):
    """Every record of the batch is invalid: nothing was produced."""

    def __init__(
        self, errors: list[RecordError], message: str | None = None, *, unexamined: int = 0
    ) -> None:
        super().__init__(errors, message or "every record is invalid", unexamined=unexamined)


def _unexamined(count: int) -> str:
    if not count:
        return ""
    return (
        f"; errors_total counts the errors of the records examined: {count} more invalid "
        "records were counted, not examined"
    )


class RejectedRecordTooLarge(RecordTooLarge):
    """An invalid record that cannot be kept: as a rejected record (the record as sent, with its
    reasons) it is larger than a Kafka record may be. The request is refused whole, before any of
    its records was produced, rather than written without it."""

    def __init__(
        self, index: int, limit_bytes: int, *, size: int, errors: list[RecordError]
    ) -> None:
        line = errors[0].line if errors else None
        super().__init__(index, limit_bytes, line=line)
        where = f"record {index}" if line is None else f"record {index} (line {line})"
        self.message = (
            f"{where} is invalid and cannot be kept: as a rejected record it is {size:,} bytes, "
            f"over the {limit_bytes:,} a Kafka record may hold; nothing of the request was written"
        )
        self.args = (self.message,)
        self.errors = errors

    def details(self) -> dict[str, object]:
        return {**super().details(), "errors": msgspec.to_builtins(self.errors[:100])}


class UnknownToken(InletError):
    """The ingest token names no connector (or a deleted one)."""

    def __init__(self, message: str = "unknown ingest token") -> None:
        super().__init__(message)


class RateLimited(InletError):
    """The connector sent more than its rate allows; retry after ``retry_after_s`` seconds."""

    retryable = True

    def __init__(self, retry_after_s: float, message: str = "rate limit exceeded") -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def details(self) -> dict[str, object]:
        return {"retry_after_s": self.retry_after_s}


class InProgress(InletError):
    """An idempotency key of the request is held by another attempt still in flight (the first
    delivery, on this or another gateway instance): nothing was written; retry after
    ``retry_after_s``, when that attempt was accepted (the retry is answered ``duplicate``) or
    gave the key up (the retry is processed afresh)."""

    retryable = True

    def __init__(self, keys: int, retry_after_s: float) -> None:
        super().__init__(
            f"{keys} idempotency key(s) of the request are held by a delivery still in flight; "
            "nothing was written"
        )
        self.retry_after_s = retry_after_s

    def details(self) -> dict[str, object]:
        return {"retry_after_s": self.retry_after_s}


class ClientDisconnected(InletError):
    """The client went away before its request's body was complete: nothing was done, and no
    answer reaches it (counted and logged as 499, nginx's "client closed request")."""

    def __init__(self) -> None:
        super().__init__("the client disconnected before the body was complete")


class BatchExceedsBurst(InletError):
    """A request holds more records than the connector's rate limit lets through at once (its
    burst): waiting never helps; smaller requests do."""

    def __init__(self, records: int, burst: float) -> None:
        super().__init__(
            f"the batch of {records} records exceeds the connector's burst of {burst:g} records "
            f"(rate_limit_per_s): send at most {int(burst)} records a request"
        )
        self.records = records
        self.burst = burst

    def details(self) -> dict[str, object]:
        return {"records": self.records, "burst": self.burst}


class Overloaded(KafkaUnavailable):
    """The producer's local queue is full: Kafka takes records slower than they come (a stalled
    broker, or more traffic than the cluster writes). Refused at once, never waited out; answered
    as ``KafkaUnavailable`` is (503, ``Retry-After``), with its own code so the two are told apart.
    Records of the request queued before the queue filled may still be written."""


class SignatureMissing(InletError):
    """The connector verifies signatures and the request carries none (or not the headers its
    scheme signs with). Nothing was read or written."""

    def __init__(self, header: str) -> None:
        super().__init__(f"the request is not signed: no {header} header")
        self.header = header

    def details(self) -> dict[str, object]:
        return {"header": self.header}


class SignatureInvalid(InletError):
    """No signature on the request matches the body with any of the connector's secrets, or the
    signature header cannot be read. Nothing was read or written."""

    def __init__(self, message: str = "no signature matches the body") -> None:
        super().__init__(message)


class TimestampOutOfTolerance(InletError):
    """A validly signed request whose signed timestamp is too far from now: a replay, or a
    sender's clock that is off. Nothing was written."""

    def __init__(self, tolerance_s: int) -> None:
        super().__init__(
            f"the signed timestamp is more than {tolerance_s} s from the gateway's clock"
        )
        self.tolerance_s = tolerance_s

    def details(self) -> dict[str, object]:
        return {"tolerance_s": self.tolerance_s}


class SignatureKeysUnavailable(InletError):
    """The connector's secrets cannot be opened here: the gateway runs with another
    ``INLET_SECRET_KEY`` than the registry that sealed them. The operator's to fix; the sender
    should retry (nothing was written)."""

    retryable = True

    def __init__(self) -> None:
        super().__init__("the connector's signature secrets cannot be opened (INLET_SECRET_KEY)")
        self.retry_after_s = 30.0

    def details(self) -> dict[str, object]:
        return {"retry_after_s": self.retry_after_s}


class EnvelopeInvalid(InletError):
    """The body is not the envelope its connector's senders use (``gateway/envelopes.py``): a
    member missing or of the wrong type, data that is not base64 or not JSON. ``problems`` name
    where (``records[1].data``, ``message.data``, ``[0].id``, the ``ce-id`` header)."""

    error_code = 40001


class FirehoseRefused(Exception):
    """A delivery to a ``firehose`` connector refused for ``cause``: answered with the status
    ``cause`` has, in Firehose's error body (``requestId``, ``timestamp``, ``errorMessage``)."""

    def __init__(self, cause: Exception, request_id: str) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.request_id = request_id
