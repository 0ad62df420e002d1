"""Signature verification per scheme, on the providers' published vectors where they publish one.

Sources of the vectors: the Standard Webhooks reference libraries' tests (``v1``: the Python
library's ``test_sign_function``; ``v1a``: the Go library's ``TestAsymmetricWebhookSign``),
GitHub's "Validating webhook deliveries" test values, Slack's "Verifying requests from Slack"
example. Stripe and Shopify publish none: their signatures are computed here the way their
documents (and ``stripe-python``'s ``WebhookSignature``) say, independently of the verifier.
The PyPI ``standardwebhooks`` package signs requests that the verifier must accept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from standardwebhooks.webhooks import Webhook

from gateway.errors import SignatureInvalid, SignatureMissing, TimestampOutOfTolerance
from gateway.signatures import Verifier, build_verifier
from inlet.errors import InletError
from inlet.model.verify import (
    StoredSecret,
    Verify,
    VerifyRequest,
    fingerprint,
    stored_verify,
    verify_problems,
)

AT = datetime(2026, 1, 1, tzinfo=UTC)
Headers = dict[str, str]

# Standard Webhooks, v1 (the Python library's own vector).
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TS = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_V1 = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
# Standard Webhooks, v1a (the Go library's): the seed of the sender's ed25519 key, and its answer.
SW_SEED = "VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk="
SW_V1A = (
    "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag=="
)
# GitHub's documented test values.
GH_SECRET = "It's a Secret to Everybody"
GH_BODY = b"Hello, World!"
GH_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
# Slack's documented example.
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TS = 1531420618
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmi"
    b"bIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
STRIPE_SECRET = "whsec_test_0123456789abcdefghijklmnopqrstuv"
SHOPIFY_SECRET = "shpss_0123456789abcdef0123456789abcdef"
BODY = b'{"id": "evt_1", "type": "order.created"}'


def verifier(scheme: str, secrets: list[str], **recipe: object) -> Verifier:
    request = msgspec.convert({"scheme": scheme, "secrets": secrets, **recipe}, VerifyRequest)
    assert verify_problems(request) == []
    stored = [StoredSecret(sealed="-", fingerprint=fingerprint(s), added_at=AT) for s in secrets]
    return build_verifier(stored_verify(request, stored), secrets)


def public_key_of(seed_b64: str) -> str:
    private = Ed25519PrivateKey.from_private_bytes(base64.b64decode(seed_b64))
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "whpk_" + base64.b64encode(raw).decode()


def sw_headers(signature: str, ts: int = SW_TS, msg_id: str = SW_ID) -> Headers:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def stripe_headers(body: bytes, ts: int, secret: str = STRIPE_SECRET) -> Headers:
    return {"stripe-signature": f"t={ts},v1={hex_hmac(secret, f'{ts}.'.encode() + body)}"}


def refused(check: Callable[[], None]) -> type[InletError]:
    with pytest.raises(InletError) as caught:
        check()
    return type(caught.value)


def refusal(verify: Verifier, headers: Headers, body: bytes, now: float) -> type[InletError]:
    try:
        verify.verify(headers, body, now)
    except InletError as exc:
        return type(exc)
    pytest.fail("verified")


# --- Standard Webhooks. ---


def test_standard_webhooks_v1_vector() -> None:
    verify = verifier("standard-webhooks", [SW_SECRET])
    verify.verify(sw_headers(SW_V1), SW_BODY, SW_TS)
    # Any one of several signatures (the sender's own rotation), unknown versions skipped.
    listed = f"v2,abc v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {SW_V1}"
    verify.verify(sw_headers(listed), SW_BODY, SW_TS)


def test_standard_webhooks_v1a_vector() -> None:
    verify = verifier("standard-webhooks", [public_key_of(SW_SEED)])
    verify.verify(sw_headers(SW_V1A), SW_BODY, SW_TS)
    assert refused(lambda: verify.verify(sw_headers(SW_V1A), SW_BODY + b" ", SW_TS)) is (
        SignatureInvalid
    )
    # An HMAC signature does not verify against a public key, nor the other way round.
    assert refused(lambda: verify.verify(sw_headers(SW_V1), SW_BODY, SW_TS)) is SignatureInvalid
    hmac_only = verifier("standard-webhooks", [SW_SECRET])
    assert refused(lambda: hmac_only.verify(sw_headers(SW_V1A), SW_BODY, SW_TS)) is (
        SignatureInvalid
    )


def test_standard_webhooks_signed_by_the_reference_library() -> None:
    now = 1_800_000_000
    signature = Webhook(SW_SECRET).sign(SW_ID, datetime.fromtimestamp(now, UTC), BODY.decode())
    verifier("standard-webhooks", [SW_SECRET]).verify(sw_headers(signature, now), BODY, now + 10)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda h, b: (h, b + b"x"), SignatureInvalid),  # tampered body
        (lambda h, b: ({**h, "webhook-id": "msg_other"}, b), SignatureInvalid),  # signed id
        (lambda h, b: ({**h, "webhook-timestamp": str(SW_TS + 1)}, b), SignatureInvalid),
        (lambda h, b: ({**h, "webhook-timestamp": "soon"}, b), SignatureInvalid),
        (lambda h, b: ({**h, "webhook-id": "msg.1"}, b), SignatureInvalid),
        (lambda h, b: ({**h, "webhook-signature": "v1,"}, b), SignatureInvalid),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b), None),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-id"}, b), None),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-timestamp"}, b), None),
        (lambda h, b: ({**h, "webhook-signature": ""}, b), None),
    ],
)
def test_standard_webhooks_refusals(
    change: Callable[[Headers, bytes], tuple[Headers, bytes]], error: type[InletError] | None
) -> None:
    headers, body = change(sw_headers(SW_V1), SW_BODY)
    verify = verifier("standard-webhooks", [SW_SECRET])
    assert refused(lambda: verify.verify(headers, body, SW_TS)) is (error or SignatureMissing)


def test_a_wrong_secret_is_refused() -> None:
    other = "whsec_" + base64.b64encode(b"another secret of 24 bytes").decode()
    verify = verifier("standard-webhooks", [other])
    assert refused(lambda: verify.verify(sw_headers(SW_V1), SW_BODY, SW_TS)) is SignatureInvalid


def test_rotation_any_one_secret_verifies() -> None:
    other = "whsec_" + base64.b64encode(b"another secret of 24 bytes").decode()
    for secrets in ([other, SW_SECRET], [SW_SECRET, other], [other, public_key_of(SW_SEED)]):
        verify = verifier("standard-webhooks", secrets)
        signature = SW_V1 if SW_SECRET in secrets else SW_V1A
        verify.verify(sw_headers(signature), SW_BODY, SW_TS)


@pytest.mark.parametrize("scheme", ["standard-webhooks", "stripe", "slack", "hmac-timestamped"])
def test_timestamps_out_of_tolerance_are_refused(scheme: str) -> None:
    ts = 1_800_000_000
    cases: dict[str, tuple[Verifier, Headers, bytes]] = {
        "standard-webhooks": (
            verifier("standard-webhooks", [SW_SECRET], tolerance_s=60),
            sw_headers(Webhook(SW_SECRET).sign(SW_ID, datetime.fromtimestamp(ts, UTC), "{}"), ts),
            b"{}",
        ),
        "stripe": (
            verifier("stripe", [STRIPE_SECRET], tolerance_s=60),
            stripe_headers(BODY, ts),
            BODY,
        ),
        "slack": (
            verifier("slack", [SLACK_SECRET], tolerance_s=60),
            {
                "x-slack-request-timestamp": str(ts),
                "x-slack-signature": "v0=" + hex_hmac(SLACK_SECRET, f"v0:{ts}:".encode() + BODY),
            },
            BODY,
        ),
        "hmac-timestamped": (
            verifier(
                "hmac",
                ["s3cret"],
                header="X-Sig",
                signed="timestamp.body",
                timestamp_header="X-Ts",
                tolerance_s=60,
            ),
            {"x-sig": hex_hmac("s3cret", f"{ts}.".encode() + BODY), "x-ts": str(ts)},
            BODY,
        ),
    }
    verify, headers, body = cases[scheme]
    for now in (ts, ts + 60, ts - 60):  # within, on either side
        verify.verify(headers, body, now)
    for now in (ts + 61, ts - 61):  # a replay, or a sender's clock ahead
        assert refusal(verify, headers, body, now) is TimestampOutOfTolerance


# --- Stripe. ---


def test_stripe() -> None:
    ts = 1_800_000_000
    verify = verifier("stripe", ["whsec_old_secret", STRIPE_SECRET])
    verify.verify(stripe_headers(BODY, ts), BODY, ts)
    # Stripe sends one v1 per active secret during its own rotation, and may add a v0.
    good = stripe_headers(BODY, ts)["stripe-signature"]
    several = f"t={ts},v1={'0' * 64},{good.split(',')[1]},v0=abc"
    verify.verify({"stripe-signature": several}, BODY, ts)
    wrong = stripe_headers(BODY, ts, secret="whsec_someone_else")
    for headers, body, error in [
        (stripe_headers(BODY, ts), BODY + b" ", SignatureInvalid),
        (wrong, BODY, SignatureInvalid),
        ({"stripe-signature": f"t={ts}"}, BODY, SignatureInvalid),
        ({"stripe-signature": good.split(",")[1]}, BODY, SignatureInvalid),
        ({"stripe-signature": good.replace(f"t={ts}", "t=x")}, BODY, SignatureInvalid),
        ({"stripe-signature": good.replace(f"t={ts}", f"t={ts + 1}")}, BODY, SignatureInvalid),
        ({}, BODY, SignatureMissing),
    ]:
        assert refusal(verify, headers, body, ts) is error


# --- GitHub, Shopify, Slack. ---


def test_github_vector() -> None:
    verify = verifier("github", [GH_SECRET])
    verify.verify({"x-hub-signature-256": GH_SIGNATURE}, GH_BODY, 0)
    verify.verify(
        {"x-hub-signature-256": GH_SIGNATURE.upper().replace("SHA256", "sha256")}, GH_BODY, 0
    )
    for headers, body, error in [
        ({"x-hub-signature-256": GH_SIGNATURE}, GH_BODY + b"!", SignatureInvalid),
        ({"x-hub-signature-256": GH_SIGNATURE.removeprefix("sha256=")}, GH_BODY, SignatureInvalid),
        ({"x-hub-signature-256": "sha256=zz"}, GH_BODY, SignatureInvalid),
        ({"x-hub-signature": "sha1=abc"}, GH_BODY, SignatureMissing),
    ]:
        assert refusal(verify, headers, body, 0) is error
    wrong = verifier("github", ["It's a Secret to Nobody"])
    header = {"x-hub-signature-256": GH_SIGNATURE}
    assert refused(lambda: wrong.verify(header, GH_BODY, 0)) is SignatureInvalid


def test_shopify() -> None:
    digest = hmac.new(SHOPIFY_SECRET.encode(), BODY, hashlib.sha256).digest()
    header = {"x-shopify-hmac-sha256": base64.b64encode(digest).decode()}
    verify = verifier("shopify", [SHOPIFY_SECRET])
    verify.verify(header, BODY, 0)
    assert refused(lambda: verify.verify(header, BODY[:-1], 0)) is SignatureInvalid
    hex_header = {"x-shopify-hmac-sha256": digest.hex()}  # hex is not Shopify's encoding
    assert refused(lambda: verify.verify(hex_header, BODY, 0)) is SignatureInvalid
    assert refused(lambda: verify.verify({}, BODY, 0)) is SignatureMissing


def test_slack_vector() -> None:
    headers = {"x-slack-signature": SLACK_SIGNATURE, "x-slack-request-timestamp": str(SLACK_TS)}
    verify = verifier("slack", [SLACK_SECRET])
    verify.verify(headers, SLACK_BODY, SLACK_TS + 5)
    assert refused(lambda: verify.verify(headers, SLACK_BODY + b"&x=1", SLACK_TS)) is (
        SignatureInvalid
    )
    no_ts = {"x-slack-signature": SLACK_SIGNATURE}
    assert refused(lambda: verify.verify(no_ts, SLACK_BODY, SLACK_TS)) is SignatureMissing


# --- The generic recipe. ---


@pytest.mark.parametrize(
    ("algorithm", "encoding", "prefix"),
    [("sha256", "hex", ""), ("sha1", "hex", "sha1="), ("sha512", "base64", "v1=")],
)
def test_hmac_recipes(algorithm: str, encoding: str, prefix: str) -> None:
    digest = hmac.new(b"k3y", BODY, algorithm).digest()
    encoded = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    verify = verifier(
        "hmac", ["k3y"], header="X-Signature", algorithm=algorithm, encoding=encoding, prefix=prefix
    )
    verify.verify({"x-signature": prefix + encoded}, BODY, 0)
    tampered = {"x-signature": prefix + encoded}
    assert refused(lambda: verify.verify(tampered, BODY + b"\n", 0)) is SignatureInvalid
    if prefix:
        bare = {"x-signature": encoded}
        assert refused(lambda: verify.verify(bare, BODY, 0)) is SignatureInvalid


# --- Settings refused, each naming its field. ---

SW = "standard-webhooks"


@pytest.mark.parametrize(
    ("verify", "field", "reason"),
    [
        (
            {"scheme": "standard-webhooks", "secrets": ["MfKQ9r8GKYqr"]},
            "verify.secrets[0]",
            "whsec_",
        ),
        ({"scheme": "standard-webhooks", "secrets": ["whsec_!!"]}, "verify.secrets[0]", "base64"),
        (
            {"scheme": "standard-webhooks", "secrets": ["whsk_" + SW_SEED]},
            "verify.secrets[0]",
            "whpk_",
        ),
        ({"scheme": "standard-webhooks", "secrets": ["whpk_AAAA"]}, "verify.secrets[0]", "32-byte"),
        ({"scheme": "stripe", "secrets": ["sk_live_123"]}, "verify.secrets[0]", "whsec_"),
        ({"scheme": "github", "secrets": [" padded "]}, "verify.secrets[0]", "blanks"),
        ({"scheme": "github", "secrets": ["a", "a"]}, "verify.secrets[1]", "twice"),
        ({"scheme": "github", "secrets": []}, "verify.secrets", "at least one"),
        ({"scheme": "github", "secrets": list("abcdef")}, "verify.secrets", "at most 5"),
        ({"scheme": "github", "secrets": ["a"], "header": "X-Sig"}, "verify.header", "only for"),
        ({"scheme": "hmac", "secrets": ["a"]}, "verify.header", "required"),
        ({"scheme": "hmac", "secrets": ["a"], "header": "X Sig"}, "verify.header", "header name"),
        (
            {"scheme": "hmac", "secrets": ["a"], "header": "X-Sig", "signed": "timestamp.body"},
            "verify.timestamp_header",
            "required",
        ),
        (
            {"scheme": "hmac", "secrets": ["a"], "header": "X-Sig", "timestamp_header": "X-Ts"},
            "verify.timestamp_header",
            "only when",
        ),
    ],
)
def test_bad_settings_name_their_field(verify: dict[str, object], field: str, reason: str) -> None:
    problems = verify_problems(msgspec.convert(verify, VerifyRequest))
    assert any(p.field == field and reason in p.reason for p in problems), problems
    for problem in problems:  # a secret is never quoted back
        for secret in verify.get("secrets", []):  # type: ignore[attr-defined]
            assert len(secret) < 3 or secret not in problem.reason


def test_stored_settings_keep_only_what_the_scheme_uses() -> None:
    request = msgspec.convert({"scheme": "github", "secrets": [GH_SECRET]}, VerifyRequest)
    stored = stored_verify(request, [])
    assert stored == Verify(scheme="github", secrets=[])
    assert msgspec.json.decode(msgspec.json.encode(stored)) == {"scheme": "github", "secrets": []}
    assert not stored.timestamped
    assert Verify(scheme="stripe", secrets=[]).timestamped
