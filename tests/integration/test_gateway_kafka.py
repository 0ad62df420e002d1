"""The ingest URL end to end on real Kafka: POST, then read back with Confluent's deserializer."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from inlet.records import HEADER_RECEIVED_AT, HEADER_REQUEST_ID
from inlet.settings import Settings
from tests.served_stack import topic_size
from tests.servers import serve_inlet

pytestmark = pytest.mark.kafka

TOKEN = "inlet_admin_gateway-test"
FIELDS = [
    {"name": "id", "type": "string"},
    {"name": "qty", "type": "integer"},
    {"name": "price", "type": "float"},
    {"name": "paid", "type": "boolean"},
    {"name": "at", "type": "datetime"},
    {"name": "note", "type": "string", "nullable": True},
    {"name": "total", "type": "decimal", "precision": 12, "scale": 2},
    {"name": "ref", "type": "uuid"},
]


@dataclass
class Stack:
    settings: Settings
    registry: str
    gateway: str
    admin: httpx.Client
    client: httpx.Client

    def connector(self, **extra: Any) -> dict[str, Any]:
        body = {"name": f"c-{uuid.uuid4().hex[:8]}", "fields": FIELDS, **extra}
        response = self.admin.post("/v1/connectors", json=body)
        assert response.status_code == 201, response.text
        connector: dict[str, Any] = response.json()
        return connector

    def wait_known(self, connector: dict[str, Any]) -> None:
        """Until the gateway's fold has the new connector (it reads the log asynchronously)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            probe = self.client.post(
                connector["ingest_url"], content=b"[]", headers={"content-type": "application/json"}
            )
            if probe.status_code != 404:
                return
            time.sleep(0.05)
        pytest.fail("the gateway never learned of the connector")


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("gateway")
    base = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        data_dir=str(data),
        admin_token=TOKEN,
        topic_partitions=2,
    )
    with serve_inlet(base) as (registry, gateway, settings):
        admin = httpx.Client(base_url=registry, headers={"Authorization": f"Bearer {TOKEN}"})
        client = httpx.Client(timeout=30)
        yield Stack(settings, registry, gateway, admin, client)
        admin.close()
        client.close()


def record(i: int) -> dict[str, Any]:
    return {
        "id": f"o-{i}",
        "qty": i,
        "price": i + 0.5,
        "paid": i % 2 == 0,
        "at": "2026-11-26T10:00:00+01:00",
        "note": None if i % 3 else f"n{i}",
        "total": f"{i}.25",
        "ref": str(uuid.UUID(int=i)),
    }


