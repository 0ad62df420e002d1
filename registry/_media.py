"""Confluent's media types and its content negotiation, for the Confluent-compatible API.

Confluent Schema Registry answers in ``application/vnd.schemaregistry.v1+json``,
``application/vnd.schemaregistry+json`` or ``application/json`` (preferred in that order, by the
client's ``Accept`` first), and ``406`` when the client accepts none of them; it reads request
bodies sent as any of those or ``application/octet-stream`` (and bodies with no ``Content-Type``),
and answers ``415`` to any other type. Pure functions; ``schema_api.py`` applies them.
"""

from __future__ import annotations

from litestar.types import Message, Scope

CONFLUENT_MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
# What the API answers in, best first (the server's preference, after the client's).
ANSWER_MEDIA_TYPES = (
    CONFLUENT_MEDIA_TYPE,
    "application/vnd.schemaregistry+json",
    "application/json",
)
_READS = frozenset({*ANSWER_MEDIA_TYPES, "application/octet-stream"})


def _media_ranges(accept: str) -> list[tuple[str, float]]:
    ranges = []
    for item in accept.split(","):
        kind, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if kind:
            ranges.append((kind.lower(), quality))
    return ranges


def _quality(media_type: str, ranges: list[tuple[str, float]]) -> float:
    """The client's q for ``media_type``: that of the most specific range that matches it."""
    family = media_type.split("/", maxsplit=1)[0] + "/*"
    for candidate in (media_type, family, "*/*"):
        matching = [q for kind, q in ranges if kind == candidate]
        if matching:
            return max(matching)
    return 0.0


def answer_type(accept: str | None) -> str | None:
    """The media type to answer a request with this ``Accept`` in; None when none is acceptable."""
    if not accept or not accept.strip():
        return CONFLUENT_MEDIA_TYPE
    ranges = _media_ranges(accept)
    best, best_quality = None, 0.0
    for media_type in ANSWER_MEDIA_TYPES:  # the server's order breaks ties
        quality = _quality(media_type, ranges)
        if quality > best_quality:
            best, best_quality = media_type, quality
    return best


def asks_for_html(accept: str | None) -> bool:
    """Whether a client asks for a page: a browser's ``Accept`` names ``text/html`` itself. API
    clients send none, ``*/*`` or JSON, and keep getting JSON."""
    ranges = _media_ranges(accept or "")
    return any(kind == "text/html" and quality > 0 for kind, quality in ranges)


def reads_body(content_type: str | None) -> bool:
    """Whether a request body of this ``Content-Type`` is read (none at all is)."""
    if not content_type or not content_type.strip():
        return True
    return content_type.split(";")[0].strip().lower() in _READS


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def answer_in_accepted_type(message: Message, scope: Scope) -> None:
    """``before_send`` hook: an answer in Confluent's v1 type goes out in the type the client's
    ``Accept`` prefers (``application/json`` for ``Accept: application/json``), errors included."""
    if message["type"] != "http.response.start":
        return
    headers = list(message.get("headers") or ())
    v1 = CONFLUENT_MEDIA_TYPE.encode()
    if not any(k.lower() == b"content-type" and bytes(v) == v1 for k, v in headers):
        return
    wanted = answer_type(_header(scope, b"accept"))
    if wanted is None or wanted == CONFLUENT_MEDIA_TYPE:
        return
    message["headers"] = [
        (k, wanted.encode() if k.lower() == b"content-type" else v) for k, v in headers
    ]
