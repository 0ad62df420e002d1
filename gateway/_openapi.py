"""The gateway's OpenAPI document: the ingest URL as both ways in answer it.

Litestar documents the ingest routes from their handlers in ``app.py``; the fast path
(``_fast_path.py``) answers the same requests the same way, so one document describes both.
What Litestar cannot see is added here: the bodies the routes read (they read raw bytes, parsed
by ``inlet/codec/bodies.py``), the ``X-Request-Id`` they answer with, and their errors, from
``INGEST_ERRORS`` with the statuses of the app's error table (``_http_errors.STATUS``), every one
an ``application/problem+json`` body.
"""

from __future__ import annotations

from typing import Any

from gateway._http_errors import HTTP_CODES, status_of
from gateway.errors import (
    AllRecordsInvalid,
    BatchExceedsBurst,
    EnvelopeInvalid,
    InProgress,
    Overloaded,
    RateLimited,
    RecordsInvalid,
    RejectedRecordTooLarge,
    SignatureInvalid,
    SignatureKeysUnavailable,
    SignatureMissing,
    TimestampOutOfTolerance,
    UnknownToken,
)
from inlet.codec.errors import (
    BodyTooLarge,
    BodyUnparseable,
    RecordTooLarge,
    TooDeeplyNested,
    TooManyRecords,
    UnsupportedMediaType,
)
from inlet.errors import (
    InletError,
    KafkaNotAuthorized,
    KafkaRecordTooLarge,
    KafkaRefused,
    KafkaTopicMissing,
    KafkaUnavailable,
    StateUnavailable,
)
from inlet.openapi import (
    PROBLEM_SCHEMA,
    Document,
    ErrorAnswer,
    add_schemas,
    document_errors,
    operations,
)

# What an ingest request may be answered besides 200, whichever way the token comes.
INGEST_ERRORS: tuple[type[InletError], ...] = (
    BodyUnparseable,
    TooDeeplyNested,
    EnvelopeInvalid,
    UnknownToken,
    SignatureMissing,
    SignatureInvalid,
    TimestampOutOfTolerance,
    SignatureKeysUnavailable,
    BodyTooLarge,
    RecordTooLarge,
    TooManyRecords,
    RejectedRecordTooLarge,
    KafkaRecordTooLarge,
    UnsupportedMediaType,
    RecordsInvalid,
    AllRecordsInvalid,
    RateLimited,
    BatchExceedsBurst,
    InProgress,
    KafkaNotAuthorized,
    KafkaTopicMissing,
    KafkaRefused,
    KafkaUnavailable,
    Overloaded,
    StateUnavailable,
)
INGEST_OPERATIONS = {("POST", "/v1/ingest/{token}"), ("POST", "/v1/ingest")}

_RECORD: dict[str, Any] = {
    "type": "object",
    "description": "One record: the connector's fields by the names it was created with",
}
REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "description": (
        "Records to write, checked against the connector's schema. JSON (`application/json` or "
        "any `application/*+json`): one object or an array of objects. NDJSON "
        "(`application/x-ndjson`, `application/ndjson`, `application/jsonl`, "
        "`application/x-jsonlines`): one object a line. CSV (`text/csv`): a header line naming "
        "fields, then one record a line. `Content-Encoding: gzip` (or `deflate`) is read; the "
        "body's size after decompression is capped (413 `body_too_large`). A connector with "
        "an `envelope` takes its senders' envelope instead (`firehose`: an Amazon Data Firehose "
        "delivery request, answered `{requestId, timestamp}` or, on failure, with "
        "`errorMessage` too; `pubsub-push`: a Pub/Sub push request; `cloudevents`: structured, "
        "batched or binary CloudEvents 1.0); a malformed one is 400 `envelope_invalid`. A "
        "connector with `dedup` reads each request's idempotency key (a header, a JSON Pointer "
        "into each record, or the envelope's ids): a key accepted within the window is answered "
        "200 with `duplicate`/`duplicates` and not written again; a key whose first delivery is "
        "still in flight is 409 `in_progress` with `Retry-After`."
    ),
    "content": {
        "application/json": {
            "schema": {"oneOf": [_RECORD, {"type": "array", "items": _RECORD}]},
        },
        "application/x-ndjson": {
            "schema": {"type": "string", "description": "one JSON object a line"},
        },
        "text/csv": {
            "schema": {"type": "string", "description": "a header line, then a record a line"},
        },
    },
}
REQUEST_ID_HEADER: dict[str, Any] = {
    "description": "The request's id, as written into every record's Kafka headers",
    "schema": {"type": "string"},
}


def _answers() -> list[ErrorAnswer]:
    answers = [
        ErrorAnswer(status_of(error), error.code, retry_after=error.retryable)
        for error in INGEST_ERRORS
    ]
    # Litestar's own checks: ``mode`` not one of its values, and its cap on the raw body.
    answers.append(ErrorAnswer(400, "validation_failed"))
    answers.append(ErrorAnswer(413, HTTP_CODES[413]))
    # The server's, before the app (``deploy/_connections.py``): a head or body too slow, a head
    # too large, and a connection over the process's cap.
    answers.append(ErrorAnswer(408, "request_timeout"))
    answers.append(ErrorAnswer(431, "request_header_fields_too_large"))
    answers.append(ErrorAnswer(503, "too_many_connections", retry_after=True))
    return answers


def complete(document: Document) -> None:
    """Add the ingest routes' bodies, headers and errors to ``document`` (Litestar's)."""
    served = {(method, path) for method, path, _ in operations(document)}
    if served != INGEST_OPERATIONS:
        raise RuntimeError(f"gateway/_openapi.py documents {INGEST_OPERATIONS}, served {served}")
    add_schemas(document, {"Problem": PROBLEM_SCHEMA})
    for _method, _path, operation in operations(document):
        operation["requestBody"] = REQUEST_BODY
        responses = operation.setdefault("responses", {})
        responses.pop("400", None)  # Litestar's generic ValidationException body
        responses["200"].setdefault("headers", {})["X-Request-Id"] = REQUEST_ID_HEADER
        document_errors(operation, _answers())
