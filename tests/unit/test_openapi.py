"""The OpenAPI documents describe what the services answer (schemathesis checks them against the
real apps: ``tests/integration/test_openapi_conformance.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

from gateway._fast_path import IngestDispatcher
from gateway.app import build_app as build_gateway
from gateway.metrics import GatewayMetrics
from inlet.openapi import openapi_document
from inlet.settings import Settings
from inlet.statelog.fold import InMemoryStateLog
from registry._media import ANSWER_MEDIA_TYPES
from registry.app import create_app
from tests.registry_app import InMemoryRegistry


def test_openapi_lists_admin_and_registry_paths(tmp_path: Path) -> None:
    # The app keeps a generated secret key in its data dir: the test's, not the user's.
    settings = Settings(
        kafka_bootstrap_servers="127.0.0.1:1", admin_token="t", data_dir=str(tmp_path)
    )
    app = create_app(settings)
    paths = set(app.openapi_schema.paths or {})
    for expected in (
        "/v1/connectors",
        "/v1/connectors/{connector_id}",
        "/v1/connectors/{connector_id}/duplicate",
        "/v1/connectors/{connector_id}/rotate-token",
        "/subjects",
        "/subjects/{subject}/versions",
        "/schemas/ids/{schema_id}",
        "/config",
        "/compatibility/subjects/{subject}/versions/{version}",
    ):
        assert expected in paths, f"{expected} missing from OpenAPI ({sorted(paths)})"


def _registry_app(tmp_path: Path) -> Any:
    settings = Settings(data_dir=str(tmp_path))
    return InMemoryRegistry(settings, InMemoryStateLog).app


def test_options_names_every_method_of_a_path(tmp_path: Path) -> None:
    # Litestar's own answer named only the first handler's: "Allow: GET, OPTIONS" for /config.
    with TestClient(_registry_app(tmp_path)) as client:
        assert client.options("/config").headers["allow"] == "DELETE, GET, OPTIONS, PUT"
        answer = client.options("/v1/connectors/con_x")
        assert answer.headers["allow"] == "DELETE, GET, OPTIONS, PATCH"
        assert _methods(client.post("/config").headers["allow"]) == {
            "DELETE",
            "GET",
            "OPTIONS",
            "PUT",
        }


def test_gateway_405_keeps_allow(tmp_path: Path) -> None:
    app = build_gateway(Settings(data_dir=str(tmp_path)), GatewayMetrics(), _no_lifespan)
    with TestClient(app) as client:
        answer = client.get("/v1/ingest/some-token")
        assert answer.status_code == 405
        assert _methods(answer.headers["allow"]) == {"OPTIONS", "POST"}
        assert client.options("/v1/ingest").headers["allow"] == "OPTIONS, POST"


def test_documents_describe_every_error_status(tmp_path: Path) -> None:
    registry = openapi_document(_registry_app(tmp_path))
    patch = registry["paths"]["/v1/connectors/{connector_id}"]["patch"]["responses"]
    assert {"200", "401", "404", "409", "422", "503"} <= set(patch)
    assert "application/problem+json" in patch["404"]["content"]
    versions = registry["paths"]["/subjects/{subject}/versions/{version}"]["get"]
    # Confluent's answers, success or error, in each of its media types (as ``Accept`` asks).
    for status in ("200", "404"):
        assert set(versions["responses"][status]["content"]) == set(ANSWER_MEDIA_TYPES)
    assert len(ANSWER_MEDIA_TYPES) == 3
    assert "40402" in versions["responses"]["404"]["description"]
    assert registry["components"]["schemas"]["NewConnector"]["additionalProperties"] is False
    app = build_gateway(Settings(data_dir=str(tmp_path)), GatewayMetrics(), _no_lifespan)
    assert isinstance(app, IngestDispatcher)
    assert isinstance(app.app, Litestar)
    gateway = openapi_document(app.app)
    ingest = gateway["paths"]["/v1/ingest/{token}"]["post"]
    assert {
        "200",
        "400",
        "401",
        "404",
        "408",
        "409",
        "413",
        "415",
        "422",
        "429",
        "431",
        "500",
        "503",
    } == set(ingest["responses"])
    assert set(ingest["requestBody"]["content"]) == {
        "application/json",
        "application/x-ndjson",
        "text/csv",
    }
    assert "Retry-After" in ingest["responses"]["429"]["headers"]


def _methods(allow: str) -> set[str]:
    return {method.strip() for method in allow.split(",")}


@asynccontextmanager
async def _no_lifespan(_app: Litestar) -> AsyncIterator[None]:
    yield


def test_the_documents_show_idempotency_keys_downstream(tmp_path: Path) -> None:
    # The pull feed's records carry their key, a pipeline counts the skips, a PostgreSQL sink
    # says whether it enforces the keys.
    schemas = openapi_document(_registry_app(tmp_path))["components"]["schemas"]
    found = {name: set(schema.get("properties", {})) for name, schema in schemas.items()}
    assert any({"dedup_key", "offset", "value"} <= props for props in found.values())
    assert any(
        {"records_duplicates_skipped", "records_delivered"} <= props for props in found.values()
    )
    assert any({"duplicates_skipped", "dead_lettered"} <= props for props in found.values())
    assert any({"dsn", "table", "dedup"} <= props for props in found.values())
