"""The admin API's ``dedup`` setting: presets resolved and shown, PATCHed, refused with the field
named (on an in-memory log, no Kafka)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.unit.test_connector_api import ADMIN_TOKEN, Client, Harness, create, problems

SECRET = "whsec_0123456789abcdefghijklmnopqrstuv"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    async with AsyncTestClient(Harness(tmp_path).app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        yield test_client


def _dedup(header: str | None = None, pointer: str | None = None, **rest: Any) -> dict[str, Any]:
    return {"header": header, "pointer": pointer, "envelope": False, "window_s": 86400, **rest}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"verify": {"scheme": "stripe", "secrets": [SECRET]}}, _dedup(pointer="/id")),
        ({"verify": {"scheme": "github", "secrets": ["k"]}}, _dedup("x-github-delivery")),
        ({"verify": {"scheme": "shopify", "secrets": ["k"]}}, _dedup("x-shopify-webhook-id")),
        ({"verify": {"scheme": "standard-webhooks", "secrets": [SECRET]}}, _dedup("webhook-id")),
        ({"envelope": "firehose"}, _dedup(envelope=True)),
        ({"envelope": "cloudevents"}, _dedup(envelope=True)),
    ],
)
async def test_presets_are_resolved_and_shown(
    client: Client, extra: dict[str, Any], expected: dict[str, Any]
) -> None:
    created = await create(client, dedup={}, **extra)
    assert created["dedup"] == expected
    shown = await client.get(f"/v1/connectors/{created['id']}")
    assert shown.json()["dedup"] == expected


async def test_explicit_settings_patch_and_removal(client: Client) -> None:
    created = await create(client, dedup={"header": "Idempotency-Key", "pointer": "/a~1b/0"})
    assert created["dedup"] == _dedup("idempotency-key", "/a~1b/0")
    assert (await create(client, name="Plain"))["dedup"] is None
    path = f"/v1/connectors/{created['id']}"
    patched = await client.patch(path, json={"dedup": {"pointer": "/id", "window_s": 604800}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["dedup"] == _dedup(pointer="/id", window_s=604800)
    # A PATCH that sets verify resolves the preset against it.
    preset = await client.patch(
        path, json={"verify": {"scheme": "github", "secrets": ["k"]}, "dedup": {}}
    )
    assert preset.json()["dedup"] == _dedup("x-github-delivery")
    removed = await client.patch(path, json={"dedup": None})
    assert removed.json()["dedup"] is None


@pytest.mark.parametrize(
    ("body", "slug", "field"),
    [
        ({"dedup": {"pointer": "id"}}, "invalid-connector", "dedup.pointer"),
        ({"dedup": {"pointer": "/a~2"}}, "invalid-connector", "dedup.pointer"),
        ({"dedup": {"pointer": ""}}, "invalid-connector", "dedup.pointer"),
        ({"dedup": {"header": "bad header"}}, "invalid-connector", "dedup.header"),
        ({"dedup": {"envelope": True}}, "invalid-connector", "dedup.envelope"),
        ({"dedup": {}}, "invalid-connector", "dedup"),
        (
            {"dedup": {}, "verify": {"scheme": "hmac", "secrets": ["k"], "header": "x-sig"}},
            "invalid-connector",
            "dedup",
        ),
        ({"dedup": {"header": "a", "window_s": 604801}}, "validation-failed", "window_s"),
        ({"dedup": {"header": "a", "window_s": 0}}, "validation-failed", "window_s"),
        ({"dedup": {"header": "a", "colour": 1}}, "validation-failed", "colour"),
    ],
)
async def test_bad_settings_answer_422_naming_the_field(
    client: Client, body: dict[str, Any], slug: str, field: str
) -> None:
    response = await client.post(
        "/v1/connectors", json={"name": "Bad", "fields": [{"name": "id", "type": "string"}], **body}
    )
    found = problems(response, 422, slug)
    assert any(field in p["field"] or field in p["reason"] for p in found), found


async def test_a_patch_removing_the_envelope_its_dedup_reads_is_refused(client: Client) -> None:
    created = await create(client, envelope="pubsub-push", dedup={})
    refused = await client.patch(f"/v1/connectors/{created['id']}", json={"envelope": None})
    assert problems(refused, 422, "invalid-connector")[0]["field"] == "dedup.envelope"
