"""The ingest routes' hot path: a plain ASGI dispatcher in front of the gateway's Litestar app.

``IngestDispatcher`` looks at each scope once, with one predicate (``plain_ingest``): a plain ingest
request is answered here, with no Litestar request, response or router per request; anything else
(other paths and methods, query strings other than ``mode``, odd paths or headers, lifespan) goes
to the Litestar app unchanged, whose ingest routes answer the same requests the same way (the
parity is a unit test: ``tests/unit/test_fast_path.py``). Errors are answered by the app's one
exception table (``_http_errors.py``), as Litestar's exception middleware would; every answer gets
the security headers (``inlet/security_headers.py``), as Litestar's ``before_send`` hook adds them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec
from litestar import Request
from litestar.enums import ScopeType
from litestar.exceptions.http_exceptions import RequestEntityTooLarge

from gateway._http_errors import handler_for
from gateway.errors import ClientDisconnected
from inlet.security_headers import SECURITY_HEADERS, add_security_headers
from inlet.tokens import presented_token

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from gateway.envelopes import FirehoseAnswer
    from gateway.ingest import IngestResult

INGEST_PATH = "/v1/ingest"
_TOKEN_PREFIX = INGEST_PATH + "/"

# The route's logic: (token, read_body, headers, mode) -> (result, request id); raises on errors.
IngestCall = Callable[
    [str | None, Callable[[], Awaitable[bytes]], dict[str, str], str | None],
    Awaitable[tuple["IngestResult | FirehoseAnswer", str]],
]

# The query strings the routes' one parameter can take without Litestar's validation.
_MODES: dict[bytes, str | None] = {b"": None, b"mode=atomic": "atomic", b"mode=partial": "partial"}
# Host values Litestar's router accepts (a strict subset of its own check): others go through it.
_PLAIN_HOST = re.compile(rb"\A[0-9A-Za-z.:\[\]-]*\Z")
_encoder = msgspec.json.Encoder()


class PlainIngest(NamedTuple):
    """An ingest request the fast path may answer, as ``plain_ingest`` read it."""

    path_token: str  # "": ``POST /v1/ingest``, the token is in ``Authorization``
    mode: str | None
    headers: dict[str, str]  # by lower-case name; a repeated header keeps its first value
    length: int | None  # Content-Length, if given

    @property
    def token(self) -> str | None:
        return self.path_token or presented_token(self.headers.get("authorization"))


def _path_token(path: str) -> str | None:
    """``<token>`` for ``/v1/ingest/<token>``, ``""`` for ``/v1/ingest``, None for other paths."""
    if path == INGEST_PATH:
        return ""
    if not path.startswith(_TOKEN_PREFIX):
        return None
    token = path[len(_TOKEN_PREFIX) :]
    return token if token and "/" not in token else None


def plain_ingest(scope: Scope) -> PlainIngest | None:
    """``scope`` as a request Litestar would route, as is, to an ingest handler; else None.

    That is: HTTP ``POST`` to exactly ``/v1/ingest`` or ``/v1/ingest/<token>`` (no root path, no
    trailing or doubled slash: nothing for the router to normalise), a query string that is empty
    or exactly ``mode=atomic`` / ``mode=partial`` (anything else is Litestar's parameter
    validation), a well-formed ``Content-Length`` if any, and ``Host`` values the router accepts.
    """
    if scope["type"] != ScopeType.HTTP or scope["method"] != "POST" or scope.get("root_path"):
        return None
    path_token = _path_token(scope["path"])
    mode = _MODES.get(scope["query_string"], "?")
    if path_token is None or mode == "?":
        return None
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        if name == b"host" and not _PLAIN_HOST.match(value):
            return None
        headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    length = headers.get("content-length")
    if length is not None and not (length.isascii() and length.isdigit()):
        return None
    return PlainIngest(path_token, mode, headers, None if length is None else int(length))


class FastIngest:
    """Answers a ``PlainIngest`` request: ``call`` does the work, this does the HTTP."""

    def __init__(self, call: IngestCall, max_body_bytes: int) -> None:
        self.call = call
        # Litestar's own cap (``request_max_body_size``), with its meaning of 0: no cap.
        self._max_body = max_body_bytes or math.inf

    async def __call__(
        self, request: PlainIngest, scope: Scope, receive: Receive, send: Send
    ) -> None:
        async def read_body() -> bytes:
            return await self._read_body(receive, request.length)

        try:
            result, request_id = await self.call(
                request.token, read_body, request.headers, request.mode
            )
        except Exception as exc:  # noqa: BLE001 - answered by the table, as Litestar would
            await _answer_error(scope, receive, send, exc)
            return
        body = _encoder.encode(result)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"x-request-id", request_id.encode("latin-1")),
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *SECURITY_HEADERS,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _read_body(self, receive: Receive, announced: int | None) -> bytes:
        """The whole body, refusing (413) as soon as it is known to exceed the cap (as Litestar)."""
        limit = self._max_body
        if announced is not None and announced > limit:
            raise RequestEntityTooLarge
        chunks: list[bytes] = []
        total = 0
        while True:
            event: Any = await receive()
            if event["type"] == "http.request":
                chunk = event.get("body", b"")
                if chunk:
                    total += len(chunk)
                    if total > limit:
                        raise RequestEntityTooLarge
                    chunks.append(chunk)
                if not event.get("more_body", False):
                    return b"".join(chunks)
            elif event["type"] == "http.disconnect":
                raise ClientDisconnected


async def _answer_error(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    """What Litestar's exception middleware does for an error raised before the response starts."""
    request: Request[Any, Any, Any] = Request(scope, receive, send)
    response = handler_for(exc)(request, exc)

    async def send_secured(message: Message) -> None:
        await add_security_headers(message, scope)
        await send(message)

    await response.to_asgi_response(app=None, request=request)(scope, receive, send_secured)


class IngestDispatcher:
    """The gateway's ASGI app: plain ingest requests to ``fast``, everything else to ``app``."""

    def __init__(self, app: ASGIApp, fast: FastIngest) -> None:
        self.app = app
        self.fast = fast

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = plain_ingest(scope)
        if request is None:
            await self.app(scope, receive, send)
        else:
            await self.fast(request, scope, receive, send)
