"""Pipeline feeds on real Kafka and real PostgreSQL: exactly once across SIGKILL, dead letters,
schema edits, pause/resume, and the pull feed paging through every record once."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pyarrow.parquet as pq
import pytest
from confluent_kafka.admin import AdminClient
from psycopg import sql
from psycopg.conninfo import make_conninfo

from inlet.kafka import client_config
from inlet.settings import Settings
from registry.app import create_app
from tests.integration._pipelines_helpers import (
    TOKEN,
    FeedWorker,
    RecordProducer,
    Registry,
    record,
    running_worker,
    topic_contents,
    wait_until,
)
from tests.servers import serve

pytestmark = pytest.mark.kafka

STREAM = 8000  # records produced while a feed runs (and is killed)


@pytest.fixture
def registry(settings: Settings, tmp_path: Path) -> Iterator[Registry]:
    settings = Settings(
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
        data_dir=str(tmp_path / "data"),
        files_root=str(tmp_path),  # the files pipelines' directories are below it
        admin_token=TOKEN,
        topic_partitions=3,
    )
    with serve(create_app(settings)) as url:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as api:
            yield Registry(settings, api)


@pytest.fixture
def database(postgres_dsn: str) -> Iterator[str]:
    """A fresh database for the test; its DSN carries a password, which GET must never show."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    # The test server trusts local connections, so the password is carried but never checked.
    yield make_conninfo(postgres_dsn, dbname=name, password="s3cret-pw")
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def worker(registry: Registry, tmp_path: Path) -> Iterator[FeedWorker]:
    yield from running_worker(registry.settings, tmp_path / "worker.log")


def _producer(registry: Registry, connector: dict[str, Any]) -> RecordProducer:
    schema = registry.schema(connector["schema_id"])
    return RecordProducer(registry.settings, connector["topic"], connector["schema_id"], schema)


def _rows(dsn: str, table: str, columns: str = "_inlet_partition, _inlet_offset, id") -> list[Any]:
    with psycopg.connect(dsn) as conn:
        query = sql.SQL("SELECT {} FROM {} ORDER BY 1, 2").format(
            sql.SQL(columns), sql.Identifier(table)
        )
        try:
            return conn.execute(query).fetchall()
        except psycopg.errors.UndefinedTable:
            return []


def _count(dsn: str, table: str) -> int:
    return len(_rows(dsn, table, "_inlet_partition, _inlet_offset"))


def _expected_ids(registry: Registry, connector: dict[str, Any]) -> dict[tuple[int, int], str]:
    """(partition, offset) -> record id, read back from the topic itself."""
    producer = _producer(registry, connector)
    by_value = {producer.encode(record(i)): record(i)["id"] for i in range(STREAM)}
    contents = topic_contents(registry.settings, connector["topic"])
    return {at: by_value[value] for at, value in contents.items() if value in by_value}


def _pipeline_view(registry: Registry, pipeline_id: str) -> dict[str, Any]:
    found = registry.api.get(f"/v1/pipelines/{pipeline_id}")
    assert found.status_code == 200, found.text
    view: dict[str, Any] = found.json()
    return view


