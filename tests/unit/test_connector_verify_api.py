"""The admin API's ``verify`` setting: stored sealed, shown as fingerprints, rotated, refused with
the field named (on an in-memory log, no Kafka)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from inlet.sealing import is_sealed
from tests.unit.test_connector_api import ADMIN_TOKEN, Client, Harness, create, problems

SECRET = "whsec_0123456789abcdefghijklmnopqrstuv"
OTHER = "whsec_vutsrqponmlkjihgfedcba9876543210"


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


@pytest.fixture
async def client(harness: Harness) -> AsyncIterator[Client]:
    async with AsyncTestClient(harness.app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        yield test_client


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in (SECRET, OTHER):
            assert secret not in text
            assert secret.removeprefix("whsec_") not in text


async def test_create_stores_sealed_and_shows_fingerprints(
    client: Client, harness: Harness
) -> None:
    response = await client.post(
        "/v1/connectors",
        json={
            "name": "Payments",
            "fields": [{"name": "id", "type": "string"}],
            "verify": {"scheme": "stripe", "secrets": [SECRET], "tolerance_s": 600},
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["verify"] == {
        "scheme": "stripe",
        "tolerance_s": 600,
        "secrets": [{"fingerprint": fingerprint(SECRET), "added_at": "2026-01-01T00:00:00Z"}],
    }
    stored = harness.connectors.require(created["id"]).verify
    assert stored is not None
    assert is_sealed(stored.secrets[0].sealed)
    got = await client.get(f"/v1/connectors/{created['id']}")
    listed = await client.get("/v1/connectors")
    assert got.json()["verify"] == created["verify"]
    assert_no_secret(response.text, got.text, listed.text, repr(harness.log.records))
    # A connector without the setting shows null.
    assert (await create(client, name="Plain"))["verify"] is None


async def test_rotation_patch_and_duplicate(client: Client, harness: Harness) -> None:
    created = await create(client, verify={"scheme": "stripe", "secrets": [SECRET]})
    path = f"/v1/connectors/{created['id']}"
    added = await client.post(f"{path}/verify/secrets", json={"secret": OTHER})
    assert added.status_code == 201, added.text
    prints = [s["fingerprint"] for s in added.json()["secrets"]]
    assert prints == [fingerprint(SECRET), fingerprint(OTHER)]
    again = await client.post(f"{path}/verify/secrets", json={"secret": OTHER})
    assert any("already" in p["reason"] for p in problems(again, 422, "invalid-connector"))
    retired = await client.delete(f"{path}/verify/secrets/{fingerprint(SECRET)}")
    assert retired.status_code == 200, retired.text
    assert [s["fingerprint"] for s in retired.json()["secrets"]] == [fingerprint(OTHER)]
    last = await client.delete(f"{path}/verify/secrets/{fingerprint(OTHER)}")
    assert problems(last, 422, "invalid-connector")[0]["field"] == "fingerprint"
    unknown = await client.delete(f"{path}/verify/secrets/0000")
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "verify_secret_not_found"

    # PATCH without secrets keeps them (same scheme); another scheme needs its own.
    patched = await client.patch(path, json={"verify": {"scheme": "stripe", "tolerance_s": 60}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["verify"]["tolerance_s"] == 60
    assert [s["fingerprint"] for s in patched.json()["verify"]["secrets"]] == [fingerprint(OTHER)]
    other_scheme = await client.patch(path, json={"verify": {"scheme": "github"}})
    assert problems(other_scheme, 422, "invalid-connector")[0]["field"] == "verify.secrets"

    # A duplicate verifies alike: its secrets sealed anew for its own id.
    duplicate = await client.post(f"{path}/duplicate", json={"name": "Copy"})
    assert duplicate.status_code == 201, duplicate.text
    assert duplicate.json()["verify"] == patched.json()["verify"]
    source = harness.connectors.require(created["id"]).verify
    copy = harness.connectors.require(duplicate.json()["id"]).verify
    assert source is not None
    assert copy is not None
    assert copy.secrets[0].sealed != source.secrets[0].sealed

    removed = await client.patch(path, json={"verify": None})
    assert removed.json()["verify"] is None
    no_verify = await client.post(f"{path}/verify/secrets", json={"secret": OTHER})
    assert problems(no_verify, 422, "invalid-connector")[0]["field"] == "verify"
    assert_no_secret(added.text, retired.text, patched.text, duplicate.text, removed.text)


@pytest.mark.parametrize(
    ("verify", "slug", "field"),
    [
        ({"scheme": "paypal", "secrets": ["x"]}, "validation-failed", "verify.scheme"),
        ({"scheme": "stripe", "secrets": ["sk_123"]}, "invalid-connector", "verify.secrets[0]"),
        ({"scheme": "stripe"}, "invalid-connector", "verify.secrets"),
        ({"scheme": "hmac", "secrets": ["k"]}, "invalid-connector", "verify.header"),
        (
            {"scheme": "github", "secrets": ["k"], "tolerance_s": 0},
            "validation-failed",
            "tolerance",
        ),
        ({"scheme": "github", "secrets": ["k"], "colour": 1}, "validation-failed", "colour"),
    ],
)
async def test_bad_settings_answer_422_naming_the_field(
    client: Client, verify: dict[str, Any], slug: str, field: str
) -> None:
    response = await client.post(
        "/v1/connectors",
        json={"name": "Bad", "fields": [{"name": "id", "type": "string"}], "verify": verify},
    )
    found = problems(response, 422, slug)
    assert any(field in p["field"] or field in p["reason"] for p in found), found
    assert "sk_123" not in response.text
