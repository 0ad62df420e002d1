"""A connector's ``verify`` setting: the signature scheme its senders use, and the secrets.

What the admin API takes (``VerifyRequest``) is checked here (``verify_problems``: every problem
names its field, and never quotes a secret), and stored as ``Verify``: each secret sealed
(``inlet/sealing.py``, bound to the connector's id) beside its fingerprint, the one thing about a
secret any answer shows. The gateway opens the secrets once per connector definition
(``gateway/signatures.py``); the registry opens them only to seal them anew for a duplicate.

The secrets' forms, per scheme (``secret_problem`` decides, ``symmetric_key`` and
``public_key`` turn a secret into what the verifiers use):

* ``standard-webhooks``: ``whsec_`` + base64 of 24-64 random bytes (HMAC-SHA256 key, ``v1``
  signatures), or ``whpk_`` + base64 of a 32-byte ed25519 public key (``v1a``). A ``whsk_`` (the
  sender's private key) is refused: the receiver needs only the public one.
* ``stripe``: the endpoint's signing secret, ``whsec_…``, used as text (Stripe does not decode it).
* ``github``, ``shopify``, ``slack``, ``hmac``: the shared secret, used as its UTF-8 bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import string
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from inlet.errors import Problem
from inlet.sealing import SecretBox

Scheme = Literal["standard-webhooks", "stripe", "github", "shopify", "slack", "hmac"]
Algorithm = Literal["sha256", "sha1", "sha512"]
Encoding = Literal["hex", "base64"]
Signed = Literal["body", "timestamp.body"]

DEFAULT_TOLERANCE_S = 300  # Stripe's, Slack's and the Standard Webhooks libraries' default
MAX_TOLERANCE_S = 86_400
# Each secret costs one HMAC (or one ed25519 check) per request that no signature matches.
MAX_SECRETS = 5
MAX_SECRET_CHARS = 1024
MAX_HEADER_CHARS = 128
MAX_PREFIX_CHARS = 64
# The schemes whose signature covers a timestamp (so ``tolerance_s`` refuses replays).
TIMESTAMPED: frozenset[str] = frozenset({"standard-webhooks", "stripe", "slack"})

SYMMETRIC_PREFIX = "whsec_"
PUBLIC_KEY_PREFIX = "whpk_"
PRIVATE_KEY_PREFIX = "whsk_"
_STANDARD_KEY_BYTES = (24, 64)
_ED25519_KEY_BYTES = 32
_FINGERPRINT_HEX = 16
# An RFC 9110 field name (a token).
_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~")

Secret = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SECRET_CHARS)]
HeaderName = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_HEADER_CHARS)]


class VerifyRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``verify`` as ``POST``/``PATCH /v1/connectors`` take it. The recipe fields (``header`` to
    ``timestamp_header``) are for ``scheme: hmac`` only. On a PATCH, leaving ``secrets`` out keeps
    the current ones (for the same scheme)."""

    scheme: Scheme
    secrets: list[Secret] | msgspec.UnsetType = msgspec.UNSET
    tolerance_s: Annotated[int, msgspec.Meta(ge=1, le=MAX_TOLERANCE_S)] = DEFAULT_TOLERANCE_S
    header: HeaderName | None = None
    algorithm: Algorithm | None = None
    encoding: Encoding | None = None
    prefix: Annotated[str, msgspec.Meta(max_length=MAX_PREFIX_CHARS)] | None = None
    signed: Signed | None = None
    timestamp_header: HeaderName | None = None


class StoredSecret(msgspec.Struct, frozen=True, kw_only=True):
    """One secret as the log keeps it: sealed, with the fingerprint that names it."""

    sealed: str
    fingerprint: str
    added_at: datetime


class Verify(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``verify`` as stored on the connector. The recipe fields are set for ``hmac`` only."""

    scheme: Scheme
    secrets: list[StoredSecret]
    tolerance_s: int = DEFAULT_TOLERANCE_S
    header: str | None = None
    algorithm: Algorithm = "sha256"
    encoding: Encoding = "hex"
    prefix: str = ""
    signed: Signed = "body"
    timestamp_header: str | None = None

    @property
    def timestamped(self) -> bool:
        return self.scheme in TIMESTAMPED or self.signed == "timestamp.body"


def fingerprint(secret: str) -> str:
    """What names a secret in answers: the first 16 hex digits of its text's SHA-256 (a sender
    checks which secret it holds with ``printf %s "$SECRET" | sha256sum | cut -c1-16``)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:_FINGERPRINT_HEX]


