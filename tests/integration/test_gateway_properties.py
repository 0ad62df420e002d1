"""Property: whatever valid records hypothesis makes, what Confluent's deserializer reads back
from Kafka is exactly what was POSTed (typed: decimals exact, datetimes in UTC)."""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inlet.settings import Settings
from tests.servers import serve_inlet

pytestmark = pytest.mark.kafka

TOKEN = "inlet_admin_property-test"
FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "count", "type": "integer"},
    {"name": "ratio", "type": "float"},
    {"name": "flag", "type": "boolean"},
    {"name": "at", "type": "datetime"},
    {"name": "day", "type": "date"},
    {"name": "clock", "type": "time"},
    {"name": "maybe", "type": "string", "nullable": True},
    {"name": "amount", "type": "decimal", "precision": 12, "scale": 3},
    {"name": "ref", "type": "uuid"},
    {"name": "kind", "type": "enum", "symbols": ["A", "B", "C"]},
    {"name": "tags", "type": "array", "items": "string"},
]

_datetimes = st.datetimes(
    min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)
)
RECORDS = st.fixed_dictionaries(
    {
        "name": st.text(max_size=20),
        "count": st.integers(min_value=-(2**63), max_value=2**63 - 1),
        "ratio": st.floats(allow_nan=False, allow_infinity=False),
        "flag": st.booleans(),
        "at": _datetimes.map(lambda d: d.isoformat()),
        "day": st.dates(min_value=dt.date(1, 1, 1)).map(lambda d: d.isoformat()),
        "clock": st.times().map(lambda t: t.isoformat()),
        "maybe": st.none() | st.text(max_size=10),
        "amount": st.decimals(
            min_value=Decimal("-999999999.999"), max_value=Decimal("999999999.999"), places=3
        ).map(str),
        "ref": st.uuids().map(str),
        "kind": st.sampled_from(["A", "B", "C"]),
        "tags": st.lists(st.text(max_size=5), max_size=3),
    }
)


def _expected(record: dict[str, Any]) -> dict[str, Any]:
    return {
        **record,
        "at": dt.datetime.fromisoformat(record["at"]),
        "day": dt.date.fromisoformat(record["day"]),
        "clock": dt.time.fromisoformat(record["clock"]),
        "amount": Decimal(record["amount"]),
        "ref": uuid.UUID(record["ref"]),
    }


class Pipe:
    def __init__(self, url: str, topic: str, bootstrap: str, registry: str) -> None:
        self.url = url
        self.http = httpx.Client(timeout=30)
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex})
        self.consumer.assign([TopicPartition(topic, 0, 0)])
        self.registry = SchemaRegistryClient(
            {"url": registry, "basic.auth.user.info": f"u:{TOKEN}"}
        )
        self.deserialize = AvroDeserializer(self.registry)
        self.ctx = SerializationContext(topic, MessageField.VALUE)

    def round_trip(self, records: list[dict[str, Any]]) -> list[Any]:
        response = self.http.post(self.url, json=records)
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == len(records)
        messages = self.consumer.consume(len(records), timeout=30)
        assert len(messages) == len(records)
        return [self.deserialize(m.value(), self.ctx) for m in messages]

    def close(self) -> None:
        self.http.close()
        self.consumer.close()
        self.registry.close()


@pytest.fixture(scope="module")
def private_random_for_aiokafka() -> Iterator[None]:
    """aiokafka shuffles with the global ``random`` on every fetch, in the servers' threads, while
    hypothesis generates examples; hypothesis rightly refuses a global random that moves under
    it. Give aiokafka's modules a generator of their own for this module's tests."""
    import aiokafka.client
    import aiokafka.conn
    import aiokafka.consumer.fetcher

    with pytest.MonkeyPatch.context() as patch:
        for module in (aiokafka.client, aiokafka.conn, aiokafka.consumer.fetcher):
            patch.setattr(module, "random", random.Random())
        yield


@pytest.fixture(scope="module")
def pipe(
    private_random_for_aiokafka: None,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Pipe]:
    base = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        data_dir=str(tmp_path_factory.mktemp("props")),
        admin_token=TOKEN,
        topic_partitions=1,  # one partition: records come back in the order sent
    )
    with serve_inlet(base) as (registry, _gateway, _settings):
        admin = httpx.Client(base_url=registry, headers={"Authorization": f"Bearer {TOKEN}"})
        connector = admin.post(
            "/v1/connectors", json={"name": "properties", "fields": FIELDS}
        ).json()
        admin.close()
        pipe = Pipe(connector["ingest_url"], connector["topic"], kafka_bootstrap, registry)
        # The gateway reads connectors from the log: wait until it knows this one.
        deadline = time.monotonic() + 30
        with httpx.Client() as probe:
            while probe.post(pipe.url, json=[]).status_code == 404:
                assert time.monotonic() < deadline, "the gateway never learned the connector"
                time.sleep(0.05)
        yield pipe
        pipe.close()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=st.lists(RECORDS, min_size=1, max_size=10))
def test_what_goes_in_comes_out(pipe: Pipe, records: list[dict[str, Any]]) -> None:
    got = pipe.round_trip(records)
    assert got == [_expected(r) for r in records]
