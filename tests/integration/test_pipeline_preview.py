"""The pipeline preview shows what the sink then writes: the PostgreSQL table (columns, types, NOT
NULL) and its rows, the Parquet schema and rows, the NDJSON lines, for a connector's 50 samples."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
import pyarrow.parquet as pq
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from inlet.settings import Settings
from registry.app import create_app
from tests.integration._pipelines_helpers import (
    TOKEN,
    FeedWorker,
    RecordProducer,
    Registry,
    record,
    wait_until,
)
from tests.servers import serve

pytestmark = pytest.mark.kafka

SAMPLES = 50
# The worker is a fresh process on a loaded machine: it starts, joins groups, then writes.
DEADLINE_S = 120.0


@pytest.fixture
def registry(settings: Settings, tmp_path: Path) -> Iterator[Registry]:
    settings = Settings(
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
        data_dir=str(tmp_path / "data"),
        files_root=str(tmp_path),
        admin_token=TOKEN,
        topic_partitions=3,
    )
    with serve(create_app(settings)) as url:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as api:
            yield Registry(settings, api)


@pytest.fixture
def worker(registry: Registry, tmp_path: Path) -> Iterator[FeedWorker]:
    """The sample worker and the pipeline worker, in one process as ``inlet up`` runs them."""
    worker = FeedWorker(registry.settings, tmp_path / "worker.log", ("samples", "pipelines"))
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def database(postgres_dsn: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield make_conninfo(postgres_dsn, dbname=name, password="s3cret-pw")
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _sampled_connector(registry: Registry) -> dict[str, Any]:
    """A connector of every field type with 50 samples (sent straight to its topic)."""
    connector = registry.create_connector()
    schema = registry.schema(connector["schema_id"])
    producer = RecordProducer(registry.settings, connector["topic"], connector["schema_id"], schema)
    producer.send([record(i) for i in range(SAMPLES)])

    def sampled() -> bool:
        found = registry.api.get(f"/v1/connectors/{connector['id']}/samples")
        return bool(found.status_code == 200 and found.json()["count"] == SAMPLES)

    wait_until(sampled, DEADLINE_S, "50 samples")
    return connector


def _preview(registry: Registry, body: dict[str, Any]) -> dict[str, Any]:
    answer = registry.api.post("/v1/pipelines/preview", json=body)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def _by_place(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["_inlet_partition"], r["_inlet_offset"]))


def _table_shape(conn: psycopg.Connection[Any], table: str) -> list[tuple[str, str, str]]:
    """(name, type as PostgreSQL spells it, is_nullable) per column, in order."""
    rows = conn.execute(
        "SELECT c.column_name, format_type(a.atttypid, a.atttypmod), c.is_nullable "
        "FROM information_schema.columns c JOIN pg_attribute a "
        "ON a.attrelid = format('%%I.%%I', c.table_schema, c.table_name)::regclass "
        "AND a.attname = c.column_name "
        "WHERE c.table_name = %s ORDER BY c.ordinal_position",
        (table,),
    ).fetchall()
    return [(str(n), str(t), str(nullable)) for n, t, nullable in rows]


@pytest.mark.usefixtures("worker")
def test_the_postgres_preview_is_what_the_sink_creates_and_writes(
    registry: Registry, database: str
) -> None:
    connector = _sampled_connector(registry)
    body = {
        "name": f"pg-{uuid.uuid4().hex[:8]}",
        "connector_id": connector["id"],
        "sink": {"type": "postgres", "dsn": database},
    }
    preview = _preview(registry, body)
    assert "s3cret-pw" not in json.dumps(preview)
    assert preview["sink"] == "postgres"
    assert preview["samples"] == SAMPLES
    assert len(preview["rows"]) == SAMPLES
    table = preview["table"]["name"]
    # Nothing was made by the preview (other tests' pipelines may share the broker).
    made = registry.api.get("/v1/pipelines").json()["data"]
    assert [p for p in made if p["name"] == body["name"]] == []

    created = registry.api.post("/v1/pipelines", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["sink"]["table"] == table

    def count() -> int:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        with psycopg.connect(database) as conn:
            try:
                found = conn.execute(query).fetchone()
            except psycopg.errors.UndefinedTable:
                return 0
        return 0 if found is None else int(found[0])

    wait_until(lambda: count() >= SAMPLES, DEADLINE_S, "the sink's rows")
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")  # timestamptz values come back in UTC, as shown
        made = _table_shape(conn, table)
        # The preview's types, declared by the sink's own spelling, read back as PostgreSQL's.
        probe = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c["name"]), sql.SQL(c["type"]))
            for c in preview["table"]["columns"]
        )
        conn.execute(sql.SQL("CREATE TEMP TABLE preview_probe ({})").format(probe))
        declared = [(n, t) for n, t, _ in _table_shape(conn, "preview_probe")]
        assert [(n, t) for n, t, _ in made] == declared
        assert [(n, nullable == "YES") for n, _, nullable in made] == [
            (c["name"], c["nullable"]) for c in preview["table"]["columns"]
        ]
        written = conn.execute(
            sql.SQL("SELECT * FROM {} ORDER BY 1, 2").format(sql.Identifier(table))
        )
        names = [d.name for d in written.description or []]
        rows = [dict(zip(names, row, strict=True)) for row in written.fetchall()]
    assert msgspec.to_builtins(rows) == _by_place(preview["rows"])


@pytest.mark.usefixtures("worker")
@pytest.mark.parametrize("file_format", ["parquet", "ndjson"])
def test_the_files_preview_is_what_the_sink_writes(
    registry: Registry, tmp_path: Path, file_format: str
) -> None:
    connector = _sampled_connector(registry)
    directory = tmp_path / f"lake-{file_format}"
    sink = {"type": "files", "directory": str(directory), "format": file_format}
    body = {"name": f"files-{uuid.uuid4().hex[:8]}", "connector_id": connector["id"], "sink": sink}
    preview = _preview(registry, body)
    files = preview["files"]
    assert files["format"] == file_format
    assert files["example_name"].startswith("dt=2026-03-0")
    created = registry.api.post("/v1/pipelines", json={**body, "sink": {**sink, "roll_seconds": 1}})
    assert created.status_code == 201, created.text
    assert files["directory"] == created.json()["sink"]["directory"]  # as stored: below the root

    def written() -> list[Path]:
        return sorted(directory.glob(f"dt=*/*.{file_format}"))

    def rows_written() -> int:
        if file_format == "parquet":
            return sum(pq.read_metadata(path).num_rows for path in written())
        return sum(len(path.read_text().splitlines()) for path in written())

    wait_until(lambda: rows_written() >= SAMPLES, DEADLINE_S, "the sink's files")
    if file_format == "parquet":
        tables = [pq.read_table(path) for path in written()]
        schema = tables[0].schema
        # Parquet's LIST type names a list's item "element", whatever Arrow's writer called it.
        assert [(f.name, str(f.type), f.nullable) for f in schema] == [
            (c["name"], c["type"].replace("list<item:", "list<element:"), c["nullable"])
            for c in files["columns"]
        ]
        rows = [row for table in tables for row in table.to_pylist()]
        assert msgspec.to_builtins(_by_place(rows)) == _by_place(preview["rows"])
    else:
        lines = [line for path in written() for line in path.read_text().splitlines()]
        assert sorted(lines) == sorted(preview["lines"])
    names = {str(path.relative_to(directory)) for path in written()}
    assert all(name.split("/")[0].startswith("dt=") for name in names)
