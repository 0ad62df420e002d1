"""Connectors on real Kafka: topics, subject and definition appear together and go together."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest
from confluent_kafka.admin import AdminClient

from inlet.kafka import client_config
from inlet.settings import Settings
from registry.app import create_app
from tests.servers import serve

pytestmark = pytest.mark.kafka

TOKEN = "inlet_admin_connector-test"
FIELDS = [
    {"name": "id", "type": "string"},
    {"name": "total", "type": "decimal", "precision": 10, "scale": 2},
    {"name": "note", "type": "string", "nullable": True},
]


def _topics(settings: Settings) -> set[str]:
    admin = AdminClient(client_config(settings, client_id="test"))
    return set(admin.list_topics(timeout=10).topics)


def _wait_until(predicate: object, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def test_create_patch_delete_on_real_kafka(settings: Settings, tmp_path: Path) -> None:
    settings = Settings(
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
        data_dir=str(tmp_path),
        admin_token=TOKEN,
        topic_partitions=2,
    )
    name = f"orders-{uuid.uuid4().hex[:6]}"
    with serve(create_app(settings)) as url:
        assert httpx.get(f"{url}/schema/openapi.json").status_code == 200  # public, no token
        assert httpx.get(f"{url}/v1/connectors").status_code == 401
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"})
        created = api.post("/v1/connectors", json={"name": name, "fields": FIELDS})
        assert created.status_code == 201, created.text
        connector = created.json()
        assert connector["token"].startswith("inlet_ingest_")
        assert connector["ingest_url"].endswith(connector["token"])
        assert {connector["topic"], connector["rejected_topic"]} <= _topics(settings)

        subject = api.get(f"/subjects/{connector['subject']}/versions/latest").json()
        assert subject["id"] == connector["schema_id"]
        assert subject["version"] == 1

        taken = api.post("/v1/connectors", json={"name": name.upper(), "fields": FIELDS})
        assert taken.status_code == 409

        evolved = api.patch(
            f"/v1/connectors/{connector['id']}",
            json={"fields": [*FIELDS, {"name": "channel", "type": "string", "nullable": True}]},
        )
        assert evolved.status_code == 200, evolved.text
        assert evolved.json()["schema_version"] == 2
        breaking = api.patch(
            f"/v1/connectors/{connector['id']}",
            json={"fields": [{"name": "id", "type": "integer"}]},
        )
        assert breaking.status_code == 409
        assert api.get(f"/v1/connectors/{connector['id']}").json()["schema_version"] == 2

        assert api.delete(f"/v1/connectors/{connector['id']}").status_code == 204
        assert api.get(f"/v1/connectors/{connector['id']}").status_code == 404
        assert _wait_until(lambda: connector["topic"] not in _topics(settings))
        api.close()

    # A fresh instance folds the same log: the deleted connector stays deleted.
    with serve(create_app(settings)) as url:
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"})
        assert api.get(f"/v1/connectors/{connector['id']}").status_code == 404
        again = api.post("/v1/connectors", json={"name": name, "fields": FIELDS})
        assert again.status_code == 201
        api.close()
