"""The gateway with ``INLET_GATEWAY_TRANSACTIONS``: a request's records committed together.

``read_committed`` readers see each request whole or not at all; requests that arrive together
share a transaction, and one that Kafka refuses does not take the others down with it.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.admin._resource import ResourceType

from inlet.settings import Settings
from tests.served_stack import committed_records
from tests.servers import serve_inlet

pytestmark = pytest.mark.kafka

TOKEN = "inlet_admin_transactions-test"
FIELDS = [{"name": "id", "type": "string"}, {"name": "blob", "type": "string", "nullable": True}]


@pytest.fixture(scope="module")
def inlet(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, httpx.Client]]:
    base = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        data_dir=str(tmp_path_factory.mktemp("transactions")),
        admin_token=TOKEN,
        topic_partitions=2,
        gateway_transactions=True,
        produce_timeout_s=30.0,
    )
    with serve_inlet(base) as (registry, _gateway, settings):
        admin = httpx.Client(
            base_url=registry, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
        )
        yield settings, admin
        admin.close()


def _connector(admin: httpx.Client, client: httpx.Client) -> dict[str, Any]:
    response = admin.post(
        "/v1/connectors", json={"name": f"t-{uuid.uuid4().hex[:8]}", "fields": FIELDS}
    )
    assert response.status_code == 201, response.text
    connector: dict[str, Any] = response.json()
    deadline = time.monotonic() + 30
    while client.post(connector["ingest_url"], json=[]).status_code == 404:
        assert time.monotonic() < deadline, "the gateway never learned of the connector"
        time.sleep(0.05)
    return connector


def _committed(settings: Settings, topic: str) -> list[dict[str, Any]]:
    """What a read_committed reader gets from ``topic``, once its transactions are decided."""
    return [
        {"value": m.value(), "headers": dict(m.headers() or [])}
        for m in committed_records(settings, topic)
    ]


def test_requests_are_committed_whole_and_a_refused_one_is_not_seen(
    inlet: tuple[Settings, httpx.Client],
) -> None:
    settings, admin = inlet
    with httpx.Client(timeout=60) as client:
        connector = _connector(admin, client)
        url = connector["ingest_url"]
        # Concurrent requests, so that some share a transaction; one has a rejected record.
        bodies = [[{"id": f"{n}-{i}"} for i in range(20)] for n in range(8)]
        bodies[3].append({"blob": "no id"})
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda body: client.post(url, json=body), bodies))
        assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
        assert answers[3].json()["rejected"] == 1
        assert len(_committed(settings, connector["topic"])) == 160
        (kept,) = _committed(settings, connector["rejected_topic"])
        assert json.loads(kept["value"])["record"] == {"blob": "no id"}

        # The topic now takes 2,000-byte batches: a request with a larger record is refused and
        # its transaction aborted; the small records sent with it are not seen either.
        limit = ConfigEntry(
            "max.message.bytes", "2000", incremental_operation=AlterConfigOpType.SET
        )
        resource = ConfigResource(
            ResourceType.TOPIC, connector["topic"], incremental_configs=[limit]
        )
        kafka = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers or ""})
        kafka.incremental_alter_configs([resource])[resource].result(30)
        deadline = time.monotonic() + 30
        while True:
            marker = f"big-{time.monotonic_ns()}"
            body = [{"id": marker}, {"id": marker, "blob": secrets.token_hex(5_000)}]
            refused = client.post(url, json=body)
            if refused.status_code != 200:
                break
            assert time.monotonic() < deadline, "the topic's new limit never applied"
            time.sleep(0.2)
        assert refused.status_code == 413, refused.text
        assert refused.json()["code"] == "kafka_record_too_large"
        assert (
            "2 records was aborted: read_committed consumers see none" in refused.json()["detail"]
        )
        after = client.post(url, json=[{"id": "after"}])
        assert after.status_code == 200, after.text
        seen = [json.dumps(str(r["value"])) for r in _committed(settings, connector["topic"])]
        assert not any(marker in value for value in seen)
        assert any("after" in value for value in seen)
