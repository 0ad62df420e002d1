"""The one table that turns the gateway's errors into HTTP answers (``application/problem+json``).

Every body names a stable ``code``; record errors list index, JSON Pointer, field and reason.
Unexpected exceptions are logged and answered with a bare 500 problem: never a traceback.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandler, ExceptionHandlersMap

from gateway.errors import ErrorCode, GatewayError

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://inlet.dev/problems/"

_log = logging.getLogger("inlet.gateway")

STATUS: dict[ErrorCode, int] = {
    ErrorCode.BODY_UNPARSEABLE: 400,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.BODY_TOO_LARGE: 413,
    ErrorCode.RECORD_TOO_LARGE: 413,
    ErrorCode.TOO_DEEPLY_NESTED: 400,
    ErrorCode.RECORDS_INVALID: 422,
    ErrorCode.ALL_RECORDS_INVALID: 422,
    ErrorCode.UNKNOWN_TOKEN: 404,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.KAFKA_UNAVAILABLE: 503,
}


def problem(status: int, code: str, detail: str, **extra: object) -> Response[Any]:
    body = {
        "type": PROBLEM_TYPE_BASE + code.replace("_", "-"),
        "title": code.replace("_", " ").capitalize(),
        "status": status,
        "code": code,
        "detail": detail,
        **extra,
    }
    return Response(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE)


def _on_gateway_error(_request: Request[Any, Any, Any], exc: GatewayError) -> Response[Any]:
    status = STATUS[exc.code]
    response = problem(status, exc.code.value, exc.message, **exc.details())
    retry_after = getattr(exc, "retry_after_s", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return response


def _on_http_exception(_request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    code = {
        404: "not_found",
        405: "method_not_allowed",
        413: ErrorCode.BODY_TOO_LARGE.value,
    }.get(exc.status_code, "http_error")
    return problem(exc.status_code, code, exc.detail)


def _on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    _log.error("unhandled error", extra={"method": request.method}, exc_info=exc)
    return problem(500, "internal_error", "internal server error")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    GatewayError: _on_gateway_error,
    HTTPException: _on_http_exception,
    Exception: _on_unexpected,
}


def handler_for(exc: Exception) -> ExceptionHandler[Any]:
    """The table's handler for ``exc``, found as Litestar finds it: the nearest class in its MRO.

    For code that answers errors itself, outside Litestar's exception middleware (``_asgi_ingest``).
    """
    return next(EXCEPTION_HANDLERS[cls] for cls in type(exc).__mro__ if cls in EXCEPTION_HANDLERS)
