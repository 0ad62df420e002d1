"""Micro-benchmark of signature verification: what one signed request pays for its check.

Run: ``uv run python bench/verify_bench.py [--checks N] [--body-bytes B]``. Prints µs per check
of the verifier alone (``gateway/signatures.py``), per scheme, on a body of ``B`` bytes (default
a 1 KB single-record webhook), the request signed with the connector's secret: the path a real
sender takes. ``2 secrets`` is a rotation in progress with the matching secret second (every
secret is tried: no early exit). A connector without ``verify`` pays one attribute check
(``gateway/app.py``), so nothing is measured for it.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.signatures import Verifier, build_verifier
from inlet.model.verify import StoredSecret, Verify

NOW = 1_800_000_000
AT = datetime(2026, 1, 1, tzinfo=UTC)
SW_KEY = b"0123456789abcdef01234567"
SW_SECRET = "whsec_" + base64.b64encode(SW_KEY).decode()
TEXT_SECRET = "whsec_0123456789abcdefghijklmnopqrstuv"


def _stored(scheme: str, count: int, **recipe: object) -> Verify:
    secrets = [StoredSecret(sealed="-", fingerprint=str(i), added_at=AT) for i in range(count)]
    return Verify(scheme=scheme, secrets=secrets, **recipe)  # type: ignore[arg-type]


def _hex(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _cases(body: bytes) -> dict[str, tuple[Verifier, Mapping[str, str]]]:
    text = TEXT_SECRET.encode()
    sw_headers = {
        "webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
        "webhook-timestamp": str(NOW),
    }
    signed = f"{sw_headers['webhook-id']}.{NOW}.".encode() + body
    v1 = base64.b64encode(hmac.new(SW_KEY, signed, hashlib.sha256).digest()).decode()
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    whpk = "whpk_" + base64.b64encode(raw).decode()
    v1a = base64.b64encode(private.sign(signed)).decode()
    stripe = {"stripe-signature": f"t={NOW},v1={_hex(text, f'{NOW}.'.encode() + body)}"}
    other = "whsec_" + "x" * 32
    return {
        "standard-webhooks v1": (
            build_verifier(_stored("standard-webhooks", 1), [SW_SECRET]),
            {**sw_headers, "webhook-signature": f"v1,{v1}"},
        ),
        "standard-webhooks v1a": (
            build_verifier(_stored("standard-webhooks", 1), [whpk]),
            {**sw_headers, "webhook-signature": f"v1a,{v1a}"},
        ),
        "stripe": (build_verifier(_stored("stripe", 1), [TEXT_SECRET]), stripe),
        "stripe, 2 secrets": (build_verifier(_stored("stripe", 2), [other, TEXT_SECRET]), stripe),
        "github": (
            build_verifier(_stored("github", 1), [TEXT_SECRET]),
            {"x-hub-signature-256": "sha256=" + _hex(text, body)},
        ),
        "shopify": (
            build_verifier(_stored("shopify", 1), [TEXT_SECRET]),
            {
                "x-shopify-hmac-sha256": base64.b64encode(
                    hmac.new(text, body, hashlib.sha256).digest()
                ).decode()
            },
        ),
        "slack": (
            build_verifier(_stored("slack", 1), [TEXT_SECRET]),
            {
                "x-slack-request-timestamp": str(NOW),
                "x-slack-signature": "v0=" + _hex(text, f"v0:{NOW}:".encode() + body),
            },
        ),
        "hmac sha512 base64, timestamp.body": (
            build_verifier(
                _stored(
                    "hmac",
                    1,
                    header="X-Sig",
                    algorithm="sha512",
                    encoding="base64",
                    signed="timestamp.body",
                    timestamp_header="X-Ts",
                ),
                [TEXT_SECRET],
            ),
            {
                "x-ts": str(NOW),
                "x-sig": base64.b64encode(
                    hmac.new(text, f"{NOW}.".encode() + body, hashlib.sha512).digest()
                ).decode(),
            },
        ),
    }


def _per_check_us(
    verifier: Verifier, headers: Mapping[str, str], body: bytes, checks: int
) -> float:
    verify = verifier.verify
    verify(headers, body, NOW)  # signed: it must pass
    started = time.perf_counter()
    for _ in range(checks):
        verify(headers, body, NOW)
    return (time.perf_counter() - started) / checks * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=20_000)
    parser.add_argument("--body-bytes", type=int, default=1024)
    args = parser.parse_args()
    body = b'{"id": "evt_1", "note": "' + b"x" * max(0, args.body_bytes - 27) + b'"}'
    print(f"signature verification, {len(body)}-byte body, {args.checks} checks each")
    for name, (verifier, headers) in _cases(body).items():
        checks = args.checks if "v1a" not in name else max(1, args.checks // 10)
        print(f"  {name:<38} {_per_check_us(verifier, headers, body, checks):8.2f} µs/check")


if __name__ == "__main__":
    main()
