"""The console's session: who is signed in, for how long, and the CSRF check on what they send.

Signing in exchanges the admin token (checked as the API checks it, ``inlet.tokens.matches``) for
a session: Litestar's client-side session, an AES-GCM sealed cookie (so it is signed too),
``HttpOnly``, ``SameSite=Strict``, ``Secure`` when the console is served over https. It lasts
``INLET_CONSOLE_SESSION_HOURS`` from the sign-in, not renewed by use (the cookie's own expiry is
the same, and the sign-in time is checked too).

**Only an answer that changed the session sets its cookie.** Litestar's session middleware re-seals
the whole session into a new cookie on every answer, whatever the handler did; with a cookie that
holds a one-time value (``issued_token.py``: a new ingest token, taken out on its page's first
render), an answer that merely read the session could put back a value another request had just
taken out: a poll in flight (``…/live``, ``/console/pipelines/status``, from this tab or another)
while Rotate's redirect renders the token, whose answer lands last. ``_ChangedOnly`` compares the
session as the handler leaves it with the session as it came in, and leaves the browser's cookie
alone when they are the same; so the live and status endpoints, and every page that only reads the
session, never write it. (Two requests that both change the session at once still race, as any
cookie does: the last answer wins. The console has none that a script sends.)

The cookie's key is derived from the sealing key (``INLET_SECRET_KEY``, ``SecretBox.derive_key``)
and the admin token's hash: the same in every registry process and across restarts, so a session
survives both; a new admin token or secret key ends every session. Neither key is logged.

State-changing requests carry Litestar's CSRF token (double submit: a cookie and the form field
``_csrf_token`` or the ``X-CSRF-Token`` header); the JSON API (Bearer/Basic) has no cookie to
forge and needs none, so the middleware is on the console's routes only (``routes.py``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import msgspec
from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.handlers import BaseRouteHandler
from litestar.middleware.csrf import CSRFMiddleware
from litestar.middleware.session import SessionMiddleware
from litestar.middleware.session.client_side import ClientSideSessionBackend, CookieBackendConfig
from litestar.types import ASGIApp, Message

from inlet.sealing import SecretBox
from registry.errors import SignInRequired

CONSOLE_PREFIX = "/console/"
SIGN_IN_PATH = "/console/sign-in"
SESSION_COOKIE = "inlet_console"
CSRF_COOKIE = "inlet_csrf"
CSRF_HEADER = "x-csrf-token"
# A handler with this in its ``opt`` is served without a session (the sign-in page).
PUBLIC = "console_public"
_SIGNED_IN_AT = "signed_in_at"
_encoder = msgspec.json.Encoder()
_EMPTY = _encoder.encode({})


@dataclass(frozen=True)
class ConsoleKeys:
    session: bytes  # the session cookie's AES-GCM key
    csrf: str  # signs CSRF tokens

    def __repr__(self) -> str:  # never shown, in logs or tracebacks
        return "ConsoleKeys(***)"


def console_keys(box: SecretBox, admin_token_hash: str) -> ConsoleKeys:
    token = admin_token_hash.encode()
    return ConsoleKeys(
        session=box.derive_key(b"console session\0" + token),
        csrf=box.derive_key(b"console csrf\0" + token).hex(),
    )


def session_middleware(keys: ConsoleKeys, hours: int) -> Callable[[ASGIApp], ASGIApp]:
    config = CookieBackendConfig(
        secret=keys.session,
        key=SESSION_COOKIE,
        max_age=hours * 3600,
        path="/console",
        httponly=True,
        samesite="strict",
        scopes={ScopeType.HTTP},
    )

    # A function, not Litestar's DefineMiddleware: routers deep-copy those, and an AES key
    # object cannot be copied.
    def session(app: ASGIApp) -> ASGIApp:
        return _ChangedOnly(app, backend=ClientSideSessionBackend(config))

    return session


def _snapshot(session: object) -> bytes:
    """The session as bytes, to tell whether a handler changed it (cleared counts as empty)."""
    return _encoder.encode(session if isinstance(session, dict) else {})


class _ChangedOnly(SessionMiddleware[ClientSideSessionBackend]):
    """Litestar's session middleware, setting the cookie only when the session changed."""

    def create_send_wrapper(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> Callable[[Message], Awaitable[None]]:
        # Called after the session is loaded, before the handler runs.
        before: bytes | None = _snapshot(connection.scope.get("session"))
        if before == _EMPTY and self.backend.get_cookie_keys(connection):
            before = None  # a cookie that opens to nothing (expired, another key): cleared
        store = super().create_send_wrapper(connection)

        async def send(message: Message) -> None:
            unchanged = before is not None and (
                _snapshot(connection.scope.get("session")) == before
            )
            if message["type"] == "http.response.start" and unchanged:
                await connection.send(message)
                return
            await store(message)

        return send


def csrf_middleware(keys: ConsoleKeys) -> Callable[[ASGIApp], ASGIApp]:
    config = CSRFConfig(
        secret=keys.csrf,
        cookie_name=CSRF_COOKIE,
        header_name=CSRF_HEADER,
        cookie_path="/console",
        cookie_httponly=True,  # pages hand the token to their scripts in a <meta> tag
        cookie_samesite="strict",
    )

    def csrf(app: ASGIApp) -> ASGIApp:
        return CSRFMiddleware(app, config)

    return csrf


def begin(
    connection: ASGIConnection[Any, Any, Any, Any], *, now: Callable[[], float] = time.time
) -> None:
    """Sign ``connection``'s browser in (its admin token was checked)."""
    connection.set_session({_SIGNED_IN_AT: int(now())})


def end(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    connection.clear_session()


def is_signed_in(connection: ASGIConnection[Any, Any, Any, Any], hours: int) -> bool:
    signed_in_at = connection.session.get(_SIGNED_IN_AT) if connection.session else None
    return isinstance(signed_in_at, int) and time.time() - signed_in_at < hours * 3600


def signed_in_guard(
    hours: int,
) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None]:
    """The console routes' guard: a session, except on the handlers marked ``PUBLIC``."""

    def signed_in(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        if handler.opt.get(PUBLIC) or is_signed_in(connection, hours):
            return
        wanted = connection.scope["path"]
        if query := connection.scope.get("query_string", b""):
            wanted += "?" + query.decode("latin-1")
        raise SignInRequired("Sign in to the console first", wanted=wanted)

    return signed_in


def local_next(path: str | None) -> str:
    """Where to go after signing in: ``path`` if it is a console page of this server, else the
    console's start (a ``next`` naming another site would be an open redirect)."""
    if not path or any(c in path for c in "\\\r\n\t") or not path.isprintable():
        return CONSOLE_PREFIX
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or not (path.startswith(CONSOLE_PREFIX) or path == "/console"):
        return CONSOLE_PREFIX
    if "//" in parts.path or ".." in parts.path.split("/") or path.startswith(SIGN_IN_PATH):
        return CONSOLE_PREFIX
    return path


def sign_in_location(wanted: str) -> str:
    """The sign-in page, coming back to ``wanted`` afterwards (when it is a console page)."""
    target = local_next(wanted)
    if target in (CONSOLE_PREFIX, "/console"):
        return SIGN_IN_PATH
    return f"{SIGN_IN_PATH}?{urlencode({'next': target})}"
