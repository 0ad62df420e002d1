"""Pipelines that cannot deliver say so, on real Kafka and real PostgreSQL: a wrong password, a
path the feed cannot write, a table refusing every row, a DSN pointing at something that is not
PostgreSQL. Each says ``failing`` (or ``retrying``) with a safe reason, never ``running``; none
shows a password or the far end's words; each recovers once the cause is fixed."""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from inlet.settings import Settings
from registry.app import create_app
from tests.conftest import postgres_unavailable
from tests.integration._pipelines_helpers import (
    TOKEN,
    FeedWorker,
    RecordProducer,
    Registry,
    record,
    running_worker,
    wait_until,
)
from tests.postgres import PASSWORD_ROLE
from tests.servers import serve

pytestmark = pytest.mark.kafka
worker = contextlib.contextmanager(running_worker)

# libpq reads all of it as the password, "#" and "?" included (the unmasked forms).
WRONG_PASSWORD = "wr#ng?pw-7f3a"
BANNER = "SSH-2.0-OpenSSH_9.6 SECRET-BANNER-91c2"


@contextlib.contextmanager
def _registry(settings: Settings, tmp_path: Path, **overrides: Any) -> Iterator[Registry]:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    settings = Settings(
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
        data_dir=str(tmp_path / "data"),
        files_root=str(root),
        admin_token=TOKEN,
        topic_partitions=1,
        **overrides,
    )
    with serve(create_app(settings)) as url:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as api:
            yield Registry(settings, api)


@pytest.fixture
def registry(settings: Settings, tmp_path: Path) -> Iterator[Registry]:
    with _registry(settings, tmp_path) as registry:
        yield registry


@pytest.fixture
def database(postgres_dsn: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield make_conninfo(postgres_dsn, dbname=name)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _view(registry: Registry, pipeline_id: str) -> dict[str, Any]:
    found = registry.api.get(f"/v1/pipelines/{pipeline_id}")
    assert found.status_code == 200, found.text
    view: dict[str, Any] = found.json()
    return view


def _wait_status(registry: Registry, pipeline_id: str, status: str, says: str = "") -> None:
    def reached() -> bool:
        view = _view(registry, pipeline_id)
        message = (view["last_error"] or {}).get("message", "")
        return bool(view["status"] == status and says in message)

    wait_until(reached, timeout_s=120, what=f"{pipeline_id} to be {status} ({says!r})")


def _producer(registry: Registry, connector: dict[str, Any]) -> RecordProducer:
    schema = registry.schema(connector["schema_id"])
    return RecordProducer(registry.settings, connector["topic"], connector["schema_id"], schema)


def _delivered(registry: Registry, pipeline_id: str) -> int:
    return int(_view(registry, pipeline_id)["records_delivered"])


def test_a_wrong_password_says_failing_and_is_never_shown(
    registry: Registry, database: str, tmp_path: Path
) -> None:
    params = conninfo_to_dict(database)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "DROP ROLE IF EXISTS {}; CREATE ROLE {} LOGIN PASSWORD 'right' SUPERUSER"
            ).format(sql.Identifier(PASSWORD_ROLE), sql.Identifier(PASSWORD_ROLE))
        )
    where = f"{params['host']}:{params['port']}/{params['dbname']}"
    dsn = f"postgresql://{PASSWORD_ROLE}:{WRONG_PASSWORD}@{where}"
    try:
        psycopg.connect(dsn, connect_timeout=10).close()
    except psycopg.OperationalError:
        pass
    else:
        postgres_unavailable(f"the server does not check {PASSWORD_ROLE}'s password")
    connector = registry.create_connector()
    created = registry.create_pipeline(connector, {"type": "postgres", "dsn": dsn})
    pipeline_id = created["id"]
    log_path = tmp_path / "worker.log"
    secrets = [WRONG_PASSWORD, "wr#ng", "ng?pw"]

    def shown() -> str:
        answers = [
            msgspec.json.encode(created).decode(),
            registry.api.get("/v1/pipelines").text,
            registry.api.get(f"/v1/pipelines/{pipeline_id}").text,
        ]
        return "\n".join([*answers, log_path.read_text(errors="replace")])

    with worker(registry.settings, log_path):
        _wait_status(registry, pipeline_id, "failing", "authentication failed")
        assert all(secret not in shown() for secret in secrets)

        # The password is fixed where it is checked: the feed, still retrying, recovers.
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(PASSWORD_ROLE), sql.Literal(WRONG_PASSWORD)
                )
            )
        _producer(registry, connector).send([record(i) for i in range(3)])
        wait_until(lambda: _delivered(registry, pipeline_id) == 3, timeout_s=120, what="3 rows")
        _wait_status(registry, pipeline_id, "running")
    assert all(secret not in shown() for secret in secrets)


