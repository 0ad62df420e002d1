"""The schema registry on real Kafka, driven by Confluent's own Python client."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from inlet.settings import Settings
from registry.app import create_app
from tests.servers import serve

pytestmark = pytest.mark.kafka

TOKEN = "inlet_admin_test-token"


def _settings(settings: Settings, tmp_path: Path) -> Settings:
    return Settings(
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
        data_dir=str(tmp_path),
        admin_token=TOKEN,
    )


def _client(url: str) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": url, "basic.auth.user.info": f"any:{TOKEN}"})


def _record(name: str, *fields: tuple[str, object]) -> str:
    return json.dumps(
        {
            "type": "record",
            "name": name,
            "fields": [
                {"name": n, "type": t} | ({"default": None} if isinstance(t, list) else {})
                for n, t in fields
            ],
        }
    )


def test_official_client_round_trip(settings: Settings, tmp_path: Path) -> None:
    subject = f"orders-{uuid.uuid4().hex[:8]}-value"
    v1 = _record("Order", ("id", "string"), ("total", "double"))
    v2 = _record("Order", ("id", "string"), ("total", "double"), ("note", ["null", "string"]))
    with serve(create_app(_settings(settings, tmp_path))) as url:
        client = _client(url)
        schema_id = client.register_schema(subject, Schema(v1, "AVRO"))
        assert client.register_schema(subject, Schema(v1, "AVRO")) == schema_id
        assert json.loads(client.get_schema(schema_id).schema_str or "") == json.loads(v1)
        assert client.lookup_schema(subject, Schema(v1, "AVRO")).version == 1
        assert client.test_compatibility(subject, Schema(v2, "AVRO"))
        breaking = _record("Order", ("id", "long"))
        assert not client.test_compatibility(subject, Schema(breaking, "AVRO"))
        with pytest.raises(SchemaRegistryError) as incompatible:
            client.register_schema(subject, Schema(breaking, "AVRO"))
        assert incompatible.value.http_status_code == 409
        v2_id = client.register_schema(subject, Schema(v2, "AVRO"))
        assert client.get_versions(subject) == [1, 2]
        assert client.get_latest_version(subject).schema_id == v2_id

        serializer = AvroSerializer(client, v2, conf={"auto.register.schemas": False})
        deserializer = AvroDeserializer(client)
        ctx = SerializationContext(subject.removesuffix("-value"), MessageField.VALUE)
        payload = serializer({"id": "o-1", "total": 12.5, "note": None}, ctx)
        assert payload is not None
        assert payload[0] == 0
        assert int.from_bytes(payload[1:5], "big") == v2_id
        assert deserializer(payload, ctx) == {"id": "o-1", "total": 12.5, "note": None}

        assert client.delete_subject(subject) == [1, 2]
        assert subject not in client.get_subjects()
        assert client.delete_subject(subject, permanent=True) == [1, 2]
        # (The client caches "latest", so ask the registry itself.)
        gone = httpx.get(f"{url}/subjects/{subject}/versions/latest", auth=("any", TOKEN))
        assert gone.status_code == 404
        assert gone.json()["error_code"] == 40401
        client.close()

        denied = httpx.get(f"{url}/subjects")
        assert denied.status_code == 401


def test_state_survives_a_restart(settings: Settings, tmp_path: Path) -> None:
    subject = f"kept-{uuid.uuid4().hex[:8]}-value"
    schema = _record("Kept", ("id", "string"))
    with serve(create_app(_settings(settings, tmp_path))) as url, _client(url) as client:
        schema_id = client.register_schema(subject, Schema(schema, "AVRO"))
        client.set_compatibility(subject, "FULL")
    with serve(create_app(_settings(settings, tmp_path))) as url, _client(url) as client:
        assert client.get_latest_version(subject).schema_id == schema_id
        assert client.get_compatibility(subject) == "FULL"
        assert client.register_schema(subject, Schema(schema, "AVRO")) == schema_id


def test_two_instances_writing_at_once_never_share_an_id(
    settings: Settings, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    per_instance = 6
    with (
        serve(create_app(_settings(settings, tmp_path / "a"))) as url_a,
        serve(create_app(_settings(settings, tmp_path / "b"))) as url_b,
    ):

        def register(args: tuple[str, int]) -> tuple[str, int]:
            url, n = args
            subject = f"race-{tag}-{n % 3}-value"
            schema = _record("Race", (f"f_{url[-5:]}_{n}", ["null", "string"]))
            with _client(url) as client:
                return schema, client.register_schema(subject, Schema(schema, "AVRO"))

        jobs = [(url_a, n) for n in range(per_instance)] + [(url_b, n) for n in range(per_instance)]
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            results = list(pool.map(register, jobs))

        ids = [schema_id for _, schema_id in results]
        assert len(set(ids)) == len(ids), "two different schemas got the same id"
        for url in (url_a, url_b):
            with _client(url) as client:
                for schema, schema_id in results:
                    stored = client.get_schema(schema_id).schema_str
                    assert json.loads(stored or "") == json.loads(schema)
                counts = [len(client.get_versions(f"race-{tag}-{k}-value")) for k in range(3)]
                for k, count in enumerate(counts):
                    versions = client.get_versions(f"race-{tag}-{k}-value")
                    assert versions == list(range(1, count + 1)), "a version was lost"
                assert sum(counts) == len(jobs)
