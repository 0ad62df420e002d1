"""What the pipeline feed tests share: a registry, a feed worker process, a record producer."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Producer
from fastavro import parse_schema, schemaless_writer

from inlet.kafka import producer_config
from inlet.records import HEADER_RECEIVED_AT, HEADER_REQUEST_ID, wire_frame
from inlet.settings import Settings
from tests.served_stack import committed_records

TOKEN = "inlet_admin_pipelines-test"
FIELDS: list[dict[str, Any]] = [
    {"name": "id", "type": "string"},
    {"name": "n", "type": "integer"},
    {"name": "total", "type": "decimal", "precision": 10, "scale": 2},
    {"name": "at", "type": "datetime"},
    {"name": "day", "type": "date"},
    {"name": "tags", "type": "array", "items": "string"},
    {
        "name": "customer",
        "type": "object",
        "fields": [
            {"name": "email", "type": "string"},
            {"name": "vip", "type": "boolean", "nullable": True},
        ],
    },
    {"name": "status", "type": "enum", "symbols": ["new", "paid"]},
    {"name": "ref", "type": "uuid"},
    {"name": "note", "type": "string", "nullable": True},
]
# Records cross midnight (UTC) after 5 s of "received-at": files land in two day directories.
BASE_TIME = datetime(2026, 3, 1, 23, 59, 55, tzinfo=UTC)


def wait_until(predicate: Callable[[], bool], timeout_s: float = 60.0, what: str = "it") -> None:
    """Poll ``predicate`` until true; fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.1)


def record(i: int) -> dict[str, Any]:
    """The i-th test record: every field type, deterministic."""
    return {
        "id": f"r{i:06d}",
        "n": i,
        "total": Decimal(i) / 100,
        "at": BASE_TIME + timedelta(milliseconds=i),
        "day": date(2026, 3, 1) + timedelta(days=i % 3),
        "tags": [f"t{i % 5}"] * (i % 3),
        "customer": {"email": f"c{i}@example.com", "vip": None if i % 2 else True},
        "status": "paid" if i % 2 else "new",
        "ref": uuid.UUID(int=i),
        "note": None if i % 4 else f"note {i}",
    }


@dataclass
class Registry:
    settings: Settings
    api: httpx.Client

    def create_connector(self, fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        name = f"feed-{uuid.uuid4().hex[:8]}"
        created = self.api.post("/v1/connectors", json={"name": name, "fields": fields or FIELDS})
        assert created.status_code == 201, created.text
        result: dict[str, Any] = created.json()
        return result

    def create_pipeline(self, connector: dict[str, Any], sink: dict[str, Any]) -> dict[str, Any]:
        name = f"pipe-{uuid.uuid4().hex[:8]}"
        body = {"name": name, "connector_id": connector["id"], "sink": sink}
        created = self.api.post("/v1/pipelines", json=body)
        assert created.status_code == 201, created.text
        result: dict[str, Any] = created.json()
        return result

    def schema(self, schema_id: int) -> Any:
        found = self.api.get(f"/schemas/ids/{schema_id}")
        assert found.status_code == 200, found.text
        return parse_schema(json.loads(found.json()["schema"]))


class RecordProducer:
    """Produces wire-format records straight to a connector topic, as the gateway would: each
    ``send`` in a Kafka transaction (``INLET_GATEWAY_TRANSACTIONS``), so that the feeds read a
    topic whose commit markers take offsets."""

    def __init__(self, settings: Settings, topic: str, schema_id: int, schema: Any) -> None:
        transactional = {"transactional.id": f"test-producer-{uuid.uuid4().hex}"}
        config = producer_config(settings, client_id="test-producer", **transactional)
        self._producer = Producer(config)
        self._producer.init_transactions(30)
        self._topic = topic
        self._schema_id = schema_id
        self._schema = schema
        self.sent = 0

    def encode(self, value: dict[str, Any]) -> bytes:
        body = io.BytesIO()
        schemaless_writer(body, self._schema, value)
        return wire_frame(self._schema_id, body.getvalue())

    def send(self, values: list[dict[str, Any]]) -> None:
        """``values`` in one transaction, committed."""
        self._producer.begin_transaction()
        for value in values:
            self._produce(self.encode(value), value["id"].encode(), value.get("at"))
        self._producer.commit_transaction(30)
        self.sent += len(values)

    def send_aborted(self, values: list[dict[str, Any]]) -> None:
        """``values`` written in a transaction that is then aborted: in the log, never to be
        read by a ``read_committed`` reader."""
        self._producer.begin_transaction()
        for value in values:
            self._produce(self.encode(value), value["id"].encode(), value.get("at"))
        assert self._producer.flush(30) == 0
        self._producer.abort_transaction(30)

    def send_raw(self, raw: bytes, key: bytes | None = None, at: datetime | None = None) -> None:
        """One record as given, in a transaction of its own."""
        self._producer.begin_transaction()
        self._produce(raw, key, at)
        self._producer.commit_transaction(30)
        self.sent += 1

    def _produce(self, raw: bytes, key: bytes | None, at: datetime | None) -> None:
        received = int((at or datetime.now(UTC)).timestamp() * 1000)
        headers: list[tuple[str, str | bytes | None]] = [
            (HEADER_RECEIVED_AT, str(received)),
            (HEADER_REQUEST_ID, uuid.uuid4().hex),
        ]
        self._producer.produce(self._topic, raw, key, headers=headers)

    def send_in_background(
        self, count: int, chunk: int = 250, pause_s: float = 0.02, *, first: int = 0
    ) -> threading.Thread:
        """Send records first..count-1 in chunks with short pauses, so a feed sees a stream."""

        def run() -> None:
            for start in range(first, count, chunk):
                self.send([record(i) for i in range(start, min(count, start + chunk))])
                time.sleep(pause_s)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


def topic_contents(settings: Settings, topic: str) -> dict[tuple[int, int], bytes | None]:
    """Every record of ``topic`` a ``read_committed`` reader sees now: (partition, offset) ->
    value."""
    return {
        (m.partition() or 0, m.offset() or 0): m.value() for m in committed_records(settings, topic)
    }


class FeedWorker:
    """``python -m consumers.main pipelines`` as a real process (so SIGKILL is real); ``workers``
    names others to run in it too (``samples``)."""

    def __init__(
        self, settings: Settings, log_path: Path, workers: tuple[str, ...] = ("pipelines",)
    ) -> None:
        self._workers = list(workers)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("INLET_")}
        self.env.update(
            {
                "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
                "INLET_DATA_DIR": settings.data_dir,
                "INLET_FILES_ROOT": settings.files_root_dir,
                "INLET_LOG_LEVEL": "INFO",
            }
        )
        if settings.sink_hosts is not None:
            self.env["INLET_SINK_HOSTS"] = settings.sink_hosts
        self._log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self._log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "consumers.main", *self._workers],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def log_tail(self) -> str:
        return self._log_path.read_text(errors="replace")[-5000:]

    def log_tail_all(self) -> str:
        return self._log_path.read_text(errors="replace")


def running_worker(settings: Settings, log_path: Path) -> Iterator[FeedWorker]:
    worker = FeedWorker(settings, log_path)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
