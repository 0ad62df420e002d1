"""The one table that turns exceptions into HTTP answers, for the whole registry app.

Two dialects, chosen by path. The admin API (everything under ``/v1/``) and the console's
routes (``/console/``, whose scripts read the API's problems) answer RFC 9457
``application/problem+json``; every other path is the Confluent-compatible API, which answers
``{"error_code", "message"}`` the way Confluent Schema Registry does, so its clients understand it.
Handlers raise domain errors and never build error responses themselves. A browser asking for a
console page without a session is sent to the sign-in page instead of a 401; any other failure of
a console URL a browser navigates to (its ``Accept`` names ``text/html``: a link, the address bar,
a form) is the same problem rendered as a small HTML page with the same status
(``registry/console/error_page.py``), while the pages' scripts, which ask for JSON, keep getting
problem+json.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.response import Redirect
from litestar.types import ExceptionHandlersMap

from inlet.errors import InletError, Problem, snake_case
from inlet.problems import problem_response
from registry._media import CONFLUENT_MEDIA_TYPE, asks_for_html
from registry.console.error_page import error_page
from registry.console.session import sign_in_location
from registry.errors import SignInRequired

ADMIN_PATH_PREFIX = "/v1/"
CONSOLE_PATH_PREFIX = "/console/"

_log = logging.getLogger(__name__)


class _Failure(msgspec.Struct, frozen=True):
    """What went wrong, in terms both dialects can render."""

    status: int
    error_code: int  # Confluent's
    code: str  # Inlet's
    message: str
    problems: list[Problem] = msgspec.field(default_factory=list)
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    extra: dict[str, object] = msgspec.field(default_factory=dict)


def status_of(error: type[InletError] | InletError) -> int:
    """The status an error is answered with: its Confluent number's first three digits."""
    number = error.error_code
    return number // 100 if number >= 10000 else number  # 40401 → 404; 409 stays 409


def answers_retry_after(error: type[InletError] | InletError) -> bool:
    """Whether the answer to ``error`` carries ``Retry-After``."""
    return error.retryable and status_of(error) == 503


def _on_inlet_error(request: Request[Any, Any, Any], exc: InletError) -> Response[Any]:
    number = exc.error_code
    status = status_of(exc)
    retry_after = math.ceil(getattr(exc, "retry_after_s", 1))
    headers = {"Retry-After": str(max(1, retry_after))} if answers_retry_after(exc) else {}
    failure = _Failure(status, number, exc.code, exc.message, exc.problems, headers, exc.details())
    return _render(request, failure)


def _on_sign_in_required(request: Request[Any, Any, Any], exc: SignInRequired) -> Response[Any]:
    if request.method in {"GET", "HEAD"} and asks_for_html(request.headers.get("accept")):
        return Redirect(sign_in_location(exc.wanted), status_code=303)
    return _on_inlet_error(request, exc)


def _on_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    headers = dict(exc.headers or {})
    if isinstance(exc, ValidationException):
        problems = (
            [_problem(item) for item in exc.extra or []] if isinstance(exc.extra, list) else []
        )
        failure = _Failure(422, 422, "validation_failed", exc.detail, problems, headers)
    elif exc.status_code == 400:
        # Litestar's "JSON is malformed": Confluent answers unreadable bodies with 422.
        status = 400 if _is_admin(request) else 422
        failure = _Failure(status, status, "malformed_request", exc.detail, [], headers)
    else:
        if exc.status_code >= 500:
            _log.error(
                "HTTP %s on %s %s", exc.status_code, request.method, request.url.path, exc_info=exc
            )
        code = snake_case(type(exc).__name__.removesuffix("Exception")) or "http_error"
        failure = _Failure(exc.status_code, exc.status_code, code, exc.detail, [], headers)
    return _render(request, failure)


def _on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    # The client learns only that it failed; the details go to the log.
    _log.error("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _render(request, _Failure(500, 500, "internal_error", "Internal server error"))


def _render(request: Request[Any, Any, Any], failure: _Failure) -> Response[Any]:
    if _is_console(request) and asks_for_html(request.headers.get("accept")):
        return error_page(
            request.url.path,
            failure.status,
            failure.code,
            failure.message,
            problems=failure.problems,
            headers=failure.headers,
        )
    if _is_admin(request):
        return problem_response(
            failure.status,
            failure.code,
            failure.message,
            failure.problems,
            headers=failure.headers,
            **failure.extra,
        )
    body = {"error_code": failure.error_code, "message": _confluent_message(failure)}
    return Response(
        content=body,
        status_code=failure.status,
        media_type=CONFLUENT_MEDIA_TYPE,
        headers=failure.headers,
    )


def _confluent_message(failure: _Failure) -> str:
    # Confluent's body has no place for per-field problems, so they join the message.
    details = "; ".join(f"{p.field}: {p.reason}" for p in failure.problems)
    return f"{failure.message}: {details}" if details else failure.message


def _problem(item: object) -> Problem:
    if isinstance(item, dict):
        return Problem(field=str(item.get("key", "")), reason=str(item.get("message", "")))
    return Problem(field="", reason=str(item))


def _is_console(request: Request[Any, Any, Any]) -> bool:
    return (request.url.path + "/").startswith(CONSOLE_PATH_PREFIX)


def _is_admin(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.startswith(ADMIN_PATH_PREFIX) or _is_console(request)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    SignInRequired: _on_sign_in_required,
    InletError: _on_inlet_error,
    HTTPException: _on_http_exception,
    Exception: _on_unexpected,
}
