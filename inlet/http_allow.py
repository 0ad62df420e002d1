"""An ``OPTIONS`` answer names every method its path takes, in ``Allow``.

Litestar answers ``OPTIONS`` itself with the methods of the first handler registered at a path:
a path served by several handlers (``GET``, ``PUT`` and ``DELETE /config``) answered
``Allow: GET, OPTIONS``. ``allow_every_method`` (a ``before_send`` hook of both apps) writes the
header again from the app's merged routes, which its ``405`` answers already use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar.datastructures import MutableScopeHeaders
from litestar.routes import HTTPRoute

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.types import Message, Scope


def _allow(app: Litestar, path_template: str) -> str | None:
    # Looked up per OPTIONS request (they are rare): a few dozen routes.
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path_format == path_template:
            return ", ".join(sorted(route.methods))
    return None


async def allow_every_method(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start":
        return
    http: Any = scope  # a response start: an HTTP scope
    if http["method"] != "OPTIONS":
        return
    app: Litestar = http["app"]
    allow = _allow(app, http.get("path_template") or "")
    if allow is not None:
        MutableScopeHeaders.from_message(message)["Allow"] = allow