def test_postgres_feed_is_exactly_once_across_sigkill(
    registry: Registry, database: str, tmp_path: Path
) -> None:
    connector = registry.create_connector()
    pipeline = registry.create_pipeline(connector, {"type": "postgres", "dsn": database})
    table = pipeline["sink"]["table"]
    assert "s3cret-pw" not in str(pipeline)
    assert "password=***" in pipeline["sink"]["dsn"]

    producer = _producer(registry, connector)
    sending = producer.send_in_background(STREAM)
    # Two workers share the pipeline's partitions; one is killed, the other takes over its
    # partitions, then the killed one comes back and they are shared again.
    first = FeedWorker(registry.settings, tmp_path / "first.log")
    second = FeedWorker(registry.settings, tmp_path / "second.log")
    first.start()
    second.start()
    try:
        wait_until(lambda: _count(database, table) >= 1000, what="the first rows")
        first.kill()  # SIGKILL mid-stream: no clean-up of any kind
        assert _count(database, table) < STREAM, "the kill came too late to test anything"
        first.start()
        sending.join(60)
        wait_until(lambda: _count(database, table) >= STREAM, what="every row")

        # The workers report it: everything delivered, nothing left, and running again (a worker
        # that failed around the kill and its rebalance says "retrying" until its next session).
        def reported() -> bool:
            view = _pipeline_view(registry, pipeline["id"])
            done = (view["records_delivered"], view["lag"], view["records_dead_lettered"])
            return bool(done == (STREAM, 0, 0) and view["status"] == "running")

        wait_until(reported, timeout_s=120, what="the status report")
    finally:
        first.stop()
        second.stop()

    expected = _expected_ids(registry, connector)
    assert len(expected) == STREAM
    rows = _rows(database, table)
    assert [(p, o) for p, o, _ in rows] == sorted(expected), "rows lost or repeated"
    assert all(expected[(p, o)] == row_id for p, o, row_id in rows)
    # Values went into typed columns and came back equal.
    sample = _rows(database, table, "n, total, day, tags, customer, status, ref, note, at")
    by_n = {row[0]: row for row in sample}
    for i in (0, 1, 7, STREAM - 1):
        want = record(i)
        _, total, day, tags, customer, status, ref, note, at = by_n[i]
        assert (total, day, tags, status, ref, note, at) == (
            want["total"],
            want["day"],
            want["tags"],
            want["status"],
            want["ref"],
            want["note"],
            want["at"],
        )
        assert customer == {"email": want["customer"]["email"], "vip": want["customer"]["vip"]}
    # No record was refused (a repeated row would have been: the primary key is the offset).
    assert topic_contents(registry.settings, pipeline["dlq_topic"]) == {}
    view = _pipeline_view(registry, pipeline["id"])
    assert view["status"] == "running"
    assert sorted(p["partition"] for p in view["partitions"]) == [0, 1, 2]
    assert "s3cret-pw" not in str(view)


def test_parquet_feed_is_exactly_once_across_sigkill(registry: Registry, tmp_path: Path) -> None:
    directory = tmp_path / "lake"
    connector = registry.create_connector()
    sink = {
        "type": "files",
        "directory": str(directory),
        "format": "parquet",
        "roll_bytes": 256 * 1024,
        "roll_seconds": 1,
    }
    pipeline = registry.create_pipeline(connector, sink)

    def delivered() -> list[tuple[int, int, str]]:
        rows: list[tuple[int, int, str]] = []
        for path in directory.glob("dt=*/*.parquet"):
            table = pq.read_table(path, columns=["_inlet_partition", "_inlet_offset", "id"])
            rows += zip(*(table.column(i).to_pylist() for i in range(3)), strict=True)
        return sorted(rows)

    producer = _producer(registry, connector)
    worker = FeedWorker(registry.settings, tmp_path / "worker.log")
    worker.start()
    try:
        # The stream starts once the feed delivers: a feed that takes a second to start would
        # otherwise find most of the stream on the topic, and a fast one write it all to files
        # before the kill.
        producer.send([record(i) for i in range(500)])
        wait_until(lambda: len(delivered()) >= 1, what="the first file")
        sending = producer.send_in_background(STREAM, pause_s=0.1, first=500)
        wait_until(lambda: len(delivered()) >= 1000, what="the first files")
        worker.kill()
        assert len(delivered()) < STREAM, "the kill came too late to test anything"
        worker.start()
        sending.join(60)
        wait_until(lambda: len(delivered()) >= STREAM, what="every record in files")
    finally:
        assert worker.stop() == 0, worker.log_tail()

    expected = _expected_ids(registry, connector)
    rows = delivered()
    assert [(p, o) for p, o, _ in rows] == sorted(expected), "records lost or repeated"
    assert all(expected[(p, o)] == row_id for p, o, row_id in rows)
    # Files are named for what they hold, in the day directory of their records.
    for path in directory.glob("dt=*/*.parquet"):
        table = pq.read_table(path)
        offsets = table.column("_inlet_offset").to_pylist()
        partition = table.column("_inlet_partition").to_pylist()[0]
        assert path.name == f"p{partition}-{offsets[0]:012d}-{offsets[-1]:012d}.parquet"
        days = {at.date().isoformat() for at in table.column("_inlet_received_at").to_pylist()}
        assert days == {path.parent.name.removeprefix("dt=")}
        assert table.schema.field("total").type.precision == 10
    assert {p.name for p in directory.glob("dt=*")} == {"dt=2026-03-01", "dt=2026-03-02"}
    assert list((directory / ".inlet" / "tmp").iterdir()) == []  # a clean stop leaves no temp
    assert topic_contents(registry.settings, pipeline["dlq_topic"]) == {}


