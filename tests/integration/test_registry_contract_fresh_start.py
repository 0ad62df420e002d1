"""Confluent's registry reads its own writes from the first request after start; so does Inlet's.

Confluent's leader answers a register only once the write is in its store, so the very next request
(a lookup, the schema by id, the subject's versions) sees it. Here each round starts a fresh broker
(no state topics yet), and a registry whose state topics another process creates at the same moment,
on cores kept busy; then writes and reads at once. Then a second registry on the same log, started
after those writes, must answer them from its first request too (its first write decides on the
whole log: an old schema keeps its id, a new one gets the next).
"""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import httpx
import pytest

from deploy.broker import LocalKafka, env_cache_dir
from inlet.settings import Settings
from inlet.statelog.kafka import ensure_state_topics
from registry.app import create_app
from registry.wiring import state_topics
from tests import cpu_load
from tests.servers import serve

pytestmark = pytest.mark.kafka

TOKEN = "inlet_admin_fresh-start-test"
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
# Fresh brokers are slow to start; bounded so that the test stays a few minutes at most.
ROUNDS = 3
SUBJECTS_PER_ROUND = 10


def _schema(name: str) -> str:
    return json.dumps(
        {"type": "record", "name": name, "fields": [{"name": "id", "type": "string"}]}
    )


def _client(url: str) -> httpx.Client:
    return httpx.Client(
        base_url=url,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": CONTENT_TYPE},
        timeout=60,
    )


def _register(registry: httpx.Client, subject: str, schema: str) -> int:
    response = registry.post(f"/subjects/{subject}/versions", json={"schema": schema})
    assert response.status_code == 200, response.text
    schema_id: int = response.json()["id"]
    return schema_id


def _reads_back(registry: httpx.Client, subject: str, schema: str, schema_id: int) -> None:
    """What Confluent answers right after the register that returned ``schema_id``."""
    # Listing subjects answers from the state as it is (a miss is not re-checked against the
    # log, as a lookup's is): the request that shows a write not yet folded.
    listed = registry.get("/subjects")
    assert listed.status_code == 200, listed.text
    assert subject in listed.json()
    looked_up = registry.post(f"/subjects/{subject}", json={"schema": schema})
    assert looked_up.status_code == 200, looked_up.text
    assert looked_up.json()["id"] == schema_id
    assert looked_up.json()["subject"] == subject
    by_id = registry.get(f"/schemas/ids/{schema_id}")
    assert by_id.status_code == 200, by_id.text
    assert json.loads(by_id.json()["schema"]) == json.loads(schema)
    versions = registry.get(f"/subjects/{subject}/versions")
    assert versions.status_code == 200, versions.text
    assert versions.json() == [1]


def _settings(bootstrap: str, data_dir: Path) -> Settings:
    return Settings(
        kafka_bootstrap_servers=bootstrap,
        data_dir=str(data_dir),
        admin_token=TOKEN,
        topic_partitions=1,
    )


def test_a_fresh_registry_reads_its_writes_from_the_first_request(tmp_path: Path) -> None:
    with cpu_load.busy_cores():
        for round_ in range(ROUNDS):
            broker = LocalKafka(
                data_dir=None, cache_dir=env_cache_dir(), first_port=None, quiet=True
            )
            try:
                settings = _settings(broker.start(), tmp_path / f"data-{round_}")
                _one_round(settings, round_)
            finally:
                broker.stop()


def _one_round(settings: Settings, round_: int) -> None:
    subjects = [f"fresh-{round_}-{i}-{uuid.uuid4().hex[:6]}" for i in range(SUBJECTS_PER_ROUND)]
    schemas = [_schema(f"Fresh{round_}x{i}") for i in range(SUBJECTS_PER_ROUND)]
    # Another process (the gateway, the consumers) creates state topics at the same moment.
    other = threading.Thread(
        target=ensure_state_topics, args=(settings, state_topics(settings)), daemon=True
    )
    app = create_app(settings)
    other.start()
    ids: list[int] = []
    with serve(app, timeout_s=120) as url, _client(url) as registry:
        for subject, schema in zip(subjects, schemas, strict=True):
            ids.append(_register(registry, subject, schema))
            _reads_back(registry, subject, schema, ids[-1])
        assert len(set(ids)) == len(ids)
        level = registry.put(f"/config/{subjects[0]}", json={"compatibility": "NONE"})
        assert level.status_code == 200, level.text
        config = registry.get(f"/config/{subjects[0]}")
        assert config.status_code == 200, config.text
        assert config.json() == {"compatibilityLevel": "NONE"}
    other.join(60)

    # A registry started on that log answers what it holds from its first request.
    with serve(create_app(settings), timeout_s=120) as url, _client(url) as registry:
        by_id = registry.get(f"/schemas/ids/{ids[-1]}")
        assert by_id.status_code == 200, by_id.text
        assert _register(registry, subjects[0], schemas[0]) == ids[0]
        newer = _schema(f"Fresh{round_}New")
        new_id = _register(registry, f"{subjects[0]}-new", newer)
        assert new_id not in ids
        _reads_back(registry, f"{subjects[0]}-new", newer, new_id)
