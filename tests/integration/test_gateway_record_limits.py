"""Records Kafka cannot take, on real Kafka: never a 503 that wrote half the request.

Every record is sized against ``INLET_MAX_MESSAGE_BYTES`` (the producer's ``message.max.bytes``
and the topics' ``max.message.bytes``) before any is produced; a refusal Kafka gives for good is
answered as such, without ``Retry-After``.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.admin._resource import ResourceType

from inlet.settings import Settings
from tests.served_stack import topic_size
from tests.servers import serve_inlet

pytestmark = pytest.mark.kafka

T = TypeVar("T")
TOKEN = "inlet_admin_record-limits-test"
FIELDS = [
    {"name": "id", "type": "string"},
    {"name": "blob", "type": "string", "nullable": True},
    {"name": "kind", "type": "enum", "symbols": ["a", "b"], "nullable": True},
]


@dataclass
class Stack:
    settings: Settings
    admin: httpx.Client
    client: httpx.Client

    def connector(self, **extra: Any) -> dict[str, Any]:
        body = {"name": f"c-{uuid.uuid4().hex[:8]}", "fields": FIELDS, **extra}
        response = self.admin.post("/v1/connectors", json=body)
        assert response.status_code == 201, response.text
        connector: dict[str, Any] = response.json()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the gateway's fold has the new connector
            probe = self.client.post(connector["ingest_url"], json=[])
            if probe.status_code != 404:
                return connector
            time.sleep(0.05)
        pytest.fail("the gateway never learned of the connector")

    def admin_client(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap_servers or ""})

    def topic_size(self, topic: str) -> int:
        return topic_size(self.settings, topic)

    def read_all(self, topic: str, count: int) -> list[bytes]:
        consumer = Consumer(
            {
                "bootstrap.servers": self.settings.kafka_bootstrap_servers or "",
                "group.id": uuid.uuid4().hex,
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe([topic])
        values: list[bytes] = []
        deadline = time.monotonic() + 30
        try:
            while len(values) < count and time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is not None and message.error() is None:
                    values.append(message.value() or b"")
        finally:
            consumer.close()
        return values


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # The defaults that matter are the shipped ones: 1 MiB of JSON per record, 1,000,000 bytes
    # per Kafka record (librdkafka's own default, which the code as found left in place).
    base = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        data_dir=str(tmp_path_factory.mktemp("record-limits")),
        admin_token=TOKEN,
        topic_partitions=1,
        produce_timeout_s=20.0,
    )
    with serve_inlet(base) as (registry, _gateway, settings):
        admin = httpx.Client(base_url=registry, headers={"Authorization": f"Bearer {TOKEN}"})
        client = httpx.Client(timeout=60)
        yield Stack(settings, admin, client)
        admin.close()
        client.close()


def small(i: int) -> dict[str, Any]:
    return {"id": f"r-{i}", "blob": "small", "kind": "a"}


# Under INLET_MAX_RECORD_BYTES as JSON (1 MiB), over 1,000,000 bytes as Avro.
HUGE_BLOB = "x" * 1_010_000


def test_an_avro_value_over_the_kafka_limit_is_a_record_error_and_nothing_is_half_written(
    stack: Stack,
) -> None:
    connector = stack.connector()
    records = [small(0), small(1), {"id": "huge", "blob": HUGE_BLOB}]
    assert len(json.dumps(records[2])) < stack.settings.max_record_bytes

    # Partial mode (the connector's default): the huge record is invalid, and too large to keep
    # on the rejected topic as well: the request is refused whole, naming it. (The code as found
    # answered 503 kafka_unavailable with Retry-After, after writing records 0 and 1.)
    refused = stack.client.post(connector["ingest_url"], json=records)
    assert refused.status_code == 413, refused.text
    body = refused.json()
    assert body["code"] == "rejected_record_too_large"
    assert "retry-after" not in refused.headers
    assert body["index"] == 2
    assert body["limit_bytes"] == stack.settings.max_message_bytes
    assert [(e["index"], e["code"]) for e in body["errors"]] == [(2, "record_too_large")]

    # Atomic: a per-record error like any other, and nothing written.
    atomic = stack.client.post(connector["ingest_url"] + "?mode=atomic", json=records)
    assert atomic.status_code == 422, atomic.text
    errors = atomic.json()["errors"]
    assert [(e["index"], e["pointer"], e["code"]) for e in errors] == [
        (2, "/2", "record_too_large")
    ]

    assert stack.topic_size(connector["topic"]) == 0
    assert stack.topic_size(connector["rejected_topic"]) == 0
    # A retry of the small records alone goes through, once.
    assert stack.client.post(connector["ingest_url"], json=records[:2]).status_code == 200
    assert stack.topic_size(connector["topic"]) == 2


def _until_the_broker_knows_the_topic(call: Callable[[], T]) -> T:
    """``call()``, again while the broker answers that the (new) topic is unknown: the gateway
    learns of a connector from the log, its broker of the topic from the metadata, apart."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return call()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise
            assert time.monotonic() < deadline, "the broker never knew the topic"
            time.sleep(0.2)