def _group_state(registry: Registry, group: str) -> str:
    admin = AdminClient(client_config(registry.settings, client_id="test-admin"))
    described = admin.describe_consumer_groups([group])[group].result(10)
    return str(described.state.name)


def test_refused_rows_go_to_the_dlq_and_the_feed_goes_on(
    registry: Registry, database: str, worker: FeedWorker
) -> None:
    connector = registry.create_connector()
    pipeline = registry.create_pipeline(connector, {"type": "postgres", "dsn": database})
    table = pipeline["sink"]["table"]
    producer = _producer(registry, connector)
    nul = {**record(3), "note": "a NUL \x00 in text"}  # PostgreSQL text cannot hold it
    # A decimal wider than the column's precision (Avro does not check it on read).
    wide_schema = registry.schema(connector["schema_id"])
    wide_schema["fields"][2]["type"]["precision"] = 20
    topic, schema_id = connector["topic"], connector["schema_id"]
    wide = RecordProducer(registry.settings, topic, schema_id, wide_schema)
    overflow = wide.encode({**record(4), "total": Decimal("123456789012.34")})
    producer.send([record(i) for i in range(3)])
    producer.send([nul])
    producer.send_raw(overflow, b"r000004")
    producer.send_raw(b"not a wire-format value", b"junk")
    producer.send([record(i) for i in range(5, 10)])

    wait_until(lambda: _count(database, table) >= 8, what="the good rows")
    wait_until(
        lambda: len(topic_contents(registry.settings, pipeline["dlq_topic"])) >= 3,
        what="three dead letters",
    )
    dlq = topic_contents(registry.settings, pipeline["dlq_topic"])
    assert len(dlq) == 3
    assert sorted(r[2] for r in _rows(database, table)) == [
        record(i)["id"] for i in (0, 1, 2, 5, 6, 7, 8, 9)
    ]
    assert overflow in dlq.values()
    assert b"not a wire-format value" in dlq.values()

    # The view reports it: three dead letters, and why the last one was refused.
    def reported() -> bool:
        view = _pipeline_view(registry, pipeline["id"])
        return bool(view["records_dead_lettered"] == 3 and view["records_delivered"] == 8)

    wait_until(reported, what="the status report")
    assert _pipeline_view(registry, pipeline["id"])["last_error"]["message"]

    # A schema edit that adds a field adds a nullable column.
    fields = [*connector["fields"], {"name": "channel", "type": "string", "nullable": True}]
    evolved = registry.api.patch(f"/v1/connectors/{connector['id']}", json={"fields": fields})
    assert evolved.status_code == 200, evolved.text
    new_id = evolved.json()["schema_id"]
    v2 = RecordProducer(registry.settings, connector["topic"], new_id, registry.schema(new_id))
    v2.send([{**record(10), "channel": "web"}])
    wait_until(lambda: _count(database, table) >= 9, what="the row of the new schema")
    channels = dict(_rows(database, table, "n, channel, _inlet_offset")[i][:2] for i in range(9))
    assert channels[10] == "web"
    assert channels[0] is None

    # Pause stops the feed (its group empties); resume catches up.
    paused = registry.api.post(f"/v1/pipelines/{pipeline['id']}/pause")
    assert paused.status_code == 200
    assert paused.json()["status"] == "paused"
    group = pipeline["consumer_group"]
    wait_until(lambda: _group_state(registry, group) == "EMPTY", what="the feed to stop")
    producer.send([record(i) for i in range(11, 14)])
    assert _count(database, table) == 9
    assert registry.api.post(f"/v1/pipelines/{pipeline['id']}/resume").status_code == 200
    wait_until(lambda: _count(database, table) == 12, what="the feed to catch up")

    assert registry.api.delete(f"/v1/pipelines/{pipeline['id']}").status_code == 204
    assert registry.api.get(f"/v1/pipelines/{pipeline['id']}").status_code == 404
    wait_until(lambda: _group_state(registry, group) == "EMPTY", what="the feed to stop")


