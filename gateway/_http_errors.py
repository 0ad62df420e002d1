"""The one table that turns the gateway's errors into HTTP answers (``application/problem+json``).

Every body names a stable ``code`` (``inlet/problems.py``); record errors list index, JSON
Pointer, field and reason. Unexpected exceptions are logged and answered with a bare 500
problem: never a traceback. No answer quotes the request's path or query: the path holds the
ingest token (``/v1/ingest/<token>``), and Litestar's own details quote both.
"""

from __future__ import annotations

import logging
import math
import re
import time
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandler, ExceptionHandlersMap

from gateway.envelopes import firehose_error
from gateway.errors import (
    AllRecordsInvalid,
    BatchExceedsBurst,
    ClientDisconnected,
    EnvelopeInvalid,
    FirehoseRefused,
    InProgress,
    RateLimited,
    RecordsInvalid,
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
    KafkaRecordTooLarge,
    KafkaRefused,
    KafkaUnavailable,
    Problem,
    StateUnavailable,
)
from inlet.problems import problem_response

_log = logging.getLogger("inlet.gateway")
# A value Litestar's validation messages quote ("Invalid enum value 'bogus'"): the client's, which
# may be anything (even its token), of any length.
_QUOTED = re.compile(r"\s*'.*'", re.DOTALL)

STATUS: dict[type[InletError], int] = {
    BodyUnparseable: 400,
    UnsupportedMediaType: 415,
    BodyTooLarge: 413,
    RecordTooLarge: 413,
    TooManyRecords: 413,
    TooDeeplyNested: 400,
    RecordsInvalid: 422,
    AllRecordsInvalid: 422,
    UnknownToken: 404,
    EnvelopeInvalid: 400,
    SignatureMissing: 401,
    SignatureInvalid: 401,
    TimestampOutOfTolerance: 401,
    SignatureKeysUnavailable: 503,  # the operator's keys differ: the sender should retry
    RateLimited: 429,
    BatchExceedsBurst: 429,
    InProgress: 409,  # the first delivery of the key is still in flight
    ClientDisconnected: 499,  # nginx's "client closed request": no answer reaches the client
    KafkaUnavailable: 503,
    StateUnavailable: 503,
    # Permanent: retrying cannot help, so no 503 and no Retry-After (inlet/kafka_errors.py).
    KafkaRecordTooLarge: 413,
    KafkaRefused: 500,  # Inlet's credentials, a topic deleted outside Inlet: the operator's
}


# The codes of the errors Litestar raises itself (routing, its parameter checks, its body cap).
HTTP_CODES: dict[int, str] = {
    404: "not_found",
    405: "method_not_allowed",
    413: BodyTooLarge.code,
}
HTTP_CODE_OTHERWISE = "http_error"


def status_of(exc: InletError | type[InletError]) -> int:
    """The table's status for ``exc``: its own class's, else the nearest base's, else 500."""
    cls = exc if isinstance(exc, type) else type(exc)
    return next((STATUS[c] for c in cls.__mro__ if c in STATUS), 500)


def _on_inlet_error(_request: Request[Any, Any, Any], exc: InletError) -> Response[Any]:
    status = status_of(exc)
    if not any(cls in STATUS for cls in type(exc).__mro__):
        _log.error("domain error without a status", extra={"code": exc.code}, exc_info=exc)
    elif status >= 500 and not exc.retryable:
        _log.error("permanent failure", extra={"code": exc.code, "detail": exc.message})
    retry_after = getattr(exc, "retry_after_s", None)
    headers = {} if retry_after is None else {"Retry-After": str(max(1, math.ceil(retry_after)))}
    return problem_response(
        status, exc.code, exc.message, exc.problems, headers=headers, **exc.details()
    )


def _on_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, ValidationException):
        return _on_invalid_parameters(exc)
    code = HTTP_CODES.get(exc.status_code, HTTP_CODE_OTHERWISE)
    # Litestar's own headers stay: a 405's ``Allow`` names the methods the path takes.
    return problem_response(
        exc.status_code,
        code,
        _without_path(exc, request.scope["path"]),
        headers=dict(exc.headers or {}),
    )


def _without_path(exc: HTTPException, path: str) -> str:
    """Litestar's detail, unless it names the path: then the status's phrase says it all."""
    if len(path) <= 1 or path not in exc.detail:
        return exc.detail
    try:
        return HTTPStatus(exc.status_code).phrase
    except ValueError:
        return "refused"


def _on_invalid_parameters(exc: ValidationException) -> Response[Any]:
    """Litestar's "Validation failed for POST <path>?<query>", said without path or values."""
    problems = [
        Problem(
            field=str(item.get("key", "")),
            reason=_QUOTED.sub("", str(item.get("message", "")))[:200] or "invalid",
        )
        for item in (exc.extra if isinstance(exc.extra, list) else [])
        if isinstance(item, dict)
    ]
    named = ", ".join(p.field for p in problems if p.field) or "the request's parameters"
    return problem_response(400, "validation_failed", f"invalid query parameter: {named}", problems)


def _on_firehose_refused(request: Request[Any, Any, Any], exc: FirehoseRefused) -> Response[Any]:
    """The answer the cause would have, with its status and Retry-After, in Firehose's error body
    (its members: ``requestId``, ``timestamp``, ``errorMessage``): Firehose counts any other body
    as a failed delivery too, but logs only ``errorMessage``."""
    cause = exc.cause
    answer = handler_for(cause)(request, cause)
    status = answer.status_code or 500
    if isinstance(cause, InletError):
        where = "; ".join(f"{p.field}: {p.reason}" for p in cause.problems[:5])
        message = f"{cause.code}: {cause.message}" + (f" ({where})" if where else "")
    elif isinstance(cause, HTTPException):
        message = f"{HTTP_CODES.get(status, HTTP_CODE_OTHERWISE)}: {_without_path(cause, '')}"
    else:
        message = "internal_error: internal server error"
    headers = {k: v for k, v in answer.headers.items() if k.lower() in ("retry-after", "allow")}
    now_ms = time.time_ns() // 1_000_000
    return Response(
        firehose_error(exc.request_id, now_ms, message),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    _log.error("unhandled error", extra={"method": request.method}, exc_info=exc)
    return problem_response(500, "internal_error", "internal server error")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    FirehoseRefused: _on_firehose_refused,
    InletError: _on_inlet_error,
    HTTPException: _on_http_exception,
    Exception: _on_unexpected,
}


def handler_for(exc: Exception) -> ExceptionHandler[Any]:
    """The table's handler for ``exc``, found as Litestar finds it: the nearest class in its MRO.

    For code that answers errors itself, outside Litestar's exception middleware (``_fast_path``).
    """
    return next(EXCEPTION_HANDLERS[cls] for cls in type(exc).__mro__ if cls in EXCEPTION_HANDLERS)
