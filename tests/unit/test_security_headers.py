"""Every answer of both apps carries the security headers, and no page loads a CDN's scripts
(issue #10, item 13; the set and why: ``inlet/security_headers.py``, ``inlet/openapi.py``).

The gateway is driven both ways in (its fast path and plain Litestar), with every request of the
fast path's parity cases; the registry as ``registry/wiring.py`` builds it, on an in-memory log.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from inlet.security_headers import add_security_headers
from inlet.settings import Settings
from inlet.statelog.fold import InMemoryStateLog
from tests.registry_app import ADMIN_TOKEN, InMemoryRegistry
from tests.unit.test_connector_api import ORDER_FIELDS
from tests.unit.test_fast_path import CASES, Case, answer, gateway

EXPECTED = {
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "x-frame-options": "DENY",
}


def missing(headers: httpx.Headers | dict[str, str]) -> dict[str, str | None]:
    """The expected headers an answer lacks or has otherwise: name → what it had."""
    return {
        name: headers.get(name) for name, value in EXPECTED.items() if headers.get(name) != value
    }


GATEWAY_CASES = {
    **CASES,
    "GET /metrics": Case(200, "GET", "/metrics", {}, fast=False),
    "GET /health": Case(200, "GET", "/health/live", {}, fast=False),
    "GET unknown path": Case(404, "GET", "/nope", {}, fast=False),
    "OPTIONS ingest": Case(204, "OPTIONS", "/v1/ingest/x", {}, fast=False),
    "GET /schema": Case(404, "GET", "/schema/swagger", {}, fast=False),
}


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast path", "litestar"])
@pytest.mark.parametrize("case", GATEWAY_CASES.values(), ids=GATEWAY_CASES.keys())
async def test_every_gateway_answer_carries_them(case: Case, fast_path: bool) -> None:
    status, headers, _ = await answer(gateway(fast_path=fast_path), case)
    assert status == case.status
    assert missing(headers) == {}


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[AsyncTestClient[Litestar]]:
    # The app keeps a generated secret key in its data dir: the test's, not the user's.
    built = InMemoryRegistry(Settings(data_dir=str(tmp_path)), InMemoryStateLog)
    async with AsyncTestClient(built.app) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        yield client


async def test_every_registry_answer_carries_them(registry: AsyncTestClient[Litestar]) -> None:
    created = await registry.post("/v1/connectors", json={"name": "o", "fields": ORDER_FIELDS})
    assert created.status_code == 201, created.text
    assert "token" in created.json()
    connector = created.json()["id"]
    answers = {
        "create (the token)": created,
        "get": await registry.get(f"/v1/connectors/{connector}"),
        "list": await registry.get("/v1/connectors"),
        "rotate (a token)": await registry.post(
            f"/v1/connectors/{connector}/rotate-token", json={}
        ),
        "422": await registry.post("/v1/connectors", json={"name": ""}),
        "404 admin": await registry.get("/v1/connectors/con_nope"),
        "401": await registry.get("/v1/connectors", headers={"Authorization": "Bearer no"}),
        "405": await registry.put("/v1/connectors"),
        "404 unmatched": await registry.get("/nope"),
        "Confluent": await registry.get("/subjects"),
        "Confluent 404": await registry.get("/schemas/ids/999"),
        "OpenAPI document": await registry.get("/schema/openapi.json"),
        "/metrics": await registry.get("/metrics"),
        "/health": await registry.get("/health/live"),
    }
    assert {name: missing(r.headers) for name, r in answers.items() if missing(r.headers)} == {}


UI_PAGES = ["swagger", "redoc", "elements", "rapidoc", "scalar", "openapi.yaml", "openapi.yml"]


@pytest.mark.parametrize("page", UI_PAGES)
async def test_no_openapi_page_is_served(registry: AsyncTestClient[Litestar], page: str) -> None:
    response = await registry.get(f"/schema/{page}")
    assert response.status_code == 404
    assert b"<script" not in response.content
    assert missing(response.headers) == {}


@pytest.mark.parametrize("path", ["/schema/openapi.json", "/schema"])
async def test_the_openapi_document_stays(registry: AsyncTestClient[Litestar], path: str) -> None:
    response = await registry.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.oai.openapi+json"
    assert "/v1/connectors" in response.json()["paths"]


async def test_an_answer_keeps_its_own_value() -> None:
    own = [(b"Cache-Control", b"max-age=60"), (b"content-type", b"text/html")]
    message: Any = {"type": "http.response.start", "status": 200, "headers": own}
    await add_security_headers(message, {})  # type: ignore[arg-type]
    headers: list[tuple[bytes, bytes]] = message["headers"]
    assert (b"Cache-Control", b"max-age=60") in headers
    assert [name for name, _ in headers].count(b"cache-control") == 0
    assert (b"x-frame-options", b"DENY") in headers
