"""The ingest routes' hot path as plain ASGI: no Litestar request or response objects per request.

Only the common request takes it: ``POST``, no query string or exactly ``mode=atomic|partial``, and
no ``Content-Length`` or a well-formed one. Anything else (other methods, ``OPTIONS``, other query
strings) is handed, untouched, to ``fallback``: the same routes served by Litestar handlers, so
those answers (405, parameter validation) stay Litestar's own. Errors are answered by the app's one
exception table (``_http_errors.py``), exactly as Litestar's exception middleware would.

``GatewayApp`` goes one step further for the hot path: a request for an ingest path that Litestar's
router would take unchanged (plain path, unremarkable ``Host``) skips the router and its middleware.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Litestar, Request
from litestar.enums import ScopeType
from litestar.exceptions import InternalServerException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge

from gateway._http_errors import handler_for
from inlet.tokens import presented_token

if TYPE_CHECKING:
    from litestar.types import Receive, Scope, Send

    from gateway.ingest import IngestResult

# The route's logic: (token, read_body, headers, mode) -> (result, request id); raises on errors.
IngestCall = Callable[
    [str | None, Callable[[], Awaitable[bytes]], dict[str, str], str | None],
    Awaitable[tuple["IngestResult", str]],
]

# The mount's own path: Litestar hands the mount the path below it ("/" or "/<token>/").
MOUNT_PATH = "/v1/ingest"

_MODES: dict[bytes, str | None] = {b"": None, b"mode=atomic": "atomic", b"mode=partial": "partial"}
_encoder = msgspec.json.Encoder()


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers by (lower-case) name; a repeated header keeps its first value."""
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return headers


class AsgiIngest:
    """Both ingest routes, mounted at ``MOUNT_PATH``: the fast path for plain POSTs.

    (A mount, not two routes: Litestar does not parse path parameters for ASGI routes.)
    """

    def __init__(self, call: IngestCall, fallback: Litestar, max_body_bytes: int) -> None:
        self._call = call
        self._fallback = fallback
        # Litestar's own cap (``request_max_body_size``), with its meaning of 0: no cap.
        self._max_body = max_body_bytes or math.inf

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # As a mount, the path is the part below it: "/" or "/<token>/"; "x/" for "/v1/ingestx".
        await self.handle(scope, scope["path"].rstrip("/"), receive, send)

    async def handle(self, scope: Scope, below: str, receive: Receive, send: Send) -> None:
        """Answer one request; ``below`` is the path after ``MOUNT_PATH``, no trailing slash."""
        mode = _MODES.get(scope.get("query_string", b""), "?")
        headers = _headers(scope)
        length = headers.get("content-length")
        if (
            scope["type"] != ScopeType.HTTP
            or scope["method"] != "POST"
            or mode == "?"
            or (below and (below[0] != "/" or "/" in below[1:]))
            or (length is not None and not (length.isascii() and length.isdigit()))
        ):
            # The path Litestar routed (normalised: no trailing slash), with the mount put back.
            scope["path"] = MOUNT_PATH + below
            await self._fallback(scope, receive, send)
            return
        token = below[1:] or presented_token(headers.get("authorization"))

        async def read_body() -> bytes:
            return await self._read_body(receive, None if length is None else int(length))

        try:
            result, request_id = await self._call(token, read_body, headers, mode)
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
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _read_body(self, receive: Receive, announced: int | None) -> bytes:
        """The whole body, refusing (413) as soon as it is known to exceed the cap."""
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
                raise InternalServerException("client disconnected prematurely")


async def _answer_error(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    """What Litestar's exception middleware does for an error raised before the response starts."""
    request: Request[Any, Any, Any] = Request(scope, receive, send)
    response = handler_for(exc)(request, exc)
    await response.to_asgi_response(app=None, request=request)(scope, receive, send)


# Host values Litestar's router accepts (a strict subset of its own check): others go through it.
_PLAIN_HOST = re.compile(rb"\A[0-9A-Za-z.:\[\]-]*\Z")


class GatewayApp(Litestar):
    """The gateway's Litestar app, with plain ingest requests sent straight to ``fast_ingest``."""

    fast_ingest: AsgiIngest | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        ingest = self.fast_ingest
        if ingest is not None and scope["type"] == ScopeType.HTTP and not scope.get("root_path"):
            path: str = scope["path"]
            below = path[len(MOUNT_PATH) :]
            if (
                path.startswith(MOUNT_PATH)
                and (not below or (below[0] == "/" and len(below) > 1 and "/" not in below[1:]))
                and all(_PLAIN_HOST.match(v) for k, v in scope["headers"] if k == b"host")
            ):
                scope["app"] = scope["litestar_app"] = self  # as Litestar.__call__ sets them
                scope.setdefault("state", {})
                await ingest.handle(scope, below, receive, send)
                return
        await super().__call__(scope, receive, send)