def test_the_topics_take_what_the_producer_may_send(stack: Stack) -> None:
    connector = stack.connector()
    admin = stack.admin_client()
    for topic in (connector["topic"], connector["rejected_topic"]):
        resource = ConfigResource(ResourceType.TOPIC, topic)

        def describe(resource: ConfigResource = resource) -> dict[str, ConfigEntry]:
            configs: dict[str, ConfigEntry] = admin.describe_configs([resource])[resource].result(
                30
            )
            return configs

        configs = _until_the_broker_knows_the_topic(describe)
        assert configs["max.message.bytes"].value == str(stack.settings.max_message_bytes)


def test_a_rejected_record_quotes_a_slice_of_its_value_and_keeps_the_record_whole(
    stack: Stack,
) -> None:
    connector = stack.connector()
    big_symbol = "z" * 600_000  # not one of the enum's symbols
    records = [small(0), {"id": "bad", "kind": big_symbol}, small(2)]
    # The code as found quoted the whole value in the reason: a 1.2 MB rejected record, which
    # librdkafka refused, answered 503 after queueing record 0.
    response = stack.client.post(connector["ingest_url"], json=records)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    (error,) = body["errors"]
    assert error["code"] == "invalid_value"
    assert len(error["message"]) < 200

    (kept,) = stack.read_all(connector["rejected_topic"], 1)
    rejected = json.loads(kept)
    assert rejected["record"] == records[1]  # the record as sent, whole
    assert len(rejected["errors"][0]["message"]) < 200
    assert stack.topic_size(connector["topic"]) == 2


def test_an_invalid_record_too_large_to_keep_refuses_the_request_413(stack: Stack) -> None:
    connector = stack.connector()
    records = [small(0), {"id": "bad", "kind": "z" * 1_010_000}]
    response = stack.client.post(connector["ingest_url"], json=records)
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["code"] == "rejected_record_too_large"
    assert body["index"] == 1
    assert "record 1 is invalid" in body["detail"]
    assert [(e["index"], e["code"]) for e in body["errors"]] == [(1, "invalid_value")]
    assert stack.topic_size(connector["topic"]) == 0
    assert stack.topic_size(connector["rejected_topic"]) == 0


def test_a_topic_that_takes_less_than_inlet_sends_is_a_permanent_413_not_a_503(
    stack: Stack,
) -> None:
    connector = stack.connector()
    admin = stack.admin_client()
    # Changed outside Inlet: the topic now takes batches of 2,000 bytes at most.
    limit = ConfigEntry("max.message.bytes", "2000", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ResourceType.TOPIC, connector["topic"], incremental_configs=[limit])
    _until_the_broker_knows_the_topic(
        lambda: admin.incremental_alter_configs([resource])[resource].result(30)
    )
    deadline = time.monotonic() + 30
    while True:
        response = stack.client.post(
            connector["ingest_url"], json=[{"id": "big", "blob": secrets.token_hex(5_000)}]
        )
        if response.status_code != 200:
            break
        # The brokers apply a config change asynchronously; until then the record goes in.
        # (Random hex, so that lz4 leaves the batch larger than the limit.)
        assert time.monotonic() < deadline, "the topic's new limit never applied"
        time.sleep(0.2)
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "kafka_record_too_large"
    assert "retry-after" not in response.headers
    assert "none of the request's 1 records was written" in response.json()["detail"]
