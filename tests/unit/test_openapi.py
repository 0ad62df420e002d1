"""The OpenAPI document describes both APIs the registry service serves."""

from __future__ import annotations

from inlet.settings import Settings
from registry.app import create_app


def test_openapi_lists_admin_and_registry_paths() -> None:
    app = create_app(Settings(kafka_bootstrap_servers="127.0.0.1:1", admin_token="t"))
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
