"""The pipeline admin API over HTTP, on an in-memory log and fake topics (no Kafka)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from inlet.model.pipelines import (
    PartitionStatus,
    PostgresSink,
    status_key,
    status_value,
)
from inlet.settings import Settings
from inlet.statelog.fold import InMemoryStateLog
from inlet.topics import PIPELINE_STATUS_TOPIC, PIPELINES_TOPIC
from registry.topic_admin import TopicSpec
from tests.registry_app import InMemoryRegistry, MemoryTopics

ADMIN_TOKEN = "inlet_admin_pipeline-test"
AT = datetime(2026, 1, 1, tzinfo=UTC)
DSN = "postgresql://inlet:s3cret@db.example:5432/shop"


class Harness:
    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        self.topics = MemoryTopics()
        self.files_root = tmp_path / "files"
        registry = InMemoryRegistry(
            Settings(data_dir=str(tmp_path), files_root=str(self.files_root), **settings),
            InMemoryStateLog,
            topics=self.topics,
            clock=lambda: AT,
            admin_token=ADMIN_TOKEN,
        )
        self.pipelines = registry.state.pipelines
        self.statuses = registry.state.pipeline_statuses
        self.log = registry.log
        self.app = registry.app

    def report(self, status: PartitionStatus) -> None:
        key = status_key(status.pipeline_id, status.partition)
        self.statuses.apply(PIPELINE_STATUS_TOPIC, key, status_value(status))


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


Client = AsyncTestClient[Litestar]


@pytest.fixture
async def client(harness: Harness) -> AsyncIterator[Client]:
    async with AsyncTestClient(harness.app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        yield test_client


@pytest.fixture
async def connector(client: Client) -> dict[str, Any]:
    body = {"name": "Orders", "fields": [{"name": "id", "type": "string"}]}
    created = await client.post("/v1/connectors", json=body)
    assert created.status_code == 201
    result: dict[str, Any] = created.json()
    return result


async def _create(client: Client, connector: dict[str, Any], **body: Any) -> Any:
    payload = {"name": "Orders to PG", "connector_id": connector["id"], **body}
    payload.setdefault("sink", {"type": "postgres", "dsn": DSN})
    return await client.post("/v1/pipelines", json=payload)


async def test_create_postgres_pipeline(
    client: Client, harness: Harness, connector: dict[str, Any]
) -> None:
    created = await _create(client, connector)
    assert created.status_code == 201, created.text
    pipeline = created.json()
    assert pipeline["id"].startswith("pip_")
    assert pipeline["sink"] == {
        "type": "postgres",
        "dsn": "user=inlet password=*** dbname=shop host=db.example port=5432",
        "table": "orders_to_pg",  # from the name, and stored so a rename never moves the data
        "dedup": True,  # enforces the connector's idempotency keys, once it has some
    }
    assert pipeline["dlq_topic"] == f"inlet.{connector['id']}.dlq.{pipeline['id']}"
    assert pipeline["consumer_group"] == f"inlet-pipeline-{pipeline['id']}"
    assert pipeline["status"] == "running"
    assert (pipeline["records_delivered"], pipeline["lag"], pipeline["last_error"]) == (
        0,
        None,
        None,
    )
    assert harness.topics.topics[pipeline["dlq_topic"]] == TopicSpec(pipeline["dlq_topic"], 1, -1)
    stored = harness.log.records[-1]
    assert stored.topic == PIPELINES_TOPIC
    # The password is on the log sealed (workers open it with the secret key), never in an answer.
    assert stored.value is not None
    assert b"s3cret" not in stored.value
    assert b'"dsn":"sealed:v1:' in stored.value
    assert harness.pipelines.by_id[pipeline["id"]].sink == PostgresSink(
        dsn=DSN, table="orders_to_pg"
    )
    for path in ("/v1/pipelines", f"/v1/pipelines/{pipeline['id']}"):
        assert "s3cret" not in (await client.get(path)).text


async def test_create_files_pipeline(
    client: Client, harness: Harness, connector: dict[str, Any]
) -> None:
    # Relative to INLET_FILES_ROOT; an absolute path inside it is stored relative to it.
    absolute = str(harness.files_root / "data" / "orders")
    sink = {"type": "files", "directory": absolute, "format": "ndjson"}
    created = await _create(client, connector, sink=sink)
    assert created.status_code == 201, created.text
    assert created.json()["sink"] == {
        "type": "files",
        "directory": "data/orders",
        "format": "ndjson",
        "roll_bytes": 128 * 1024 * 1024,
        "roll_seconds": 300.0,
    }


@pytest.mark.parametrize(
    ("sink", "field"),
    [
        ({"type": "postgres", "dsn": "host=db port=notaport dbname='x"}, "sink.dsn"),
        ({"type": "postgres", "dsn": "  "}, "sink.dsn"),
        ({"type": "postgres", "dsn": DSN, "table": "a.b.c"}, "sink.table"),
        ({"type": "postgres", "dsn": DSN, "table": "bad-name"}, "sink.table"),
        ({"type": "files", "directory": "/data/orders"}, "sink.directory"),
        ({"type": "files", "directory": "../elsewhere"}, "sink.directory"),
        ({"type": "files", "directory": "/proc/self/cwd/orders"}, "sink.directory"),
        ({"type": "files", "directory": "orders\x00x"}, "sink.directory"),
        # libpq's PQconnectdb reads it as a database name: it would never connect as meant.
        ({"type": "postgres", "dsn": "dbname=postgresql://u:pw@evil.example/db"}, "sink.dsn"),
    ],
)
async def test_invalid_sinks_are_refused(
    client: Client, harness: Harness, connector: dict[str, Any], sink: dict[str, Any], field: str
) -> None:
    refused = await _create(client, connector, sink=sink)
    assert refused.status_code == 422, refused.text
    assert [p["field"] for p in refused.json()["problems"]] == [field]
    assert harness.pipelines.all() == []
    assert [t for t in harness.topics.topics if ".dlq." in t] == []


async def test_shape_errors_are_422(client: Client, connector: dict[str, Any]) -> None:
    tiny = {"type": "files", "directory": "d", "roll_bytes": 10}
    assert (await _create(client, connector, sink=tiny)).status_code == 422
    unknown = {"type": "s3", "bucket": "b"}
    assert (await _create(client, connector, sink=unknown)).status_code == 422
    extra = {"type": "postgres", "dsn": DSN, "schema": "x"}
    assert (await _create(client, connector, sink=extra)).status_code == 422


async def test_unknown_connector_name_taken_and_shared_sink(
    client: Client, connector: dict[str, Any]
) -> None:
    missing = await client.post(
        "/v1/pipelines",
        json={"name": "x", "connector_id": "con_0", "sink": {"type": "postgres", "dsn": DSN}},
    )
    assert missing.status_code == 422
    assert missing.json()["problems"][0]["field"] == "connector_id"
    assert (await _create(client, connector)).status_code == 201
    taken = await _create(
        client, connector, name="ORDERS TO PG", sink={"type": "files", "directory": "x"}
    )
    assert taken.status_code == 409
    # Same database and table under another name: one feed would corrupt the other's offsets.
    same_table = await _create(
        client,
        connector,
        name="other",
        sink={"type": "postgres", "dsn": DSN, "table": "orders_to_pg"},
    )
    assert same_table.status_code == 422
    assert same_table.json()["problems"][0]["field"] == "sink.table"


async def test_pause_resume_delete(
    client: Client, harness: Harness, connector: dict[str, Any]
) -> None:
    pipeline = (await _create(client, connector)).json()
    url = f"/v1/pipelines/{pipeline['id']}"
    paused = await client.post(f"{url}/pause")
    assert paused.status_code == 200
    assert paused.json()["status"] == "paused"
    assert harness.pipelines.get(pipeline["id"]).paused  # type: ignore[union-attr]
    assert (await client.post(f"{url}/pause")).json()["status"] == "paused"  # idempotent
    assert (await client.post(f"{url}/resume")).json()["status"] == "running"
    harness.report(PartitionStatus(pipeline_id=pipeline["id"], partition=0, updated_at=AT))

    assert (await client.delete(url)).status_code == 204
    assert (await client.get(url)).status_code == 404
    assert (await client.post(f"{url}/pause")).status_code == 404
    assert pipeline["dlq_topic"] not in harness.topics.topics
    assert harness.statuses.reports(pipeline["id"]) == []  # its reports were tombstoned
    assert (await client.get("/v1/pipelines")).json() == {"data": []}


async def test_a_connector_with_pipelines_is_not_deleted(
    client: Client, connector: dict[str, Any]
) -> None:
    first = (await _create(client, connector)).json()
    lake = {"type": "files", "directory": "data/orders"}
    second = (await _create(client, connector, name="Orders to lake", sink=lake)).json()
    refused = await client.delete(f"/v1/connectors/{connector['id']}")
    assert refused.status_code == 409
    body = refused.json()
    assert body["type"].endswith("/connector-in-use")
    assert body["code"] == "connector_in_use"
    assert sorted(p["reason"] for p in body["problems"]) == sorted(
        f"pipeline {pipeline['id']!r} reads it" for pipeline in (first, second)
    )
    assert (await client.get(f"/v1/connectors/{connector['id']}")).status_code == 200
    for pipeline in (first, second):
        assert (await client.delete(f"/v1/pipelines/{pipeline['id']}")).status_code == 204
    assert (await client.delete(f"/v1/connectors/{connector['id']}")).status_code == 204


async def test_view_sums_what_workers_report(
    client: Client, harness: Harness, connector: dict[str, Any]
) -> None:
    pipeline = (await _create(client, connector)).json()
    pid = pipeline["id"]
    later = datetime(2026, 1, 2, tzinfo=UTC)
    harness.report(
        PartitionStatus(
            pipeline_id=pid, partition=0, next_offset=10, end_offset=15, delivered=9,
            dead_lettered=1, duplicates_skipped=2, last_error="offset 3: bad", last_error_at=AT,
            worker="w1", updated_at=later,
        )
    )  # fmt: skip
    harness.report(
        PartitionStatus(
            pipeline_id=pid, partition=1, next_offset=None, end_offset=4, worker="w2",
            updated_at=later,
        )
    )  # fmt: skip
    harness.report(
        PartitionStatus(
            pipeline_id=pid, partition=-1, last_error="connection refused", last_error_at=later,
            updated_at=later,
        )
    )  # fmt: skip
    view = (await client.get(f"/v1/pipelines/{pid}")).json()
    assert (view["records_delivered"], view["records_dead_lettered"], view["lag"]) == (9, 1, 9)
    assert view["records_duplicates_skipped"] == 2
    assert [p["duplicates_skipped"] for p in view["partitions"]] == [2, 0]
    assert view["last_error"] == {
        "message": "connection refused",
        "at": "2026-01-02T00:00:00Z",
        "partition": None,
    }
    assert [(p["partition"], p["lag"], p["worker"]) for p in view["partitions"]] == [
        (0, 5, "w1"),
        (1, 4, "w2"),
    ]


async def test_sink_hosts_restrict_where_dsns_point(tmp_path: Path) -> None:
    harness = Harness(tmp_path, sink_hosts="db.example, 10.0.0.0/8")
    async with AsyncTestClient(harness.app) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        body = {"name": "Orders", "fields": [{"name": "id", "type": "string"}]}
        connector = (await client.post("/v1/connectors", json=body)).json()
        assert (await _create(client, connector)).status_code == 201  # db.example
        for dsn in (
            "postgresql://u:hunter2-pw@evil.example/db",
            "host=db.example hostaddr=192.0.2.1 dbname=other",
            "dbname=db",
        ):
            sink = {"type": "postgres", "dsn": dsn}
            refused = await _create(client, connector, name="x", sink=sink)
            assert refused.status_code == 422, (dsn, refused.text)
            assert [p["field"] for p in refused.json()["problems"]] == ["sink.dsn"]
            assert "hunter2" not in refused.text


async def test_status_says_failing_or_retrying_while_a_failure_lasts(
    client: Client, harness: Harness, connector: dict[str, Any]
) -> None:
    pid = (await _create(client, connector)).json()["id"]

    async def status() -> str:
        view = (await client.get(f"/v1/pipelines/{pid}")).json()
        listed = (await client.get("/v1/pipelines")).json()["data"][0]["status"]
        assert listed == view["status"]
        return str(view["status"])

    def failure(kind: Any, message: str) -> PartitionStatus:
        return PartitionStatus(
            pipeline_id=pid, partition=-1, last_error=message, last_error_at=AT, failure=kind,
            updated_at=AT,
        )  # fmt: skip

    assert await status() == "running"
    harness.report(failure("permanent", "PostgreSQL: authentication failed"))
    assert await status() == "failing"
    view = (await client.get(f"/v1/pipelines/{pid}")).json()
    assert view["last_error"]["message"] == "PostgreSQL: authentication failed"
    harness.report(failure("transient", "PostgreSQL: connection refused"))
    assert await status() == "retrying"
    harness.report(failure(None, "PostgreSQL: connection refused"))  # it delivers again
    assert await status() == "running"
    harness.report(failure("permanent", "PostgreSQL: authentication failed"))
    assert (await client.post(f"/v1/pipelines/{pid}/pause")).json()["status"] == "paused"
