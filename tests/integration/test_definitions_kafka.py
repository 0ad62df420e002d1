"""Issue 10, item 8 on a real stack: definitions that were accepted and then made every ingest
answer 500 are refused at creation, or ingest (Kafka has the records)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from inlet.model.fields import MAX_NESTING_DEPTH
from inlet.settings import Settings
from tests.servers import serve_inlet

pytestmark = pytest.mark.kafka

TOKEN = "inlet_admin_definitions-test"


class Stack:
    def __init__(self, registry: str, bootstrap: str) -> None:
        self.admin = httpx.Client(
            base_url=registry, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        )
        self.http = httpx.Client(timeout=30)
        self.bootstrap = bootstrap

    def create(self, fields: list[dict[str, Any]]) -> httpx.Response:
        body = {"name": uuid.uuid4().hex[:12], "fields": fields, "partitions": 1}
        return self.admin.post("/v1/connectors", json=body)

    def ingest(self, connector: dict[str, Any], records: list[Any]) -> httpx.Response:
        deadline = time.monotonic() + 30  # the gateway learns connectors from the log
        while True:
            response = self.http.post(connector["ingest_url"], json=records)
            if response.status_code != 404 or time.monotonic() > deadline:
                return response
            time.sleep(0.05)

    def count(self, topic: str, expected: int) -> int:
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": uuid.uuid4().hex})
        consumer.assign([TopicPartition(topic, 0, 0)])
        found, deadline = 0, time.monotonic() + 30
        while found < expected and time.monotonic() < deadline:
            found += len(consumer.consume(expected - found, timeout=1))
        consumer.close()
        return found


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        data_dir=str(tmp_path_factory.mktemp("definitions")),
        admin_token=TOKEN,
    )
    with serve_inlet(base) as (registry, _gateway, _settings):
        stack = Stack(registry, kafka_bootstrap)
        yield stack
        stack.admin.close()
        stack.http.close()


def _nested(depth: int) -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = [{"name": "leaf", "type": "string"}]
    for level in range(depth, 0, -1):
        fields = [{"name": f"o{level}", "type": "object", "nullable": True, "fields": fields}]
    return fields


def _nested_record(depth: int) -> dict[str, Any]:
    record: dict[str, Any] = {"leaf": "x"}
    for level in range(depth, 0, -1):
        record = {f"o{level}": record}
    return record


@pytest.mark.parametrize("name", ['a"b', "a\\b", "a\tb", "a\nb"])
def test_a_field_name_that_could_not_be_ingested_is_refused(stack: Stack, name: str) -> None:
    response = stack.create([{"name": name, "type": "string"}])
    assert response.status_code == 422, response.text
    assert response.json()["problems"][0]["field"] == "fields[0].name"


def test_a_definition_nested_too_deeply_is_refused(stack: Stack) -> None:
    for depth in (MAX_NESTING_DEPTH + 1, 400):
        response = stack.create(_nested(depth))
        assert response.status_code == 422, response.text
        assert f"at most {MAX_NESTING_DEPTH}" in response.json()["problems"][0]["reason"]


@pytest.mark.parametrize(
    ("fields", "records"),
    [
        pytest.param(
            [{"name": "_unknown_0", "type": "string"}],
            [{"_unknown_0": "a", "extra": 1}, {"_unknown_0": "b", "extra": 2}],
            id="a field named like the codec's probe attribute, with unknown keys",
        ),
        pytest.param(
            [{"name": "a", "type": "string"}],
            [{"a": "x", 'quote"d': 1}, {"a": "y", 'quote"d': 2}],
            id="unknown keys no field could be named",
        ),
        pytest.param(
            _nested(MAX_NESTING_DEPTH),
            [_nested_record(MAX_NESTING_DEPTH)] * 2,
            id="the deepest nesting allowed",
        ),
    ],
)
def test_definitions_that_made_ingest_500_ingest(
    stack: Stack, fields: list[dict[str, Any]], records: list[Any]
) -> None:
    created = stack.create(fields)
    assert created.status_code == 201, created.text
    connector = created.json()
    response = stack.ingest(connector, records)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(records)
    assert stack.count(connector["topic"], len(records)) == len(records)
