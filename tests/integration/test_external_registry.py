"""``INLET_SCHEMA_REGISTRY_URL``: connectors keep their schemas in another Confluent-compatible
registry. The other registry here is a second Inlet registry (A), with its own ``_schemas``; the
Inlet under test (B) points at it with A's admin token as the Basic-auth password.

Both share one Kafka, hence ``_inlet_connectors``: A folds B's connector records too (harmless).
"""

from __future__ import annotations

import io
import json
import time
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from fastavro import parse_schema, schemaless_writer

from inlet.kafka import client_config
from inlet.records import wire_frame
from inlet.settings import Settings
from registry.app import create_app
from tests.servers import serve

pytestmark = pytest.mark.kafka

TOKEN_A = "inlet_admin_external-registry"
TOKEN_B = "inlet_admin_uses-external-registry"
FIELDS = [
    {"name": "id", "type": "string"},
    {"name": "total", "type": "decimal", "precision": 10, "scale": 2},
]


def _topics(settings: Settings) -> set[str]:
    admin = AdminClient(client_config(settings, client_id="test"))
    return set(admin.list_topics(timeout=10).topics)


def _wait_until_gone(settings: Settings, topic: str, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if topic not in _topics(settings):
            return True
        time.sleep(0.2)
    return False


def _produce_order(settings: Settings, topic: str, schema_id: int, schema_text: str) -> None:
    body = io.BytesIO()
    record = {"id": "o-1", "total": Decimal("12.30")}
    schemaless_writer(body, parse_schema(json.loads(schema_text)), record)
    producer = Producer(client_config(settings, client_id="test"))
    producer.produce(topic, wire_frame(schema_id, body.getvalue()))
    assert producer.flush(10) == 0


def test_connectors_keep_their_schemas_in_another_registry(
    settings: Settings, tmp_path: Path
) -> None:
    kafka = settings.kafka_bootstrap_servers
    settings_a = Settings(
        kafka_bootstrap_servers=kafka,
        data_dir=str(tmp_path / "a"),
        admin_token=TOKEN_A,
        topic_partitions=1,
    )
    name = f"external-{uuid.uuid4().hex[:6]}"
    with serve(create_app(settings_a)) as url_a:
        settings_b = Settings(
            kafka_bootstrap_servers=kafka,
            data_dir=str(tmp_path / "b"),
            admin_token=TOKEN_B,
            topic_partitions=1,
            schema_registry_url=url_a,
            schema_registry_basic_auth=f"inlet:{TOKEN_A}",
        )
        with (
            serve(create_app(settings_b)) as url_b,
            httpx.Client(base_url=url_a, auth=("inlet", TOKEN_A), timeout=30) as a,
            httpx.Client(
                base_url=url_b, headers={"Authorization": f"Bearer {TOKEN_B}"}, timeout=30
            ) as b,
        ):
            created = b.post("/v1/connectors", json={"name": name, "fields": FIELDS})
            assert created.status_code == 201, created.text
            connector = created.json()
            subject = connector["subject"]

            # The schema is in A, with the id and version the connector carries.
            latest = a.get(f"/subjects/{subject}/versions/latest")
            assert latest.status_code == 200, latest.text
            assert latest.json()["id"] == connector["schema_id"]
            assert latest.json()["version"] == connector["schema_version"] == 1

            # B's own Confluent API is not served: it says where the schemas are.
            for path in ("/subjects", f"/subjects/{subject}/versions/latest", "/config"):
                elsewhere = b.get(path)
                assert elsewhere.status_code == 404, path
                assert elsewhere.json()["error_code"] == 40460
                assert url_a in elsewhere.json()["message"]

            # B's pull feed decodes records with the schema their header names, fetched from A.
            schema_text = a.get(f"/schemas/ids/{connector['schema_id']}").json()["schema"]
            _produce_order(settings, connector["topic"], connector["schema_id"], schema_text)
            page = b.get(f"/v1/connectors/{connector['id']}/records")
            assert page.status_code == 200, page.text
            pulled = page.json()["records"]
            assert [(r["schema_id"], r["value"]) for r in pulled] == [
                (connector["schema_id"], {"id": "o-1", "total": "12.30"})
            ]

            # A compatible change: a new version in A.
            more = [*FIELDS, {"name": "channel", "type": "string", "nullable": True}]
            evolved = b.patch(f"/v1/connectors/{connector['id']}", json={"fields": more})
            assert evolved.status_code == 200, evolved.text
            assert evolved.json()["schema_version"] == 2
            latest = a.get(f"/subjects/{subject}/versions/latest").json()
            assert (latest["id"], latest["version"]) == (evolved.json()["schema_id"], 2)

            # An incompatible one: 409 with A's reasons, and nothing changes anywhere.
            breaking = b.patch(
                f"/v1/connectors/{connector['id']}",
                json={"fields": [{"name": "id", "type": "integer"}]},
            )
            assert breaking.status_code == 409, breaking.text
            assert breaking.json()["problems"], "A's reasons, one problem each"
            assert a.get(f"/subjects/{subject}/versions").json() == [1, 2]
            assert b.get(f"/v1/connectors/{connector['id']}").json()["schema_version"] == 2

            # Delete (on_delete: delete): the topics go, and the subject with them (soft).
            assert b.delete(f"/v1/connectors/{connector['id']}").status_code == 204
            assert a.get(f"/subjects/{subject}/versions").json()["error_code"] == 40401
            deleted = a.get(f"/subjects/{subject}/versions", params={"deleted": "true"})
            assert deleted.json() == [1, 2]
            assert _wait_until_gone(settings, connector["topic"])
