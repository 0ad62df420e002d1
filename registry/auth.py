"""Admin authentication: the admin token as a Bearer token, or as the Basic-auth password.

Basic auth is how Confluent's clients authenticate (``basic.auth.user.info = user:password``), so
the registry API accepts the token there with any user name. Only the token's hash is kept.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from inlet.tokens import matches
from registry.errors import Unauthorized


def presented_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return credentials.strip() or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    path = connection.scope["path"]
    if path in ("/health", "/schema") or path.startswith("/schema/"):  # liveness, API docs
        return
    token = presented_token(connection.headers.get("authorization"))
    if token is None or not matches(token, connection.app.state.admin_token_hash):
        raise Unauthorized("Unauthorized: a valid admin token is required")
