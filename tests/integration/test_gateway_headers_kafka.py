"""On real Kafka: what a client puts in its request headers does not reach the topics unbounded.

Issue #10, item 4: a 903 KB ``X-Request-Id`` was copied into every record's headers (~260 MB on
the topic for one request). Now a request id that is not short and plain is replaced by one the
gateway makes; the answer names it, and it is what the records carry.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from confluent_kafka import Consumer, Message

from gateway.request_headers import MAX_REQUEST_ID
from inlet.records import HEADER_REQUEST_ID
from inlet.settings import Settings
from tests.servers import serve_inlet

pytestmark = pytest.mark.kafka

TOKEN = "inlet_admin_headers-test"
GENERATED = re.compile(rb"[0-9a-f]{32}")
FIELDS = [{"name": "id", "type": "string"}]
RECORDS = [{"id": f"r-{i}"} for i in range(50)] + [{"id": 1}]  # 50 valid, 1 rejected


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The registry and the gateway on real Kafka; yields the registry's URL."""
    base = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        data_dir=str(tmp_path_factory.mktemp("headers")),
        admin_token=TOKEN,
        topic_partitions=1,
    )
    with serve_inlet(base) as (registry, _gateway, _settings):
        yield registry


def _connector(registry: str) -> dict[str, str]:
    with httpx.Client(base_url=registry, headers={"Authorization": f"Bearer {TOKEN}"}) as admin:
        created = admin.post(
            "/v1/connectors",
            json={"name": f"h-{uuid.uuid4().hex[:8]}", "fields": FIELDS},
        )
    assert created.status_code == 201, created.text
    connector: dict[str, str] = created.json()
    return connector


def _post_when_known(url: str, headers: dict[bytes, bytes]) -> httpx.Response:
    """POST ``RECORDS`` once the gateway's fold knows the connector (it reads the log itself)."""
    deadline = time.monotonic() + 60
    with httpx.Client(timeout=60) as client:
        while True:
            response = client.post(url + "?mode=partial", json=RECORDS, headers=headers)
            if response.status_code != 404 or time.monotonic() > deadline:
                return response
            time.sleep(0.05)


def _consume(bootstrap: str, topic: str, count: int) -> list[Message]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": uuid.uuid4().hex,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    found: list[Message] = []
    deadline = time.monotonic() + 60
    try:
        while len(found) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                found.append(message)
    finally:
        consumer.close()
    return found


PRESENTED = {
    "huge": b"h" * 500_000,
    "binary": bytes(range(0x80, 0x100)) * 64,
    "one too long": b"a" * (MAX_REQUEST_ID + 1),
}


@pytest.mark.parametrize("presented", PRESENTED.values(), ids=PRESENTED.keys())
def test_a_huge_or_binary_request_id_never_reaches_the_topics(
    stack: str, kafka_bootstrap: str, presented: bytes
) -> None:
    connector = _connector(stack)
    response = _post_when_known(connector["ingest_url"], {b"x-request-id": presented})
    assert response.status_code == 200, response.text[:500]
    assert response.json()["accepted"] == 50
    answered = response.headers["x-request-id"].encode()
    assert GENERATED.fullmatch(answered), answered[:200]

    valid = _consume(kafka_bootstrap, connector["topic"], 50)
    assert len(valid) == 50
    for message in valid:
        headers = dict(message.headers() or [])
        assert headers[HEADER_REQUEST_ID] == answered
        assert sum(len(name) + len(value or b"") for name, value in headers.items()) < 200
    (rejected,) = _consume(kafka_bootstrap, connector["rejected_topic"], 1)
    assert json.loads(rejected.value() or b"")["request_id"] == answered.decode()
    assert len(rejected.value() or b"") < 2000


def test_a_plain_request_id_is_kept_on_every_record(stack: str, kafka_bootstrap: str) -> None:
    connector = _connector(stack)
    chosen = b"order-42:attempt.3_" + b"x" * (MAX_REQUEST_ID - 19)
    assert len(chosen) == MAX_REQUEST_ID
    response = _post_when_known(connector["ingest_url"], {b"x-request-id": chosen})
    assert response.status_code == 200, response.text[:500]
    assert response.headers["x-request-id"].encode() == chosen
    valid = _consume(kafka_bootstrap, connector["topic"], 50)
    assert {dict(m.headers() or [])[HEADER_REQUEST_ID] for m in valid} == {chosen}
