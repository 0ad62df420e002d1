"""Signed webhooks on real Kafka: a connector set to ``stripe`` refuses unsigned, mis-signed and
stale requests with 401 and writes nothing; it accepts a correctly signed one; its secrets rotate
without downtime; and no answer of the admin API, nor any log line, holds a secret."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.served_stack import Stack, served_stack, topic_size, until

pytestmark = pytest.mark.kafka

TOKEN = "inlet_admin_signed-test"
FIELDS = [{"name": "id", "type": "string"}, {"name": "amount", "type": "integer"}]
OLD_SECRET = "whsec_" + uuid.uuid4().hex
NEW_SECRET = "whsec_" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with served_stack(kafka_bootstrap, tmp_path_factory.mktemp("signed"), TOKEN) as served:
        yield served


def stripe_signed(body: bytes, secret: str, ts: int | None = None) -> dict[str, str]:
    """The headers Stripe sends: ``t=<ts>,v1=<hex HMAC-SHA256 of "<ts>.<body>">``."""
    ts = int(time.time()) if ts is None else ts
    digest = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {"content-type": "application/json", "stripe-signature": f"t={ts},v1={digest}"}


def problem(response: httpx.Response, code: str) -> dict[str, Any]:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def test_a_stripe_connector_admits_only_signed_requests(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    created = stack.admin.post(
        "/v1/connectors",
        json={
            "name": f"stripe-{uuid.uuid4().hex[:8]}",
            "fields": FIELDS,
            "verify": {"scheme": "stripe", "secrets": [OLD_SECRET]},
        },
    )
    assert created.status_code == 201, created.text
    connector = created.json()
    url, topic = connector["ingest_url"], connector["topic"]
    old_print = hashlib.sha256(OLD_SECRET.encode()).hexdigest()[:16]
    assert connector["verify"] == {
        "scheme": "stripe",
        "tolerance_s": 300,
        "secrets": [
            {"fingerprint": old_print, "added_at": connector["verify"]["secrets"][0]["added_at"]}
        ],
    }
    body = json.dumps({"id": "evt_1", "amount": 100}).encode()

    # Until the gateway folded the connector: then an unsigned request is refused, not unknown.
    until(lambda: stack.client.post(url, content=body).status_code != 404, "the gateway knows it")
    unsigned = stack.client.post(url, content=body, headers={"content-type": "application/json"})
    assert problem(unsigned, "signature_missing")["header"] == "Stripe-Signature"
    mis_signed = stack.client.post(url, content=body, headers=stripe_signed(body, NEW_SECRET))
    problem(mis_signed, "signature_invalid")
    tampered = stack.client.post(
        url, content=body.replace(b"100", b"900"), headers=stripe_signed(body, OLD_SECRET)
    )
    problem(tampered, "signature_invalid")
    stale = stripe_signed(body, OLD_SECRET, ts=int(time.time()) - 301)
    problem(stack.client.post(url, content=body, headers=stale), "timestamp_out_of_tolerance")
    assert topic_size(stack.settings, topic) == 0
    assert topic_size(stack.settings, connector["rejected_topic"]) == 0

    signed = stack.client.post(url, content=body, headers=stripe_signed(body, OLD_SECRET))
    assert signed.status_code == 200, signed.text
    assert signed.json()["accepted"] == 1
    # The signature covers the bytes sent: a gzip body is verified before it is decompressed.
    packed = gzip.compress(json.dumps({"id": "evt_2", "amount": 5}).encode())
    headers = {**stripe_signed(packed, OLD_SECRET), "content-encoding": "gzip"}
    assert stack.client.post(url, content=packed, headers=headers).status_code == 200
    assert topic_size(stack.settings, topic) == 2

    # Rotation without downtime: add the new secret, both verify, retire the old one.
    added = stack.admin.post(
        f"/v1/connectors/{connector['id']}/verify/secrets", json={"secret": NEW_SECRET}
    )
    assert added.status_code == 201, added.text
    new_print = hashlib.sha256(NEW_SECRET.encode()).hexdigest()[:16]
    assert [s["fingerprint"] for s in added.json()["secrets"]] == [old_print, new_print]

    def signed_with(secret: str) -> int:
        return stack.client.post(url, content=body, headers=stripe_signed(body, secret)).status_code

    until(lambda: signed_with(NEW_SECRET) == 200, "the new secret verifies")
    assert signed_with(OLD_SECRET) == 200
    retired = stack.admin.delete(f"/v1/connectors/{connector['id']}/verify/secrets/{old_print}")
    assert retired.status_code == 200, retired.text
    assert [s["fingerprint"] for s in retired.json()["secrets"]] == [new_print]
    until(lambda: signed_with(OLD_SECRET) == 401, "the old secret is refused")
    assert signed_with(NEW_SECRET) == 200
    last = stack.admin.delete(f"/v1/connectors/{connector['id']}/verify/secrets/{new_print}")
    assert last.status_code == 422, last.text
    unknown = stack.admin.delete(f"/v1/connectors/{connector['id']}/verify/secrets/0123")
    assert unknown.status_code == 404, unknown.text

    metrics = stack.client.get(f"{stack.gateway}/metrics").text
    labels = f'connector="{connector["id"]}"'
    for code in ("signature_missing", "signature_invalid", "timestamp_out_of_tolerance"):
        assert any(
            line.startswith("inlet_signature_failures_total{") and labels in line and code in line
            for line in metrics.splitlines()
        ), code

    # No admin answer and no log line ever holds a secret.
    answers = [
        created.text,
        added.text,
        retired.text,
        stack.admin.get(f"/v1/connectors/{connector['id']}").text,
        stack.admin.get("/v1/connectors").text,
        stack.admin.patch(f"/v1/connectors/{connector['id']}", json={"description": "x"}).text,
        stack.admin.patch(
            f"/v1/connectors/{connector['id']}", json={"verify": {"scheme": "stripe"}}
        ).text,
    ]
    server_records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in server_records)
    for secret in (OLD_SECRET, NEW_SECRET):
        for text in [*answers, logged]:
            assert secret not in text
            assert secret.removeprefix("whsec_") not in text
