"""Durability under a broker outage: 503 with Retry-After while Kafka is down, nothing claimed
that is not stored, and service again once it is back."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer

from deploy.broker import LocalKafka, env_cache_dir
from inlet.settings import Settings
from tests.servers import serve_inlet

pytestmark = pytest.mark.kafka

TOKEN = "inlet_admin_fault-test"


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalKafka]:
    """A broker of this test's own, since the test stops it (data kept across the restart)."""
    broker = LocalKafka(
        data_dir=tmp_path / "kafka", cache_dir=env_cache_dir(), first_port=None, quiet=True
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def _post(client: httpx.Client, url: str, ids: list[str]) -> httpx.Response:
    return client.post(url, json=[{"id": i} for i in ids])


def test_503_while_kafka_is_down_then_200_and_nothing_acknowledged_is_lost(
    own_broker: LocalKafka, tmp_path: Path
) -> None:
    settings = Settings(
        kafka_bootstrap_servers=own_broker.bootstrap_servers,
        data_dir=str(tmp_path / "data"),
        admin_token=TOKEN,
        topic_partitions=1,
        produce_timeout_s=3.0,
    )
    acknowledged: list[str] = []
    with serve_inlet(settings) as (registry, gateway, settings):
        admin = httpx.Client(base_url=registry, headers={"Authorization": f"Bearer {TOKEN}"})
        connector: dict[str, Any] = admin.post(
            "/v1/connectors",
            json={"name": "faults", "fields": [{"name": "id", "type": "string"}]},
        ).json()
        admin.close()
        client = httpx.Client(timeout=30)
        url = connector["ingest_url"]
        deadline = time.monotonic() + 30
        while (first := _post(client, url, ["before"])).status_code == 404:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert first.status_code == 200
        acknowledged.append("before")

        own_broker.stop_node(1)
        down = _post(client, url, ["during-1", "during-2"])
        assert down.status_code == 503
        assert int(down.headers["retry-after"]) >= 1
        assert down.json()["code"] == "kafka_unavailable"
        health = client.get(f"{gateway}/health")
        deadline = time.monotonic() + 30
        while health.status_code != 503 and time.monotonic() < deadline:
            time.sleep(0.2)
            health = client.get(f"{gateway}/health")
        assert health.status_code == 503

        own_broker.start_node(1)
        deadline = time.monotonic() + 60
        n = 0
        while True:
            n += 1
            response = _post(client, url, [f"after-{n}"])
            if response.status_code == 200:
                acknowledged.append(f"after-{n}")
                break
            assert response.status_code == 503, response.text
            assert time.monotonic() < deadline, "the gateway never recovered"
            time.sleep(0.5)
        for k in range(5):
            assert _post(client, url, [f"more-{k}"]).status_code == 200
            acknowledged.append(f"more-{k}")
        client.close()

    stored = _read_ids(own_broker.bootstrap_servers, connector["topic"], set(acknowledged))
    missing = set(acknowledged) - set(stored)
    assert not missing, f"acknowledged but not stored: {missing}"


def _read_ids(bootstrap: str, topic: str, wanted: set[str]) -> list[str]:
    """The ids on ``topic``, read until every one of ``wanted`` showed (or a deadline passed).

    Not "until as many as acknowledged": the records of a request answered 503 may be written
    after all (the producer keeps delivering them), and count too.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": uuid.uuid4().hex,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    ids: list[str] = []
    deadline = time.monotonic() + 30
    try:
        while not wanted <= set(ids) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None and msg.value():
                value = msg.value() or b""
                # Avro string after the 5-byte header: zig-zag varint length, then UTF-8.
                ids.append(value[6:].decode())
    finally:
        consumer.close()
    return ids
