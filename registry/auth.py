"""Admin authentication: the admin token as a Bearer token, or as the Basic-auth password.

Basic auth is how Confluent's clients authenticate (``basic.auth.user.info = user:password``), so
the registry API accepts the token there with any user name. Only the token's hash is kept.
The console signs in with the same token and then keeps a session (``registry/console/``).
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from inlet.tokens import matches, presented_token
from registry._media import asks_for_html
from registry.errors import Unauthorized


def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    path = connection.scope["path"]
    if path == "/metrics":  # scraped without a token, like the gateway's (no ids in it)
        return
    if path in ("/health", "/schema") or path.startswith("/schema/"):  # liveness, API docs
        return
    # The console's pages check its session instead (registry/console/session.py); a browser
    # asking for / is sent to them.
    if path == "/console" or path.startswith("/console/"):
        return
    if path == "/" and asks_for_html(connection.headers.get("accept")):
        return
    token = presented_token(connection.headers.get("authorization"))
    if token is None or not matches(token, connection.app.state.admin_token_hash):
        raise Unauthorized("Unauthorized: a valid admin token is required")
