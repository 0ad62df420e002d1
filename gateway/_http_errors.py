"""The one table that turns the gateway's errors into HTTP answers (``application/problem+json``).

Every body names a stable ``code`` (``inlet/problems.py``); record errors list index, JSON
Pointer, field and reason. Unexpected exceptions are logged and answered with a bare 500
problem: never a traceback.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandler, ExceptionHandlersMap

from gateway.errors import AllRecordsInvalid, RateLimited, RecordsInvalid, UnknownToken
from inlet.codec.errors import (
    BodyTooLarge,
    BodyUnparseable,
    RecordTooLarge,
    TooDeeplyNested,
    UnsupportedMediaType,
)
from inlet.errors import (
    InletError,
    KafkaRecordTooLarge,
    KafkaRefused,
    KafkaUnavailable,
    StateUnavailable,
)
from inlet.problems import problem_response

_log = logging.getLogger("inlet.gateway")

STATUS: dict[type[InletError], int] = {
    BodyUnparseable: 400,
    UnsupportedMediaType: 415,
    BodyTooLarge: 413,
    RecordTooLarge: 413,
    TooDeeplyNested: 400,
    RecordsInvalid: 422,
    AllRecordsInvalid: 422,
    UnknownToken: 404,
    RateLimited: 429,
    KafkaUnavailable: 503,
    StateUnavailable: 503,
    # Permanent: retrying cannot help, so no 503 and no Retry-After (inlet/kafka_errors.py).
    KafkaRecordTooLarge: 413,
    KafkaRefused: 500,  # Inlet's credentials, a topic deleted outside Inlet: the operator's
}


def status_of(exc: InletError) -> int:
    """The table's status for ``exc``: its own class's, else the nearest base's, else 500."""
    return next((STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS), 500)


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


def _on_http_exception(_request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    code = {
        404: "not_found",
        405: "method_not_allowed",
        413: BodyTooLarge.code,
    }.get(exc.status_code, "http_error")
    return problem_response(exc.status_code, code, exc.detail)


def _on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    _log.error("unhandled error", extra={"method": request.method}, exc_info=exc)
    return problem_response(500, "internal_error", "internal server error")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    InletError: _on_inlet_error,
    HTTPException: _on_http_exception,
    Exception: _on_unexpected,
}


def handler_for(exc: Exception) -> ExceptionHandler[Any]:
    """The table's handler for ``exc``, found as Litestar finds it: the nearest class in its MRO.

    For code that answers errors itself, outside Litestar's exception middleware (``_fast_path``).
    """
    return next(EXCEPTION_HANDLERS[cls] for cls in type(exc).__mro__ if cls in EXCEPTION_HANDLERS)
