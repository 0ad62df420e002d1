"""Idempotency keys on real Kafka: a retried delivery writes nothing new, across concurrent
duplicates on one gateway and on two, and across a gateway restart; a refused first attempt is
not remembered."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from gateway.app import create_app as create_gateway
from inlet.records import HEADER_DEDUP_KEY
from inlet.settings import Settings
from tests.served_stack import Stack, served_stack, topic_size, until
from tests.servers import serve

pytestmark = pytest.mark.kafka

TOKEN = "inlet_admin_dedup-test"
FIELDS = [{"name": "id", "type": "string"}, {"name": "amount", "type": "integer"}]
SECRET = "whsec_" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with served_stack(kafka_bootstrap, tmp_path_factory.mktemp("dedup"), TOKEN) as served:
        yield served


def _stripe_signed(body: bytes) -> dict[str, str]:
    ts = int(time.time())
    digest = hmac.new(SECRET.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {"content-type": "application/json", "stripe-signature": f"t={ts},v1={digest}"}


def _create(stack: Stack, **settings: Any) -> dict[str, Any]:
    created = stack.admin.post(
        "/v1/connectors",
        json={"name": f"dedup-{uuid.uuid4().hex[:8]}", "fields": FIELDS, **settings},
    )
    assert created.status_code == 201, created.text
    connector: dict[str, Any] = created.json()
    url = connector["ingest_url"]
    until(lambda: stack.client.post(url, json=[]).status_code != 404, "the gateway knows it")
    return connector


def _headers_of(settings: Settings, topic: str) -> list[dict[str, str]]:
    """Every record's headers in ``topic`` (partition 0, the tests' topics have one)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": uuid.uuid4().hex,
            "isolation.level": "read_committed",
        }
    )
    try:
        end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
        consumer.assign([TopicPartition(topic, 0, 0)])
        found: list[dict[str, str]] = []
        deadline = time.monotonic() + 30
        while len(found) < end and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            found.append({k: _text(v) for k, v in dict(message.headers() or []).items()})
        return found
    finally:
        consumer.close()


def _text(value: str | bytes | None) -> str:
    return value.decode() if isinstance(value, bytes) else value or ""


