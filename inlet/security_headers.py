"""The headers every answer of Inlet's HTTP apps carries, whoever writes it.

Both apps (the gateway and the registry) add them in one place each: a Litestar ``before_send``
hook (``add_security_headers``), which sees every answer Litestar sends, routed or not, errors
included; and the gateway's fast path, which answers without Litestar, appends the same
``SECURITY_HEADERS`` to its own.

- ``X-Content-Type-Options: nosniff``: a browser takes the content type as given, so an answer
  that quotes a client's input (an error naming a field) is never run as HTML or script.
- ``Cache-Control: no-store``: answers carry secrets (a new connector's token and ingest URL,
  records, pipeline settings); no cache, proxy or browser keeps any of them.
- ``Referrer-Policy: no-referrer``: a page a browser opens from an answer is not told its URL.
- ``Content-Security-Policy: default-src 'none'; frame-ancestors 'none'`` and
  ``X-Frame-Options: DENY``: neither app serves a page (the OpenAPI pages are off:
  ``inlet/openapi.py``), so whatever a browser renders loads nothing and is framed nowhere.

An answer that sets one of these headers itself keeps its own value: the registry's console
(``registry/console/``) serves pages, and sets ``CONSOLE_CSP`` on them, which lets them load their
own scripts, styles and images and nothing else (no inline script, no other site, no framing).
"""

from __future__ import annotations

from litestar.types import Message, Scope

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
]

# The console's pages: their own files only ('self'), images also as data: URLs; no inline
# script or style, no <base>, forms post only back here, framed by no one.
CONSOLE_CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


async def add_security_headers(message: Message, _scope: Scope) -> None:
    """Litestar's ``before_send`` hook: the missing ones of ``SECURITY_HEADERS`` on an answer."""
    if message["type"] != "http.response.start":
        return
    headers = list(message.get("headers") or ())
    present = {bytes(name).lower() for name, _ in headers}
    headers += [header for header in SECURITY_HEADERS if header[0] not in present]
    message["headers"] = headers