def _decoded(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def symmetric_key(scheme: Scheme, secret: str) -> bytes | None:
    """The HMAC key of ``secret`` under ``scheme``, or None if it is not a symmetric secret."""
    if scheme != "standard-webhooks":
        return secret.encode()
    if not secret.startswith(SYMMETRIC_PREFIX):
        return None
    key = _decoded(secret[len(SYMMETRIC_PREFIX) :])
    if key is None or not _STANDARD_KEY_BYTES[0] <= len(key) <= _STANDARD_KEY_BYTES[1]:
        return None
    return key


def public_key(secret: str) -> Ed25519PublicKey | None:
    """The ed25519 key of a ``whpk_`` secret, or None."""
    if not secret.startswith(PUBLIC_KEY_PREFIX):
        return None
    raw = _decoded(secret[len(PUBLIC_KEY_PREFIX) :])
    if raw is None or len(raw) != _ED25519_KEY_BYTES:
        return None
    return Ed25519PublicKey.from_public_bytes(raw)


def secret_problem(scheme: Scheme, secret: str) -> str | None:
    """Why ``secret`` cannot be one of ``scheme``'s, or None. Never quotes the secret."""
    if secret != secret.strip() or not secret.isprintable():
        return "has surrounding blanks or unprintable characters"
    if scheme == "standard-webhooks":
        if secret.startswith(PRIVATE_KEY_PREFIX):
            return "is an ed25519 private key (whsk_): give its public key (whpk_) instead"
        if secret.startswith(PUBLIC_KEY_PREFIX):
            return None if public_key(secret) else "must be whpk_ + base64 of a 32-byte key"
        if symmetric_key(scheme, secret) is None:
            low, high = _STANDARD_KEY_BYTES
            return (
                f"must be whsec_ + base64 of {low}-{high} bytes (HMAC-SHA256, v1) "
                "or whpk_ + base64 of an ed25519 public key (v1a)"
            )
    if scheme == "stripe" and not (
        secret.startswith(SYMMETRIC_PREFIX) and len(secret) > len(SYMMETRIC_PREFIX)
    ):
        return "must be the endpoint's signing secret (whsec_...)"
    return None


def _header_problem(field: str, name: str | None) -> Problem | None:
    if name is not None and not set(name) <= _TOKEN_CHARS:
        return Problem(field=field, reason="must be an HTTP header name (letters, digits, -_.)")
    return None


def verify_problems(request: VerifyRequest, *, field: str = "verify") -> list[Problem]:
    """Everything wrong with ``request``, each problem naming its field."""
    problems: list[Problem] = []
    recipe = {
        "header": request.header,
        "algorithm": request.algorithm,
        "encoding": request.encoding,
        "prefix": request.prefix,
        "signed": request.signed,
        "timestamp_header": request.timestamp_header,
    }
    if request.scheme != "hmac":
        problems += [
            Problem(field=f"{field}.{name}", reason="only for scheme hmac")
            for name, value in recipe.items()
            if value is not None
        ]
    else:
        if request.header is None:
            problems.append(Problem(field=f"{field}.header", reason="required for scheme hmac"))
        timestamped = request.signed == "timestamp.body"
        if timestamped and request.timestamp_header is None:
            reason = "required when signed is timestamp.body"
            problems.append(Problem(field=f"{field}.timestamp_header", reason=reason))
        if not timestamped and request.timestamp_header is not None:
            reason = "only when signed is timestamp.body"
            problems.append(Problem(field=f"{field}.timestamp_header", reason=reason))
        for name in ("header", "timestamp_header"):
            problem = _header_problem(f"{field}.{name}", recipe[name])
            if problem is not None:
                problems.append(problem)
    if request.secrets is not msgspec.UNSET:
        problems += secrets_problems(request.scheme, request.secrets, field=f"{field}.secrets")
    return problems


def secrets_problems(scheme: Scheme, secrets: list[str], *, field: str) -> list[Problem]:
    problems: list[Problem] = []
    if not secrets:
        problems.append(Problem(field=field, reason="at least one secret"))
    if len(secrets) > MAX_SECRETS:
        problems.append(Problem(field=field, reason=f"at most {MAX_SECRETS} secrets"))
    seen: set[str] = set()
    for index, secret in enumerate(secrets):
        reason = secret_problem(scheme, secret)
        if reason is None and fingerprint(secret) in seen:
            reason = "the same secret twice"
        if reason is not None:
            problems.append(Problem(field=f"{field}[{index}]", reason=reason))
        seen.add(fingerprint(secret))
    return problems


def seal_secret(secret: str, *, connector_id: str, box: SecretBox, now: datetime) -> StoredSecret:
    return StoredSecret(
        sealed=box.seal(secret, belongs_to=connector_id),
        fingerprint=fingerprint(secret),
        added_at=now,
    )


def stored_verify(request: VerifyRequest, secrets: list[StoredSecret]) -> Verify:
    """``request`` as stored, with ``secrets`` (already sealed); recipe defaults for hmac."""
    if request.scheme != "hmac":
        return Verify(scheme=request.scheme, secrets=secrets, tolerance_s=request.tolerance_s)
    return Verify(
        scheme="hmac",
        secrets=secrets,
        tolerance_s=request.tolerance_s,
        header=request.header,
        algorithm=request.algorithm or "sha256",
        encoding=request.encoding or "hex",
        prefix=request.prefix or "",
        signed=request.signed or "body",
        timestamp_header=request.timestamp_header,
    )


def resealed(verify: Verify, *, source_id: str, target_id: str, box: SecretBox) -> Verify:
    """``verify`` with its secrets sealed for another connector (a duplicate)."""
    secrets = [
        msgspec.structs.replace(
            secret,
            sealed=box.seal(box.open(secret.sealed, belongs_to=source_id), belongs_to=target_id),
        )
        for secret in verify.secrets
    ]
    return msgspec.structs.replace(verify, secrets=secrets)
