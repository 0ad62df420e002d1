"""A connector's ``dedup`` setting: where a retried delivery's key comes from, and for how long
an accepted key is remembered.

Spelled ``{"header": "webhook-id"}`` (a request-level key: one per request), ``{"pointer": "/id"}``
(a record-level key: a JSON Pointer, RFC 6901, into each record) or both, or ``{"envelope":
true}`` (the ids the connector's envelope carries: Firehose's request id and Pub/Sub's message id
per request, a CloudEvent's ``source`` + ``id`` per event); ``window_s`` (default 24 h, at most 7
days). Given none of the three, the connector's ``envelope`` or ``verify`` scheme decides
(``PRESETS``); the stored setting is always explicit, so an answer shows what is used.

The gateway does the deduplicating (``gateway/dedup.py``); this module only checks and stores.
"""

from __future__ import annotations

import string
from typing import Annotated, Final

import msgspec

from inlet.errors import Problem

DEFAULT_WINDOW_S: Final = 86_400
MAX_WINDOW_S: Final = 604_800
MAX_HEADER_CHARS: Final = 128
MAX_POINTER_CHARS: Final = 256
# An RFC 9110 field name (a token).
_TOKEN_CHARS: Final = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~")

# The key each signature scheme's senders repeat on a retry (their documentation's delivery id).
# Slack's Events API and Stripe put it in the body; hmac is anyone's recipe: no preset.
PRESETS: Final[dict[str, tuple[str | None, str | None]]] = {
    "standard-webhooks": ("webhook-id", None),
    "github": ("x-github-delivery", None),
    "shopify": ("x-shopify-webhook-id", None),
    "stripe": (None, "/id"),
    "slack": (None, "/event_id"),
}

HeaderName = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_HEADER_CHARS)]
Pointer = Annotated[str, msgspec.Meta(max_length=MAX_POINTER_CHARS)]
Window = Annotated[int, msgspec.Meta(ge=1, le=MAX_WINDOW_S)]


class DedupRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``dedup`` as ``POST``/``PATCH /v1/connectors`` take it."""

    header: HeaderName | None = None
    pointer: Pointer | None = None
    envelope: bool = False
    window_s: Window = DEFAULT_WINDOW_S


class Dedup(msgspec.Struct, frozen=True, kw_only=True):
    """``dedup`` as stored and shown: the header by its lower-case name, presets resolved."""

    header: str | None = None
    pointer: str | None = None
    envelope: bool = False
    window_s: int = DEFAULT_WINDOW_S


def pointer_tokens(pointer: str) -> tuple[str, ...]:
    """RFC 6901: ``/a~1b/c~0d`` → ``("a/b", "c~d")``; ``""`` (the whole record) → ``()``.

    ValueError for text that is not a JSON Pointer."""
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise ValueError("must be empty or start with '/'")
    tokens = []
    for token in pointer[1:].split("/"):
        if "~" in token.replace("~0", "").replace("~1", ""):
            raise ValueError("'~' must be followed by 0 or 1")
        tokens.append(token.replace("~1", "/").replace("~0", "~"))
    return tuple(tokens)


def dedup_problems(
    request: DedupRequest, *, scheme: str | None, envelope: str | None
) -> list[Problem]:
    """What is wrong with ``request`` on a connector with this ``verify`` scheme and envelope."""
    problems: list[Problem] = []
    if request.header is not None and not set(request.header) <= _TOKEN_CHARS:
        problems.append(Problem(field="dedup.header", reason="is not an HTTP header name"))
    if request.pointer is not None:
        try:
            tokens = pointer_tokens(request.pointer)
        except ValueError as exc:
            problems.append(Problem(field="dedup.pointer", reason=f"not a JSON Pointer: {exc}"))
        else:
            if not tokens:
                reason = 'must point into the record ("" is the whole record)'
                problems.append(Problem(field="dedup.pointer", reason=reason))
    if request.envelope and envelope is None:
        reason = "the connector has no envelope: set one, or use header or pointer"
        problems.append(Problem(field="dedup.envelope", reason=reason))
    given = request.header is not None or request.pointer is not None or request.envelope
    if not given and envelope is None and (scheme is None or scheme not in PRESETS):
        reason = "say where the key comes from (header, pointer or envelope): " + (
            "no verify scheme" if scheme is None else f"the {scheme} scheme has no preset"
        )
        problems.append(Problem(field="dedup", reason=reason))
    return problems


def stored_dedup(request: DedupRequest, *, scheme: str | None, envelope: str | None) -> Dedup:
    """``request`` as stored, presets resolved (``dedup_problems`` found nothing)."""
    header, pointer, by_envelope = request.header, request.pointer, request.envelope
    if header is None and pointer is None and not by_envelope:
        if envelope is not None:
            by_envelope = True
        elif scheme is not None:
            header, pointer = PRESETS[scheme]
    return Dedup(
        header=None if header is None else header.lower(),
        pointer=pointer,
        envelope=by_envelope,
        window_s=request.window_s,
    )


def stored_problems(dedup: Dedup, *, envelope: str | None) -> list[Problem]:
    """A stored ``dedup`` against a changed connector (a PATCH that removes the envelope)."""
    if dedup.envelope and envelope is None:
        reason = "takes the envelope's ids: the connector must keep an envelope"
        return [Problem(field="dedup.envelope", reason=reason)]
    return []
