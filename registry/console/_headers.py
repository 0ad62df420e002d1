"""What the console's answers carry beyond the app-wide security headers
(``inlet/security_headers.py``, which fills in the rest: ``X-Frame-Options: DENY``,
``Referrer-Policy: no-referrer``, ``Cache-Control: no-store``, ``nosniff``).

- ``Content-Security-Policy``: the console's (``CONSOLE_CSP``), in place of the app-wide
  ``default-src 'none'`` that would stop a page from loading its own stylesheet and scripts.
- ``Secure`` on the console's cookies when the request came over https (directly, or through a
  proxy the server trusts for ``X-Forwarded-Proto``): a session cookie then never travels in the
  clear; over plain http (``inlet up`` on loopback) a Secure cookie would not be sent back at all.
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from inlet.security_headers import CONSOLE_CSP


def console_headers(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        secure = scope.get("scheme") == "https"

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, _secured(value) if secure and name.lower() == b"set-cookie" else value)
                    for name, value in message.get("headers") or ()
                    if name.lower() != b"content-security-policy"
                ]
                headers.append((b"content-security-policy", CONSOLE_CSP))
                message["headers"] = headers
            await send(message)

        await app(scope, receive, sending)

    return middleware


def _secured(cookie: bytes) -> bytes:
    attributes = {part.strip().lower() for part in cookie.split(b";")}
    return cookie if b"secure" in attributes else cookie + b"; Secure"