def test_files_pipelines_that_cannot_write_say_failing(registry: Registry, tmp_path: Path) -> None:
    root = Path(registry.settings.files_root_dir)
    (root / "blocked").write_text("a file where the pipeline wants a directory")
    connector = registry.create_connector()
    blocked = registry.create_pipeline(connector, {"type": "files", "directory": "blocked/orders"})
    # Fine when made; then a symlink out of the root appears where it writes.
    later = registry.create_pipeline(connector, {"type": "files", "directory": "later/orders"})
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "later").symlink_to(outside)
    with worker(registry.settings, tmp_path / "worker.log"):
        _wait_status(registry, blocked["id"], "failing", "Not a directory")
        _wait_status(registry, later["id"], "failing", "files root")
        assert not (outside / "orders").exists()

        (root / "blocked").unlink()
        _wait_status(registry, blocked["id"], "running")
        assert (root / "blocked" / "orders").is_dir()


def test_a_table_refusing_every_row_says_failing(
    registry: Registry, database: str, tmp_path: Path
) -> None:
    connector = registry.create_connector()
    pipeline = registry.create_pipeline(connector, {"type": "postgres", "dsn": database})
    producer = _producer(registry, connector)
    with worker(registry.settings, tmp_path / "worker.log"):
        producer.send([record(0)])
        wait_until(lambda: _delivered(registry, pipeline["id"]) == 1, timeout_s=120, what="a row")
        table = sql.Identifier(pipeline["sink"]["table"])
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT never CHECK (n < 0) NOT VALID").format(table)
            )
        producer.send([record(i) for i in range(1, 61)])
        _wait_status(registry, pipeline["id"], "failing", "refused each of the last")
        assert "23514" in _view(registry, pipeline["id"])["last_error"]["message"]

        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT never").format(table))
        producer.send([record(61)])
        _wait_status(registry, pipeline["id"], "running")
        assert _delivered(registry, pipeline["id"]) == 2


@pytest.fixture
def banner_port() -> Iterator[int]:
    """A TCP server that is not PostgreSQL: it greets every connection with a banner."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve_banners() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(f"{BANNER}\r\n".encode())

    thread = threading.Thread(target=serve_banners, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(10)
    server.close()


def test_a_dsn_is_no_port_probe(
    settings: Settings, tmp_path: Path, banner_port: int, database: str
) -> None:
    with _registry(settings, tmp_path, sink_hosts="127.0.0.1, db.internal") as registry:
        connector = registry.create_connector()
        refused = registry.api.post(
            "/v1/pipelines",
            json={
                "name": "probe",
                "connector_id": connector["id"],
                "sink": {"type": "postgres", "dsn": "postgresql://u:x@192.0.2.1:22/db"},
            },
        )
        assert refused.status_code == 422, refused.text
        assert [p["field"] for p in refused.json()["problems"]] == ["sink.dsn"]

        banner = registry.create_pipeline(
            connector, {"type": "postgres", "dsn": f"host=127.0.0.1 port={banner_port} dbname=x"}
        )
        # Bound, never listening: connections are refused, and no server can take the port.
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        nothing = registry.create_pipeline(
            connector,
            {"type": "postgres", "dsn": f"host=127.0.0.1 port={closed.getsockname()[1]} dbname=x"},
        )
        with closed, worker(registry.settings, tmp_path / "worker.log"):
            _wait_status(registry, banner["id"], "failing", "does not speak PostgreSQL")
            _wait_status(registry, nothing["id"], "retrying", "connection refused")
            first = _view(registry, nothing["id"])["last_error"]["at"]
            wait_until(
                lambda: _view(registry, nothing["id"])["last_error"]["at"] != first,
                timeout_s=120,
                what="another attempt",
            )
            assert BANNER not in registry.api.get("/v1/pipelines").text
            assert "SECRET-BANNER" not in registry.api.get("/v1/pipelines").text

        # Consumers held to a stricter list than the registry's refuse at connect.
        allowed = registry.create_pipeline(connector, {"type": "postgres", "dsn": database})
        strict = msgspec.structs.replace(registry.settings, sink_hosts="db.internal")
        strict_worker = FeedWorker(strict, tmp_path / "strict.log")
        strict_worker.start()
        try:
            _wait_status(registry, allowed["id"], "failing", "INLET_SINK_HOSTS")
        finally:
            strict_worker.stop()