def test_pull_feed_pages_through_every_record_once(registry: Registry) -> None:
    connector = registry.create_connector()
    producer = _producer(registry, connector)
    producer.send([record(i) for i in range(250)])
    # An aborted transaction's records take offsets (and so do the commit markers) but are
    # never shown; the pages step over them.
    producer.send_aborted([record(i) for i in range(900, 910)])
    producer.send_raw(b"\x00\x00\x00\xff\xffunknown schema", b"junk")
    truth = topic_contents(registry.settings, connector["topic"])
    assert len(truth) == 251

    def pages(cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        seen: list[dict[str, Any]] = []
        while True:
            params: dict[str, Any] = {"limit": 40}
            if cursor is not None:
                params["cursor"] = cursor
            page = registry.api.get(f"/v1/connectors/{connector['id']}/records", params=params)
            assert page.status_code == 200, page.text
            body = page.json()
            assert len(body["records"]) <= 40
            cursor = body["next_cursor"]
            if not body["records"]:
                return seen, cursor
            seen += body["records"]

    seen, cursor = pages(None)
    assert sorted((r["partition"], r["offset"]) for r in seen) == sorted(truth)
    assert len(seen) == len(truth), "a record came twice"
    by_id = {r["value"]["id"]: r for r in seen if r.get("value")}
    assert by_id["r000007"]["value"]["total"] == "0.07"
    assert by_id["r000007"]["value"]["at"] == "2026-03-01T23:59:55.007000Z"
    assert by_id["r000007"]["received_at"].startswith("2026-03-01T23:59:55.007")
    assert by_id["r000007"]["key"] == "r000007"
    assert next(r for r in seen if r["error"])["value"] is None

    # The cursor of the last page resumes exactly after it, past what was aborted since.
    producer.send_aborted([record(i) for i in range(910, 915)])
    producer.send([record(i) for i in range(250, 255)])
    # The broker writes a commit's markers just after answering it: wait until they are there.
    assert len(topic_contents(registry.settings, connector["topic"])) == 256
    more, _ = pages(cursor)
    assert sorted(r["value"]["id"] for r in more) == [record(i)["id"] for i in range(250, 255)]

    other = registry.create_connector()
    bad = registry.api.get(f"/v1/connectors/{other['id']}/records", params={"cursor": cursor})
    assert bad.status_code == 400
    assert bad.json()["problems"][0]["field"] == "cursor"
    garbage = base64.urlsafe_b64encode(b"{}").decode()
    assert (
        registry.api.get(
            f"/v1/connectors/{connector['id']}/records", params={"cursor": garbage}
        ).status_code
        == 400
    )
    assert registry.api.get("/v1/connectors/con_0000000000000000/records").status_code == 404
    too_many = registry.api.get(f"/v1/connectors/{connector['id']}/records", params={"limit": 1001})
    assert too_many.status_code == 422