def consume(stack: Stack, topic: str, count: int) -> list[Any]:
    consumer = Consumer(
        {
            "bootstrap.servers": stack.settings.kafka_bootstrap_servers,
            "group.id": uuid.uuid4().hex,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    out: list[Any] = []
    deadline = time.monotonic() + 30
    try:
        while len(out) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                out.append(msg)
    finally:
        consumer.close()
    return out


def test_json_array_lands_as_avro_readable_by_confluents_deserializer(stack: Stack) -> None:
    connector = stack.connector(key_field="id")
    stack.wait_known(connector)
    response = stack.client.post(connector["ingest_url"], json=[record(i) for i in range(20)])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 20
    assert body["rejected"] == 0
    assert body["schema_id"] == connector["schema_id"]

    registry = SchemaRegistryClient({"url": stack.registry, "basic.auth.user.info": f"u:{TOKEN}"})
    deserializer = AvroDeserializer(registry)
    messages = consume(stack, connector["topic"], 20)
    assert len(messages) == 20
    by_id = {}
    for msg in messages:
        value = deserializer(msg.value(), SerializationContext(msg.topic(), MessageField.VALUE))
        assert msg.key() == value["id"].encode()
        headers = dict(msg.headers())
        assert HEADER_REQUEST_ID in headers
        assert int(headers[HEADER_RECEIVED_AT]) > 0
        by_id[value["id"]] = value
    got = by_id["o-3"]
    assert got["qty"] == 3
    assert got["total"] == Decimal("3.25")
    assert got["at"].isoformat() == "2026-11-26T09:00:00+00:00"
    assert got["note"] == "n3"
    assert str(got["ref"]) == str(uuid.UUID(int=3))
    registry.close()


def test_partial_batch_reports_each_bad_record_and_keeps_it(stack: Stack) -> None:
    connector = stack.connector()
    stack.wait_known(connector)
    records = [record(0), {**record(1), "qty": "many"}, record(2), {"id": "x"}]
    response = stack.client.post(connector["ingest_url"], json=records)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 2
    assert body["rejected"] == 2
    pointers = {(e["index"], e["pointer"], e["code"]) for e in body["errors"]}
    assert (1, "/1/qty", "wrong_type") in pointers
    assert any(e["index"] == 3 and e["code"] == "missing_field" for e in body["errors"])

    kept = consume(stack, connector["rejected_topic"], 2)
    assert len(kept) == 2
    payloads = sorted((json.loads(m.value()) for m in kept), key=lambda r: r["errors"][0]["index"])
    assert payloads[0]["record"]["qty"] == "many"
    assert payloads[0]["errors"][0]["field"] == "qty"

    atomic = stack.client.post(connector["ingest_url"] + "?mode=atomic", json=records)
    assert atomic.status_code == 422
    assert atomic.json()["rejected"] == 2
    assert topic_size(stack.settings, connector["topic"]) == 2  # the atomic request wrote nothing


def test_ndjson_csv_gzip_and_bearer_header(stack: Stack) -> None:
    connector = stack.connector()
    stack.wait_known(connector)
    ndjson = "\n".join(json.dumps(record(i)) for i in range(3)) + "\n\n"
    response = stack.client.post(
        connector["ingest_url"], content=ndjson, headers={"content-type": "application/x-ndjson"}
    )
    assert response.json()["accepted"] == 3

    header = "id,qty,price,paid,at,note,total,ref"
    rows = [f"c-{i},{i},1.5,true,2026-11-26T10:00:00Z,,9.99,{uuid.UUID(int=i)}" for i in range(2)]
    csv = "\n".join([header, *rows, "bad,notanumber,1,true,2026-11-26T10:00:00Z,,1,x"]) + "\n"
    response = stack.client.post(
        connector["ingest_url"], content=csv, headers={"content-type": "text/csv"}
    )
    body = response.json()
    assert body["accepted"] == 2
    assert body["rejected"] == 1
    assert body["errors"][0]["line"] == 4

    gz = gzip.compress(json.dumps([record(7)]).encode())
    base = connector["ingest_url"].rsplit("/", 1)[0]
    response = stack.client.post(
        base,
        content=gz,
        headers={
            "content-type": "application/json",
            "content-encoding": "gzip",
            "authorization": f"Bearer {connector['token']}",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1


def test_error_statuses(stack: Stack) -> None:
    connector = stack.connector()
    stack.wait_known(connector)
    url = connector["ingest_url"]
    bad_json = stack.client.post(
        url, content=b'[{"id": ', headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400
    assert bad_json.json()["code"] == "body_unparseable"
    assert (
        stack.client.post(url, content=b"x", headers={"content-type": "text/plain"}).status_code
        == 415
    )
    everything_bad = stack.client.post(url, json=[{"id": 1}])
    assert everything_bad.status_code == 422
    unknown = stack.client.post(url.rsplit("/", 1)[0] + "/inlet_ingest_nope", json=[record(1)])
    assert unknown.status_code == 404

    rotated = stack.admin.post(f"/v1/connectors/{connector['id']}/rotate-token").json()
    deadline = time.monotonic() + 30
    while stack.client.post(url, json=[record(1)]).status_code != 404:
        assert time.monotonic() < deadline, "the rotated-out token still works"
        time.sleep(0.05)
    assert stack.client.post(rotated["ingest_url"], json=[record(1)]).status_code == 200

    assert stack.admin.delete(f"/v1/connectors/{connector['id']}").status_code == 204
    # Deadlines are for a loaded CI machine; how fast an edit reaches the gateway is not timed here.
    deadline = time.monotonic() + 30
    while stack.client.post(rotated["ingest_url"], json=[record(1)]).status_code != 404:
        assert time.monotonic() < deadline, "a deleted connector's URL kept working for 30 s"
        time.sleep(0.05)


def test_rate_limit_answers_429_with_retry_after(stack: Stack) -> None:
    connector = stack.connector(rate_limit_per_s=5)
    stack.wait_known(connector)
    first = stack.client.post(connector["ingest_url"], json=[record(i) for i in range(5)])
    assert first.status_code == 200
    limited = stack.client.post(connector["ingest_url"], json=[record(i) for i in range(5)])
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1


def test_limits_answer_413(stack: Stack) -> None:
    connector = stack.connector()
    stack.wait_known(connector)
    huge_record = [{**record(1), "note": "x" * (stack.settings.max_record_bytes + 10)}]
    too_big_record = stack.client.post(connector["ingest_url"], json=huge_record)
    assert too_big_record.status_code == 413
    assert too_big_record.json()["code"] == "record_too_large"
    bomb = gzip.compress(b"[" + b" " * (stack.settings.max_body_bytes + 1) + b"]")
    too_big_body = stack.client.post(
        connector["ingest_url"],
        content=bomb,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert too_big_body.status_code == 413
    assert too_big_body.json()["code"] == "body_too_large"


def test_metrics_count_records_and_tokens_never_reach_the_logs(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    connector = stack.connector()
    stack.wait_known(connector)
    assert (
        stack.client.post(connector["ingest_url"], json=[record(1), {"id": 2}]).status_code == 200
    )
    rotated = stack.admin.post(f"/v1/connectors/{connector['id']}/rotate-token").json()
    stack.client.post(rotated["ingest_url"], json=[record(2)])

    metrics = stack.client.get(f"{stack.gateway}/metrics").text
    assert f'inlet_records_accepted_total{{connector="{connector["id"]}"}}' in metrics
    assert f'inlet_records_rejected_total{{connector="{connector["id"]}"}} 1.0' in metrics
    assert "inlet_produce_latency_seconds_bucket" in metrics

    # Everything the servers logged (the test's own HTTP client logs its URLs, so it is left out).
    server_records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in server_records)
    assert any(getattr(r, "connector", None) == connector["id"] for r in caplog.records)
    for secret in (connector["token"], rotated["token"], TOKEN):
        assert secret not in logged


def test_a_schema_edit_reaches_the_gateway(stack: Stack) -> None:
    connector = stack.connector()
    stack.wait_known(connector)
    first = stack.client.post(connector["ingest_url"], json=[record(1)])
    assert first.json()["schema_version"] == 1
    evolved = stack.admin.patch(
        f"/v1/connectors/{connector['id']}",
        json={"fields": [*FIELDS, {"name": "channel", "type": "string", "nullable": True}]},
    )
    assert evolved.status_code == 200, evolved.text
    deadline = time.monotonic() + 30
    while True:
        answer = stack.client.post(connector["ingest_url"], json=[{**record(2), "channel": "web"}])
        assert answer.status_code == 200, answer.text
        if answer.json()["schema_version"] == 2:
            break
        assert time.monotonic() < deadline, "the edit did not reach the gateway in 30 s"
        time.sleep(0.02)
    assert "unknown_fields" not in answer.json()  # `channel` is a known field now
