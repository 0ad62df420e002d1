"""The OpenAPI document describes both APIs the registry service serves."""

from __future__ import annotations

from pathlib import Path

from inlet.settings import Settings
from registry.app import create_app


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
