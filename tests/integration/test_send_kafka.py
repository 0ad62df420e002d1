"""``inlet send`` against a real gateway and registry on real Kafka: a mixed file sent in
batches, stopped after two, resumed, and every valid record on the topic exactly once; a
rate-limited connector's 429s waited out."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from deploy.cli import main
from deploy.send import EXIT_DONE, EXIT_STOPPED
from inlet.records import HEADER_REQUEST_ID
from inlet.settings import Settings
from tests.served_stack import committed_records
from tests.servers import serve_inlet

pytestmark = pytest.mark.kafka

ADMIN = "inlet_admin_send-test"
FIELDS = [{"name": "id", "type": "string"}, {"name": "qty", "type": "integer"}]


@dataclass
class Stack:
    settings: Settings
    registry: str
    admin: httpx.Client

    def connector(self, **extra: Any) -> dict[str, Any]:
        body = {"name": f"send-{uuid.uuid4().hex[:8]}", "fields": FIELDS, **extra}
        answer = self.admin.post("/v1/connectors", json=body)
        assert answer.status_code == 201, answer.text
        connector: dict[str, Any] = answer.json()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the gateway's fold knows the token
            probe = httpx.post(
                connector["ingest_url"], content=b"[]", headers={"content-type": "application/json"}
            )
            if probe.status_code != 404:
                return connector
            time.sleep(0.05)
        pytest.fail("the gateway never learned of the connector")


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        data_dir=str(tmp_path_factory.mktemp("send")),
        admin_token=ADMIN,
        topic_partitions=1,
    )
    with serve_inlet(base) as (registry, _gateway, settings):
        admin = httpx.Client(base_url=registry, headers={"Authorization": f"Bearer {ADMIN}"})
        yield Stack(settings, registry, admin)
        admin.close()


def read_topic(stack: Stack, topic: str) -> list[tuple[dict[str, Any], str]]:
    """Every record on ``topic`` a ``read_committed`` reader sees (values decoded, with their
    request ids)."""
    registry = SchemaRegistryClient({"url": stack.registry, "basic.auth.user.info": f"u:{ADMIN}"})
    deserializer = AvroDeserializer(registry)
    context = SerializationContext(topic, MessageField.VALUE)
    try:
        out: list[tuple[dict[str, Any], str]] = []
        for message in committed_records(stack.settings, topic):
            request_id = dict(message.headers() or [])[HEADER_REQUEST_ID]
            assert isinstance(request_id, bytes)
            out.append((deserializer(message.value(), context), request_id.decode()))
        return out
    finally:
        registry.close()


def test_stopped_then_resumed_every_valid_record_lands_once(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    connector = stack.connector()
    token = connector["token"]
    records = [{"id": f"r-{i}", "qty": "bad" if i % 5 == 3 else i} for i in range(30)]
    path = tmp_path / "mixed.ndjson"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    common = ["send", str(path), "--url", connector["ingest_url"], "--batch-size", "5"]
    common += ["--no-progress", "--request-id-prefix", "mixed-run"]

    assert main([*common, "--max-batches", "2"]) == EXIT_STOPPED
    first = capsys.readouterr()
    assert "records: 10 sent in 2 batch(es)" in first.out
    assert "accepted 8, rejected 2" in first.out
    assert len(read_topic(stack, connector["topic"])) == 8

    assert main([*common, "--resume"]) == EXIT_DONE
    second = capsys.readouterr()
    assert "records: 30 sent in 6 batch(es)" in second.out
    assert "accepted 24, rejected 6" in second.out
    # The first errors, indexed in the file, from both runs.
    assert re.search(r"record 3, field qty: ", second.out)
    assert re.search(r"record 28, field qty: ", second.out)
    for output in (first, second):
        assert token not in output.out + output.err

    landed = read_topic(stack, connector["topic"])
    ids = [value["id"] for value, _ in landed]
    assert sorted(ids) == sorted(r["id"] for r in records if r["qty"] != "bad")
    assert len(set(ids)) == len(ids)  # exactly once
    assert {request_id for _, request_id in landed} == {f"mixed-run-{n:06d}" for n in range(6)}
    state = next(tmp_path.glob("mixed.ndjson.inlet-send-*.json")).read_text()
    assert token not in state


def test_a_rate_limited_connector_is_waited_out(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A burst of one record, refilled every 2 s: the second and third batches meet a 429.
    connector = stack.connector(rate_limit_per_s=0.5)
    path = tmp_path / "few.csv"
    path.write_text("id,qty\na,1\nb,2\nc,3\n")
    argv = ["send", str(path), "--url", connector["ingest_url"], "--batch-size", "1"]
    assert main([*argv, "--no-progress"]) == EXIT_DONE
    output = capsys.readouterr()
    assert "429 rate_limited; retrying in" in output.err
    retries = int(re.search(r"retries (\d+)", output.out)[1])  # type: ignore[index]
    assert retries >= 2
    assert "accepted 3, rejected 0" in output.out
    landed = read_topic(stack, connector["topic"])
    assert sorted(value["id"] for value, _ in landed) == ["a", "b", "c"]
    assert connector["token"] not in output.out + output.err
