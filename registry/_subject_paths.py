"""Subject names in Confluent's paths: any character, ``/`` and ``%`` included.

Clients send a subject percent-encoded as one path segment (``com%2Facme%2FOrder.proto``), but the
ASGI server hands Litestar the *decoded* path, where ``%2F`` has become a separator and the route no
longer matches. So, before routing, ``keep_subjects_encoded`` rebuilds the path from the raw one
the client sent (``scope["raw_path"]``), decoding every segment but the subject's, which it leaves
percent-encoded (in one spelling, whatever the client's); after routing, ``decode_subject`` (the
Confluent controller's middleware) decodes the ``subject`` path parameter the handlers receive.
Each subject is thus decoded exactly once, and an unknown subject reaches its handler, which
answers Confluent's 40401 like for any other name.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from litestar.types import ASGIApp, Receive, Scope, Send


def _subject_index(segments: list[str]) -> int | None:
    """Where the subject is in ``/``-split path segments (``segments[0]`` is the empty root)."""
    if len(segments) > 2 and segments[1] in ("subjects", "config", "mode"):
        return 2
    if len(segments) > 3 and segments[1] == "compatibility" and segments[2] == "subjects":
        return 3
    return None


def keep_subjects_encoded(scope: Scope) -> None:
    """Rewrite ``scope["path"]`` so that a subject segment stays one (encoded) segment."""
    raw = scope.get("raw_path")
    if raw:
        segments = raw.split(b"?", 1)[0].decode("latin-1").split("/")
        decoded = [unquote(s) for s in segments]
    else:  # a server that gives no raw path: the decoded one, as it splits
        decoded = scope["path"].split("/")
        segments = [quote(s, safe="") for s in decoded]
    index = _subject_index(decoded)
    if index is None:
        return
    decoded[index] = quote(unquote(segments[index]), safe="")
    scope["path"] = "/".join(decoded)


def decode_subject(app: ASGIApp) -> ASGIApp:
    """Middleware: the ``subject`` path parameter, decoded once (see the module's docstring)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        params = scope.get("path_params")
        if params and "subject" in params:
            # A copy: the router caches the dict it matched, for the next request on this path.
            scope["path_params"] = {**params, "subject": unquote(params["subject"])}
        await app(scope, receive, send)

    return middleware
