"""Signature verification: whether an ingest request was signed by one of its connector's senders.

Runs on the body's bytes as received, before anything parses them, and before decompression: a
sender that compresses its body signs the bytes it sends. Every comparison is constant-time
(``hmac.compare_digest``, or ed25519's own check); a signature is checked against every secret
(several during a rotation: any one verifies). A signature that matches is then held to the
timestamp it signed: more than ``tolerance_s`` from the gateway's clock, either way, is refused
(``TimestampOutOfTolerance``), so a captured request cannot be replayed later. Checking the
signature first means only a validly signed request learns that its timestamp was the problem.

What each scheme reads and signs (the providers' own documents):

* ``standard-webhooks``: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature`` (a space-
  separated list of ``v1,<base64 HMAC-SHA256>`` and ``v1a,<base64 ed25519>``), over
  ``{id}.{timestamp}.{body}``.
* ``stripe``: ``Stripe-Signature: t=<ts>,v1=<hex>[,v1=<hex>…]``, HMAC-SHA256 over ``{t}.{body}``
  keyed with the ``whsec_…`` text itself.
* ``github``: ``X-Hub-Signature-256: sha256=<hex>``, over the body (no timestamp).
* ``shopify``: ``X-Shopify-Hmac-Sha256: <base64>``, over the body (no timestamp).
* ``slack``: ``X-Slack-Signature: v0=<hex>`` with ``X-Slack-Request-Timestamp``, over
  ``v0:{ts}:{body}``.
* ``hmac``: the connector's recipe: its header, algorithm, encoding, prefix, and either the body
  or ``{timestamp}.{body}`` with the timestamp from its ``timestamp_header``.

The verifiers here are pure (headers, body, now → nothing, or a domain error); ``Verifiers``
builds one per connector definition, opening its secrets once, and keeps it until the
definition changes. A connector without ``verify`` never reaches this module.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.errors import (
    SignatureInvalid,
    SignatureKeysUnavailable,
    SignatureMissing,
    TimestampOutOfTolerance,
)
from inlet.model.connectors import Connector
from inlet.model.verify import Algorithm, Encoding, Verify, public_key, symmetric_key
from inlet.sealing import SealBroken, SecretBox

log = logging.getLogger("inlet.gateway.signatures")

# A Unix time in seconds, as every scheme sends it: digits only, and not absurdly many.
_MAX_TIMESTAMP_DIGITS = 12


class Verifier(Protocol):
    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        """Nothing when the request is signed; else ``SignatureMissing``, ``SignatureInvalid`` or
        ``TimestampOutOfTolerance``. ``headers`` by lower-case name."""


def _required(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name.lower())
    if not value:
        raise SignatureMissing(name)
    return value


def _timestamp(text: str, header: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= _MAX_TIMESTAMP_DIGITS):
        raise SignatureInvalid(f"the {header} is not a Unix time in seconds")
    return int(text)


def _in_tolerance(timestamp: int, now: float, tolerance_s: int) -> None:
    if abs(now - timestamp) > tolerance_s:
        raise TimestampOutOfTolerance(tolerance_s)


def _unhex(text: str) -> bytes | None:
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def _unbase64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _keyed(keys: list[bytes], algorithm: Algorithm) -> list[hmac.HMAC]:
    # Keyed once: a copy per request skips hashing the padded key again (two blocks).
    return [hmac.new(key, digestmod=algorithm) for key in keys]


def _digests(macs: list[hmac.HMAC], *parts: bytes) -> list[bytes]:
    digests = []
    for keyed in macs:
        mac = keyed.copy()
        for part in parts:
            mac.update(part)
        digests.append(mac.digest())
    return digests


def _any_matches(digests: list[bytes], candidates: list[bytes]) -> bool:
    matched = False
    for digest in digests:
        for candidate in candidates:
            # No early exit: how long a refusal takes says nothing about which secret came close.
            matched |= hmac.compare_digest(digest, candidate)
    return matched


class StandardWebhooks:
    """Standard Webhooks 1.0: ``v1`` (HMAC-SHA256) and ``v1a`` (ed25519) signatures."""

    def __init__(
        self, keys: list[bytes], public_keys: list[Ed25519PublicKey], tolerance_s: int
    ) -> None:
        self._macs = _keyed(keys, "sha256")
        self._public = public_keys
        self._tolerance_s = tolerance_s

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        msg_id = _required(headers, "webhook-id")
        sent_at = _required(headers, "webhook-timestamp")
        signatures = _required(headers, "webhook-signature")
        timestamp = _timestamp(sent_at, "webhook-timestamp")
        if "." in msg_id:  # the spec forbids it: the id and the body could trade bytes
            raise SignatureInvalid("the webhook-id holds a '.'")
        v1: list[bytes] = []
        v1a: list[bytes] = []
        for signature in signatures.split():
            version, _, encoded = signature.partition(",")
            decoded = _unbase64(encoded)
            if decoded is not None and version in ("v1", "v1a"):
                (v1 if version == "v1" else v1a).append(decoded)
        # Header values arrive decoded as latin-1: encoding them so gives back the bytes sent.
        signed_prefix = f"{msg_id}.{sent_at}.".encode("latin-1")
        matched = bool(v1) and _any_matches(_digests(self._macs, signed_prefix, body), v1)
        if not matched and v1a and self._public:
            content = signed_prefix + body
            matched = any(_ed25519(key, sig, content) for key in self._public for sig in v1a)
        if not matched:
            raise SignatureInvalid
        _in_tolerance(timestamp, now, self._tolerance_s)


def _ed25519(key: Ed25519PublicKey, signature: bytes, content: bytes) -> bool:
    try:
        key.verify(signature, content)
    except InvalidSignature:
        return False
    return True


class Stripe:
    """``Stripe-Signature: t=…,v1=…``; a v0 or another scheme's entry is ignored, as Stripe's
    own libraries ignore it."""

    HEADER = "Stripe-Signature"

    def __init__(self, keys: list[bytes], tolerance_s: int) -> None:
        self._macs = _keyed(keys, "sha256")
        self._tolerance_s = tolerance_s

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        header = _required(headers, self.HEADER)
        sent_at: str | None = None
        candidates: list[bytes] = []
        for item in header.split(","):
            key, _, value = item.strip().partition("=")
            if key == "t":
                sent_at = value
            elif key == "v1" and (decoded := _unhex(value)) is not None:
                candidates.append(decoded)
        if sent_at is None or not candidates:
            raise SignatureInvalid(f"the {self.HEADER} header has no t= or no v1= signature")
        timestamp = _timestamp(sent_at, f"{self.HEADER} t=")
        digests = _digests(self._macs, sent_at.encode("latin-1"), b".", body)
        if not _any_matches(digests, candidates):
            raise SignatureInvalid
        _in_tolerance(timestamp, now, self._tolerance_s)


class Hmac:
    """One HMAC in one header, over the body or over a timestamp and the body: GitHub's,
    Shopify's, Slack's, and the generic recipe."""

    def __init__(
        self,
        keys: list[bytes],
        *,
        header: str,
        algorithm: Algorithm = "sha256",
        encoding: Encoding = "hex",
        prefix: str = "",
        timestamp_header: str | None = None,
        signed_with_timestamp: tuple[bytes, bytes] = (b"", b"."),
        tolerance_s: int = 0,
    ) -> None:
        self._macs = _keyed(keys, algorithm)
        self._header = header
        self._decode: Callable[[str], bytes | None] = _unhex if encoding == "hex" else _unbase64
        self._prefix = prefix
        self._timestamp_header = timestamp_header
        # What goes before and after the timestamp, ahead of the body (Slack: "v0:" and ":").
        self._before, self._after = signed_with_timestamp
        self._tolerance_s = tolerance_s

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        value = _required(headers, self._header)
        timestamp_header = self._timestamp_header
        sent_at = None if timestamp_header is None else _required(headers, timestamp_header)
        if not value.startswith(self._prefix):
            raise SignatureInvalid(f"the {self._header} header does not start with {self._prefix}")
        candidate = self._decode(value[len(self._prefix) :].strip())
        if candidate is None:
            raise SignatureInvalid(f"the {self._header} header is not a signature")
        if sent_at is None or timestamp_header is None:
            if not _any_matches(_digests(self._macs, body), [candidate]):
                raise SignatureInvalid
            return
        timestamp = _timestamp(sent_at, timestamp_header)
        stamp = self._before + sent_at.encode("latin-1") + self._after
        if not _any_matches(_digests(self._macs, stamp, body), [candidate]):
            raise SignatureInvalid
        _in_tolerance(timestamp, now, self._tolerance_s)


def build_verifier(verify: Verify, secrets: list[str]) -> Verifier:
    """The verifier of ``verify`` with its secrets open (they passed ``secret_problem``)."""
    scheme, tolerance = verify.scheme, verify.tolerance_s
    keys = [key for secret in secrets if (key := symmetric_key(scheme, secret)) is not None]
    if scheme == "standard-webhooks":
        public = [pk for secret in secrets if (pk := public_key(secret)) is not None]
        return StandardWebhooks(keys, public, tolerance)
    if scheme == "stripe":
        return Stripe(keys, tolerance)
    if scheme == "github":
        return Hmac(keys, header="X-Hub-Signature-256", prefix="sha256=")
    if scheme == "shopify":
        return Hmac(keys, header="X-Shopify-Hmac-Sha256", encoding="base64")
    if scheme == "slack":
        return Hmac(
            keys,
            header="X-Slack-Signature",
            prefix="v0=",
            timestamp_header="X-Slack-Request-Timestamp",
            signed_with_timestamp=(b"v0:", b":"),
            tolerance_s=tolerance,
        )
    if verify.header is None:  # refused at create; a record edited by hand would land here
        raise SignatureKeysUnavailable
    return Hmac(
        keys,
        header=verify.header,
        algorithm=verify.algorithm,
        encoding=verify.encoding,
        prefix=verify.prefix,
        timestamp_header=verify.timestamp_header if verify.signed == "timestamp.body" else None,
        tolerance_s=tolerance,
    )


class _Unopenable:
    """Stands for a verifier whose secrets this process cannot open."""

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        raise SignatureKeysUnavailable


class Verifiers:
    """One verifier per connector definition, its secrets opened once."""

    def __init__(
        self, box: Callable[[], SecretBox] | None, clock: Callable[[], float] = time.time
    ) -> None:
        # Opened on first use: a gateway whose connectors verify nothing needs no secret key.
        self._box = box
        self._clock = clock
        self._built: dict[str, tuple[Verify, Verifier]] = {}

    def verify(self, connector: Connector, headers: Mapping[str, str], body: bytes) -> None:
        verify = connector.verify
        if verify is None:
            return
        built = self._built.get(connector.id)
        if built is None or built[0] is not verify:
            built = self._built[connector.id] = (verify, self._build(connector.id, verify))
        built[1].verify(headers, body, self._clock())

    def _build(self, connector_id: str, verify: Verify) -> Verifier:
        secrets = []
        for secret in verify.secrets:
            try:
                secrets.append(self._open(secret.sealed, connector_id))
            except (SealBroken, ValueError) as exc:  # ValueError: INLET_SECRET_KEY is malformed
                log.warning(
                    "cannot open a signature secret: %s",
                    exc,
                    extra={"connector": connector_id, "fingerprint": secret.fingerprint},
                )
        if not secrets:
            return _Unopenable()
        return build_verifier(verify, secrets)

    def _open(self, sealed: str, connector_id: str) -> str:
        if self._box is None:
            raise SealBroken("the gateway has no secret key")
        return self._box().open(sealed, belongs_to=connector_id)
