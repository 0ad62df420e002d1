"""A failed first attempt of a keyed delivery, on a 3-node cluster of this test's own: one replica
of the connector's topic gone while the topic asks for all three in sync (``min.insync.replicas``),
so the records cannot be acknowledged while ``_inlet_dedup`` works on. The answer is 503, the key
is released (a retry, on the other gateway too, is processed afresh, not held 409), the retry
after recovery lands, and the records of the 503'd attempts that Kafka writes after all (the
gateway's documented gap) are skipped by the PostgreSQL pipeline: the key is once in the table."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.admin._resource import ResourceType

from deploy.broker import LocalKafka, env_cache_dir
from gateway.dedup_fold import CLAIM_SUFFIX, Claim, Entry, Released
from gateway.dedup_keys import request_digest
from inlet.records import HEADER_DEDUP_KEY
from inlet.settings import Settings
from inlet.topics import DEDUP_TOPIC
from tests.integration._dedup_helpers import (
    DEADLINE_S,
    Served,
    fresh_database,
    new_connector,
    new_pipeline,
    served_on,
    table_rows,
    wait_reported,
)
from tests.served_stack import committed_records, until

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(900)]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    cluster = LocalKafka(
        data_dir=tmp_path / "kafka", cache_dir=env_cache_dir(), nodes=3, first_port=None, quiet=True
    )
    cluster.start(timeout_s=180)
    try:
        with served_on(cluster.bootstrap_servers, tmp_path, 1) as found:
            found.cluster = cluster
            yield found
    finally:
        cluster.stop()


@pytest.fixture
def database(postgres_dsn: str) -> Iterator[str]:
    with fresh_database(postgres_dsn) as dsn:
        yield dsn


def _admin(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers or ""})


def _partitions(settings: Settings, topic: str) -> dict[int, Any]:
    return dict(_admin(settings).list_topics(topic, timeout=10).topics[topic].partitions)


def _set_min_insync(settings: Settings, topic: str, value: str) -> None:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers or ""})
    entry = ConfigEntry("min.insync.replicas", value, incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)

    # The controller answers before the broker applied it: wait until the broker says it has.
    def applied() -> bool:
        described = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)])
        configs = next(iter(described.values())).result(30)
        return bool(configs["min.insync.replicas"].value == value)

    until(applied, f"min.insync.replicas={value} on {topic}")


def _claim_entries(settings: Settings, digest: bytes) -> list[Entry]:
    """The claim-slot entries (claims and releases) of one key on ``_inlet_dedup``, in order."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers or "",
            "group.id": uuid.uuid4().hex,
            "enable.partition.eof": True,
        }
    )
    partitions = consumer.list_topics(DEDUP_TOPIC, timeout=10).topics[DEDUP_TOPIC].partitions
    consumer.assign([TopicPartition(DEDUP_TOPIC, p, 0) for p in partitions])
    found: list[Entry] = []
    todo = set(partitions)
    deadline = time.monotonic() + DEADLINE_S
    try:
        while todo and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                if message.error() is not None:
                    todo.discard(message.partition() or 0)  # end of the partition
                elif message.key() == digest + CLAIM_SUFFIX:
                    found.append(msgspec.json.decode(message.value() or b"", type=Entry))
        return found
    finally:
        consumer.close()


def test_a_failed_first_attempt_is_released_and_its_retry_lands_once(
    served: Served, database: str
) -> None:
    cluster = served.cluster
    assert cluster is not None
    connector, urls = new_connector(served, dedup={"header": "webhook-id"})
    pipeline = new_pipeline(served, connector, database)
    topic, key = connector["topic"], f"evt_{uuid.uuid4().hex}"
    warm = {"webhook-id": f"warm_{uuid.uuid4().hex}"}
    assert httpx.post(urls[0], json={"id": "warm", "amount": 1}, headers=warm).status_code == 200
    wait_reported(served, pipeline, 1, 0)  # the feed runs

    # The topic asks for every replica in sync, and one replica goes (not the leader's node).
    _set_min_insync(served.settings, topic, "3")
    leader = _partitions(served.settings, topic)[0].leader
    gone = next(n.node_id for n in cluster.nodes if n.node_id != leader)
    cluster.stop_node(gone)

    def fenced() -> bool:
        if len(_partitions(served.settings, topic)[0].isrs) != 2:
            return False
        dedup = _partitions(served.settings, DEDUP_TOPIC).values()
        return all(p.leader not in (-1, gone) for p in dedup)

    until(fenced, "the stopped broker out of the topic's ISR and _inlet_dedup led elsewhere", 90)
    body = {"id": "paid", "amount": 100}
    headers = {"webhook-id": key}
    first = httpx.post(urls[0], json=body, headers=headers, timeout=60)
    assert first.status_code == 503, first.text
    assert first.json()["code"] == "kafka_unavailable"
    assert int(first.headers["retry-after"]) >= 1
    # Released, not held for its lease (3 x 3 s + 10 s): the retry, on the other gateway, is
    # processed afresh and fails the same way, rather than being told 409 in_progress.
    second = httpx.post(urls[1], json=body, headers=headers, timeout=60)
    assert second.status_code == 503, second.text
    entries = _claim_entries(served.settings, request_digest(connector["id"], key))
    assert [type(e) for e in entries] == [Claim, Released, Claim, Released]

    cluster.start_node(gone, timeout_s=120)
    until(lambda: len(_partitions(served.settings, topic)[0].isrs) == 3, "the ISR whole", 90)
    # After recovery the retry writes: a fresh 200, then duplicates of it.
    failed = 2
    deadline = time.monotonic() + DEADLINE_S
    while (retry := httpx.post(urls[0], json=body, headers=headers, timeout=60)).status_code == 503:
        assert time.monotonic() < deadline, "the topic never took the records again"
        failed += 1
        time.sleep(float(retry.headers["retry-after"]))
    assert retry.status_code == 200, retry.text
    assert "duplicate" not in retry.json()
    again = httpx.post(urls[1], json=body, headers=headers, timeout=60)
    assert again.json()["duplicate"] is True, again.text

    # The 503'd attempts' records stayed in the producers' queues (no purge exists), and Kafka
    # writes them once the topic takes writes again, well within the delivery timeout
    # (inlet/kafka.py DELIVERY_TIMEOUT_MS): the topic ends with one copy per attempt. The table
    # holds the key once; the other copies are skipped and counted.
    def copies() -> int:
        return sum(
            1
            for m in committed_records(served.settings, topic)
            if dict(m.headers() or []).get(HEADER_DEDUP_KEY) == key.encode()
        )

    until(lambda: copies() == failed + 1, "the 503'd attempts' records written after all", 90)
    wait_reported(served, pipeline, 2, failed)
    assert sorted(table_rows(database)) == sorted([(key, "paid"), (warm["webhook-id"], "warm")])
