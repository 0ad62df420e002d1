"""Registering a schema the subject already has answers its id, as Confluent does, without a write.

Confluent: "If the same schema is registered under a different subject, the same identifier will
be returned. However, the version of the schema may be different under different subjects"; and
registering a schema a subject already has answers that version's id and adds no version. Inlet
answers it from its caught-up state, writing nothing to ``_schemas`` (no transaction: the topic's
end offset does not move). A soft-deleted version is not "already there": registering the schema
again makes a new version, with the same id.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from inlet.kafka import client_config
from inlet.settings import Settings
from inlet.topics import SCHEMAS_TOPIC
from registry.app import create_app
from tests.servers import serve

pytestmark = pytest.mark.kafka

TOKEN = "inlet_admin_register-existing-test"
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


@pytest.fixture(name="registry")
def _registry(settings: Settings, tmp_path: Path) -> Iterator[httpx.Client]:
    configured = Settings(
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
        data_dir=str(tmp_path / "data"),
        admin_token=TOKEN,
    )
    with (
        serve(create_app(configured)) as url,
        httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": CONTENT_TYPE},
            timeout=60,
        ) as client,
    ):
        yield client


@pytest.fixture(name="schemas_end")
def _schemas_end(settings: Settings) -> Iterator[Callable[[], int]]:
    """``_schemas``' end offset (its high watermark: transaction markers count too)."""
    config = client_config(settings, client_id="register-existing-test", **{"group.id": "unused"})
    consumer = Consumer(config)

    def end() -> int:
        _low, high = consumer.get_watermark_offsets(TopicPartition(SCHEMAS_TOPIC, 0), timeout=30)
        return int(high)

    try:
        yield end
    finally:
        consumer.close()


def _schema(name: str) -> str:
    return json.dumps({"type": "record", "name": name, "fields": [{"name": "id", "type": "long"}]})


def _register(registry: httpx.Client, subject: str, schema: str) -> int:
    response = registry.post(f"/subjects/{subject}/versions", json={"schema": schema})
    assert response.status_code == 200, response.text
    assert list(response.json()) == ["id"]
    schema_id: int = response.json()["id"]
    return schema_id


def test_registering_a_schema_the_subject_has_answers_its_id_and_writes_nothing(
    registry: httpx.Client, schemas_end: Callable[[], int]
) -> None:
    end = schemas_end
    subject = f"existing-{uuid.uuid4().hex[:8]}"
    schema = _schema("Existing")
    schema_id = _register(registry, subject, schema)
    written = end()
    # The same schema, spelled differently (whitespace, key order): the same schema to Avro.
    respelled = json.dumps(json.loads(schema), indent=2, sort_keys=True)
    for text in (schema, respelled, schema):
        assert _register(registry, subject, text) == schema_id
    assert end() == written  # no record, no transaction marker
    assert registry.get(f"/subjects/{subject}/versions").json() == [1]


def test_a_soft_deleted_version_is_registered_again_as_a_new_version_with_the_same_id(
    registry: httpx.Client,
) -> None:
    subject = f"existing-deleted-{uuid.uuid4().hex[:8]}"
    schema = _schema("ExistingDeleted")
    schema_id = _register(registry, subject, schema)
    assert registry.delete(f"/subjects/{subject}/versions/1").status_code == 200
    assert _register(registry, subject, schema) == schema_id
    assert registry.get(f"/subjects/{subject}/versions").json() == [2]
