"""What the tests of idempotency keys downstream share: two gateways, a registry and a feed worker
on one Kafka, a fresh database, and the waits on a pipeline's table and reports."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from deploy.broker import LocalKafka
from gateway.app import create_app as create_gateway
from inlet.settings import Settings
from tests.integration._pipelines_helpers import FeedWorker
from tests.served_stack import until
from tests.servers import serve, serve_inlet

TOKEN = "inlet_admin_dedup-downstream"
FIELDS = [{"name": "id", "type": "string"}, {"name": "amount", "type": "integer"}]
# Generous: the suite runs on a loaded 2-core machine, and a feed publishes its status every 2 s.
DEADLINE_S = 90.0
PRODUCE_TIMEOUT_S = 3.0


class Served(msgspec.Struct):
    settings: Settings
    admin: httpx.Client
    gateways: list[str]  # two gateway processes' worth (two apps, one each)
    worker: FeedWorker
    cluster: LocalKafka | None = None  # a test's own cluster, when it stops nodes
    pipelines: list[str] = msgspec.field(default_factory=list)  # made here: deleted at the end


@contextmanager
def served_on(bootstrap: str, data: Path, partitions: int) -> Iterator[Served]:
    """Two gateways, a registry and a feed worker process on the Kafka at ``bootstrap``."""
    base = Settings(
        kafka_bootstrap_servers=bootstrap,
        data_dir=str(data / "data"),
        admin_token=TOKEN,
        topic_partitions=partitions,
        # A 503 comes soon after the topic stops taking writes; the lease is 3 x this + 10 s.
        produce_timeout_s=PRODUCE_TIMEOUT_S,
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with (
        serve_inlet(base) as (registry, gateway, settings),
        serve(create_gateway(settings)) as second,
        httpx.Client(base_url=registry, headers=headers, timeout=30) as admin,
    ):
        worker = FeedWorker(settings, data / "worker.log")
        worker.env["INLET_CONSUMERS_METRICS_PORT"] = "0"  # a port the system picks, logged
        worker.start()
        served = Served(settings, admin, [gateway, second], worker)
        try:
            yield served
        finally:
            # Other tests on the session's broker list pipelines: leave none behind.
            for pipeline_id in served.pipelines:
                admin.delete(f"/v1/pipelines/{pipeline_id}")
            worker.stop()


@contextmanager
def fresh_database(postgres_dsn: str) -> Iterator[str]:
    name = f"d_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(postgres_dsn, dbname=name)
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def new_connector(served: Served, **settings: Any) -> tuple[dict[str, Any], list[str]]:
    """A new connector and its ingest URL on each gateway, once both know it."""
    name = f"downstream-{uuid.uuid4().hex[:8]}"
    created = served.admin.post("/v1/connectors", json={"name": name, "fields": FIELDS, **settings})
    assert created.status_code == 201, created.text
    connector: dict[str, Any] = created.json()
    path = connector["ingest_url"][len(served.gateways[0]) :]
    urls = [gateway + path for gateway in served.gateways]
    for url in urls:
        until(knows(url), "the gateway to know the connector")
    return connector, urls


def knows(url: str) -> Callable[[], bool]:
    return lambda: httpx.post(url, json=[], timeout=30).status_code != 404


def deduplicates(url: str) -> Callable[[], bool]:
    """Whether the gateway at ``url`` has the connector's dedup setting (a repeat of one key is
    answered as a duplicate)."""
    probe = {"id": "probe", "amount": 0}
    return lambda: (
        "duplicate" in httpx.post(url, json=probe, headers={"webhook-id": "probe"}).json()
    )


def new_pipeline(served: Served, connector: dict[str, Any], dsn: str) -> dict[str, Any]:
    body = {
        "name": f"pg-{uuid.uuid4().hex[:8]}",
        "connector_id": connector["id"],
        "sink": {"type": "postgres", "dsn": dsn, "table": "events"},
    }
    created = served.admin.post("/v1/pipelines", json=body)
    assert created.status_code == 201, created.text
    pipeline: dict[str, Any] = created.json()
    served.pipelines.append(pipeline["id"])
    assert pipeline["sink"]["dedup"] is True  # the default: enforce the connector's keys
    return pipeline


def pipeline_view(served: Served, pipeline: dict[str, Any]) -> dict[str, Any]:
    found = served.admin.get(f"/v1/pipelines/{pipeline['id']}")
    assert found.status_code == 200, found.text
    view: dict[str, Any] = found.json()
    return view


def table_rows(dsn: str, columns: str = "_inlet_dedup_key, id") -> list[Any]:
    with psycopg.connect(dsn) as conn:
        try:
            return conn.execute(f"SELECT {columns} FROM events ORDER BY 1, 2").fetchall()
        except psycopg.errors.UndefinedTable:
            return []


def has_key_column(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        found = conn.execute(
            "SELECT 1 FROM information_schema.columns "
            "WHERE table_name = 'events' AND column_name = '_inlet_dedup_key'"
        ).fetchone()
    return found is not None


def wait_reported(served: Served, pipeline: dict[str, Any], delivered: int, skipped: int) -> None:
    def reported() -> bool:
        view = pipeline_view(served, pipeline)
        return (view["records_delivered"], view["records_duplicates_skipped"]) == (
            delivered,
            skipped,
        )

    until(reported, f"the pipeline to report {delivered} delivered, {skipped} skipped", DEADLINE_S)