def test_a_stripe_event_delivered_three_times_lands_once(stack: Stack) -> None:
    connector = _create(
        stack, verify={"scheme": "stripe", "secrets": [SECRET]}, dedup={"window_s": 3600}
    )
    # The preset of the stripe scheme: the event's own id.
    assert connector["dedup"] == {
        "header": None,
        "pointer": "/id",
        "envelope": False,
        "window_s": 3600,
    }
    url, topic = connector["ingest_url"], connector["topic"]
    body = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "amount": 100}).encode()

    answers = [stack.client.post(url, content=body, headers=_stripe_signed(body)) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
    first, *retries = (a.json() for a in answers)
    assert first["accepted"] == 1
    assert "duplicate" not in first
    for retry in retries:
        assert retry["duplicate"] is True, retry
        assert retry["accepted"] == 1
        assert retry["duplicates"] == [{"index": 0, "partition": 0, "offset": 0}]
    assert topic_size(stack.settings, topic) == 1
    [headers] = _headers_of(stack.settings, topic)
    assert headers[HEADER_DEDUP_KEY] == json.loads(body)["id"]
    metrics = stack.client.get(f"{stack.gateway}/metrics").text
    assert f'inlet_dedup_duplicates_total{{connector="{connector["id"]}"}} 2.0' in metrics


def test_a_request_key_gives_back_every_record_and_a_new_batch_shares_nothing(
    stack: Stack,
) -> None:
    connector = _create(stack, dedup={"header": "Idempotency-Key"})
    url, topic = connector["ingest_url"], connector["topic"]
    batch = [{"id": f"r{i}", "amount": i} for i in range(3)]
    key = {"idempotency-key": uuid.uuid4().hex}
    first = stack.client.post(url, json=batch, headers=key)
    again = stack.client.post(url, json=batch, headers=key)
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert first.json()["accepted"] == 3
    assert again.json()["duplicate"] is True
    assert again.json()["accepted"] == 3
    assert again.json()["duplicates"] == [
        {"index": i, "partition": 0, "offset": i} for i in range(3)
    ]
    # No key: written again, as without dedup; another key: a new request.
    assert stack.client.post(url, json=batch).json()["accepted"] == 3
    other = stack.client.post(url, json=batch, headers={"idempotency-key": "other"})
    assert "duplicate" not in other.json()
    assert topic_size(stack.settings, topic) == 9
    values = [h.get(HEADER_DEDUP_KEY) for h in _headers_of(stack.settings, topic)]
    assert values[:3] == [f"{key['idempotency-key']}#{i}" for i in range(3)]


def test_record_keys_skip_the_duplicates_of_a_batch(stack: Stack) -> None:
    connector = _create(stack, dedup={"pointer": "/id"})
    url, topic = connector["ingest_url"], connector["topic"]
    assert stack.client.post(url, json={"id": "a", "amount": 1}).status_code == 200
    mixed = [{"id": "b", "amount": 2}, {"id": "a", "amount": 1}, {"id": "b", "amount": 2}]
    answer = stack.client.post(url, json=mixed)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["accepted"] == 3
    assert "duplicate" not in body
    assert body["duplicates"] == [
        {"index": 1, "partition": 0, "offset": 0},  # accepted before
        {"index": 2, "partition": 0, "offset": 1},  # the same key earlier in this batch
    ]
    assert topic_size(stack.settings, topic) == 2


def test_a_refused_first_attempt_is_not_remembered(stack: Stack) -> None:
    connector = _create(stack, dedup={"header": "webhook-id"}, atomic=True)
    url, topic = connector["ingest_url"], connector["topic"]
    key = {"webhook-id": uuid.uuid4().hex}
    refused = stack.client.post(url, json={"id": "x", "amount": "oops"}, headers=key)
    assert refused.status_code == 422, refused.text
    retried = stack.client.post(url, json={"id": "x", "amount": 1}, headers=key)
    assert retried.status_code == 200, retried.text
    assert "duplicate" not in retried.json()
    assert topic_size(stack.settings, topic) == 1


def _concurrently(urls: list[str], body: dict[str, Any], headers: dict[str, str]) -> list[Any]:
    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as client:
            return list(
                await asyncio.gather(*(client.post(u, json=body, headers=headers) for u in urls))
            )

    return asyncio.run(send_all())


def _settled(answers: list[httpx.Response]) -> None:
    """Exactly one attempt wrote; the others were answered duplicate or in_progress."""
    fresh = [a for a in answers if a.status_code == 200 and "duplicate" not in a.json()]
    assert len(fresh) == 1, [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 409:
            assert answer.json()["code"] == "in_progress"
            assert int(answer.headers["retry-after"]) >= 1
        elif answer not in fresh:
            assert answer.status_code == 200, answer.text
            assert answer.json()["duplicate"] is True


def test_concurrent_duplicates_on_one_gateway_write_once(stack: Stack) -> None:
    connector = _create(stack, dedup={"header": "webhook-id"})
    url, topic = connector["ingest_url"], connector["topic"]
    for round_ in range(5):
        key = {"webhook-id": f"{uuid.uuid4().hex}-{round_}"}
        _settled(_concurrently([url] * 8, {"id": "c", "amount": round_}, key))
    assert topic_size(stack.settings, topic) == 5


def test_concurrent_duplicates_on_two_gateways_write_once(stack: Stack) -> None:
    connector = _create(stack, dedup={"header": "webhook-id"})
    url, topic = connector["ingest_url"], connector["topic"]
    token_path = url[len(stack.gateway) :]
    with serve(create_gateway(stack.settings)) as second:
        until(
            lambda: httpx.post(second + token_path, json=[], timeout=30).status_code != 404,
            "the second gateway knows the connector",
        )
        urls = [url, second + token_path] * 4
        for round_ in range(5):
            key = {"webhook-id": f"{uuid.uuid4().hex}-{round_}"}
            _settled(_concurrently(urls, {"id": "c", "amount": round_}, key))
        # Accepted on one, answered duplicate on the other, from the log alone.
        key = {"webhook-id": uuid.uuid4().hex}
        assert httpx.post(url, json={"id": "d", "amount": 1}, headers=key).status_code == 200
        again = httpx.post(second + token_path, json={"id": "d", "amount": 1}, headers=key)
        assert again.json()["duplicate"] is True, again.text
    assert topic_size(stack.settings, topic) == 6


def test_a_restarted_gateway_remembers_what_was_accepted(stack: Stack) -> None:
    connector = _create(stack, dedup={"header": "webhook-id"})
    url, topic = connector["ingest_url"], connector["topic"]
    token_path = url[len(stack.gateway) :]
    key = {"webhook-id": uuid.uuid4().hex}
    with serve(create_gateway(stack.settings)) as first:
        until(
            lambda: httpx.post(first + token_path, json=[], timeout=30).status_code != 404,
            "the gateway knows the connector",
        )
        answer = httpx.post(first + token_path, json={"id": "r", "amount": 1}, headers=key)
        assert answer.status_code == 200, answer.text
    # A new gateway process state: it reads the dedup topic before serving.
    with serve(create_gateway(stack.settings)) as restarted:
        again = httpx.post(restarted + token_path, json={"id": "r", "amount": 1}, headers=key)
        assert again.status_code == 200, again.text
        assert again.json()["duplicate"] is True
        ready = httpx.get(f"{restarted}/health/ready", timeout=30).json()
        assert "dedup" in json.dumps(ready)
    assert topic_size(stack.settings, topic) == 1
