"""Cloud envelopes on real Kafka: a Firehose delivery is acknowledged in Firehose's format and its
records land with the request id; a Pub/Sub push and CloudEvents (structured and binary) land
with their attributes as Kafka headers."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Message, TopicPartition

from tests.served_stack import DEADLINE_S, Stack, served_stack, topic_size, until

pytestmark = pytest.mark.kafka

TOKEN = "inlet_admin_envelope-test"
FIELDS = [{"name": "id", "type": "string"}]


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with served_stack(kafka_bootstrap, tmp_path_factory.mktemp("envelopes"), TOKEN) as served:
        yield served


def connector(stack: Stack, envelope: str) -> dict[str, Any]:
    created = stack.admin.post(
        "/v1/connectors",
        json={"name": f"{envelope}-{uuid.uuid4().hex[:8]}", "fields": FIELDS, "envelope": envelope},
    )
    assert created.status_code == 201, created.text
    made: dict[str, Any] = created.json()
    assert made["envelope"] == envelope
    return made


def known_to_the_gateway(stack: Stack, url: str, headers: dict[str, str]) -> None:
    """Until the gateway folded the connector: then an empty envelope is refused (400), not
    unknown (404), and nothing is written."""

    def probe() -> int:
        return stack.client.post(url, content=b"{}", headers=headers).status_code

    until(lambda: probe() == 400, f"the gateway knows the connector of {url}")


def records_of(stack: Stack, topic: str, count: int) -> list[tuple[dict[str, str], bytes]]:
    """The topic's first ``count`` records: (headers, value)."""
    consumer = Consumer(
        {
            "bootstrap.servers": stack.settings.kafka_bootstrap_servers,
            "group.id": uuid.uuid4().hex,
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        got: list[Message] = []
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < count:
            if time.monotonic() > deadline:
                pytest.fail(f"{len(got)} of {count} records on {topic} within {DEADLINE_S} s")
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                got.append(message)
        return [(_headers(m), bytes(m.value() or b"")) for m in got]
    finally:
        consumer.close()


def _headers(message: Message) -> dict[str, str]:
    raw: dict[str, Any] = dict(message.headers() or [])
    return {name: (value or b"").decode() for name, value in raw.items()}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_a_firehose_delivery_is_acknowledged_in_firehoses_format(stack: Stack) -> None:
    made = connector(stack, "firehose")
    request_id = str(uuid.uuid4())
    body = json.dumps(
        {
            "requestId": request_id,
            "timestamp": int(time.time() * 1000),
            "records": [
                {"data": b64(b'{"id": "one"}')},
                {"data": b64(b'{"id": "two"}\n{"id": "three"}\n')},
            ],
        }
    ).encode()
    headers = {
        "content-type": "application/json",
        "x-amz-firehose-protocol-version": "1.0",
        "x-amz-firehose-request-id": request_id,
        "x-amz-firehose-access-key": made["token"],
    }
    url = f"{stack.gateway}/v1/ingest"
    known_to_the_gateway(stack, url, headers)
    answer = stack.client.post(url, content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    acknowledged = answer.json()
    assert set(acknowledged) == {"requestId", "timestamp"}
    assert acknowledged["requestId"] == request_id
    assert isinstance(acknowledged["timestamp"], int)
    landed = records_of(stack, made["topic"], 3)
    assert all(h["firehose_request_id"] == request_id for h, _ in landed)
    assert topic_size(stack.settings, made["topic"]) == 3

    # A malformed delivery: refused in Firehose's error format, with the record named.
    bad = json.dumps({"requestId": request_id, "timestamp": 1, "records": [{"data": "%%"}]})
    refused = stack.client.post(url, content=bad, headers=headers)
    assert refused.status_code == 400, refused.text
    error = refused.json()
    assert set(error) == {"requestId", "timestamp", "errorMessage"}
    assert error["requestId"] == request_id
    assert "records[0].data" in error["errorMessage"]


def test_pubsub_push_and_cloudevents_land_with_their_attributes(stack: Stack) -> None:
    pubsub = connector(stack, "pubsub-push")
    push = json.dumps(
        {
            "message": {
                "attributes": {"origin": "orders"},
                "data": b64(b'{"id": "ps-1"}'),
                "messageId": "2070443601311540",
                "publishTime": "2021-02-26T19:13:55.749Z",
            },
            "subscription": "projects/p/subscriptions/s",
        }
    ).encode()
    json_type = {"content-type": "application/json"}
    known_to_the_gateway(stack, pubsub["ingest_url"], json_type)
    pushed = stack.client.post(pubsub["ingest_url"], content=push, headers=json_type)
    assert pushed.status_code == 200, pushed.text
    [(headers, _)] = records_of(stack, pubsub["topic"], 1)
    assert headers["origin"] == "orders"
    assert headers["pubsub_message_id"] == "2070443601311540"
    assert headers["pubsub_subscription"] == "projects/p/subscriptions/s"

    events = connector(stack, "cloudevents")
    structured = json.dumps(
        {
            "specversion": "1.0",
            "type": "com.example.someevent",
            "source": "/mycontext",
            "id": "A234-1234-1234",
            "data": {"id": "ce-1"},
        }
    ).encode()
    known_to_the_gateway(stack, events["ingest_url"], json_type)
    sent = stack.client.post(
        events["ingest_url"],
        content=structured,
        headers={"content-type": "application/cloudevents+json"},
    )
    assert sent.status_code == 200, sent.text
    binary = stack.client.post(
        events["ingest_url"],
        content=b'{"id": "ce-2"}',
        headers={
            "content-type": "application/json",
            "ce-specversion": "1.0",
            "ce-type": "com.example.other",
            "ce-source": "/binary",
            "ce-id": "B-1",
        },
    )
    assert binary.status_code == 200, binary.text
    landed = records_of(stack, events["topic"], 2)
    first, second = (headers for headers, _ in landed)
    assert (first["ce_id"], first["ce_source"], first["ce_type"]) == (
        "A234-1234-1234",
        "/mycontext",
        "com.example.someevent",
    )
    assert (second["ce_id"], second["ce_source"], second["ce_datacontenttype"]) == (
        "B-1",
        "/binary",
        "application/json",
    )
