"""``bench/peers_bench.py`` works: Inlet beside a REST-proxy-style peer, on the session's Kafka.

The peer is a tiny endpoint made here (``RestProxy``): ``POST /topics/{topic}`` in the Confluent
REST proxy's v2 format, Avro values (a schema registered by its text, named by its id after that)
and string keys, each request's records produced to Kafka and answered once acknowledged. The
bench runs as a user runs it, shortened (1.5 s runs, one round); what is checked is that it drove
both servers with no error, that the records it counted are on each topic, and that the peer's
records are the bench's own, decoded from Kafka. The load generator's body building has its own
tests in Go (``bench/loadgen/body_test.go``), run here too.
"""

from __future__ import annotations

import asyncio
import importlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka import Consumer

from inlet.kafka import AsyncProducer, OutgoingRecord, client_config, producer_config
from inlet.settings import Settings
from tests.conftest import IN_CI
from tests.servers import serve

pytestmark = [pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
JSON_V2 = "application/vnd.kafka.json.v2+json"
AVRO_V2 = "application/vnd.kafka.avro.v2+json"


def _go() -> str:
    go = shutil.which("go") or next(
        (p for p in ("/usr/local/go/bin/go", "/usr/lib/go/bin/go") if Path(p).exists()), None
    )
    if go is None:
        message = "the load generator is built with Go (1.25+): install it"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return go


class RestProxy:
    """``POST /topics/{topic}`` as Confluent's REST proxy v2 takes it, writing to Kafka."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer: AsyncProducer | None = None
        self.schemas: dict[int, Any] = {}  # id -> parsed schema
        self._ids: dict[str, int] = {}  # schema text -> id
        self.requests = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            if self._producer is not None:
                await asyncio.to_thread(self._producer.close)
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, answer = await self._answer(scope, body)
        headers = [(b"content-type", b"application/vnd.kafka.v2+json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(answer).encode()})

    async def _answer(self, scope: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        path: str = scope["path"]
        if scope["method"] != "POST" or not path.startswith("/topics/"):
            return 404, {"error_code": 404, "message": "HTTP 404 Not Found"}
        topic = path.removeprefix("/topics/")
        content_type = dict(scope["headers"]).get(b"content-type", b"").decode()
        request = json.loads(body)
        ids: dict[str, int | None] = {"key_schema_id": None, "value_schema_id": None}
        try:
            if content_type == JSON_V2:
                records = [
                    OutgoingRecord(
                        topic,
                        json.dumps(r["value"]).encode(),
                        None if "key" not in r else json.dumps(r["key"]).encode(),
                    )
                    for r in request["records"]
                ]
            elif content_type == AVRO_V2:
                ids["key_schema_id"] = key_id = self._schema_id(request, "key")
                value_id = self._schema_id(request, "value")
                if value_id is None:
                    raise ValueError("value_schema or value_schema_id is required")
                ids["value_schema_id"] = value_id
                records = [
                    OutgoingRecord(
                        topic,
                        self._avro(value_id, r["value"]),
                        None if key_id is None else self._avro(key_id, r["key"]),
                    )
                    for r in request["records"]
                ]
            else:
                return 415, {"error_code": 415, "message": f"HTTP 415 {content_type}"}
        except (KeyError, ValueError, TypeError) as exc:
            return 422, {"error_code": 42201, "message": str(exc)}
        if self._producer is None:
            self._producer = AsyncProducer(
                producer_config(self._settings, client_id="test-rest-proxy")
            )
        await self._producer.produce_batch(records)
        self.requests += 1
        offsets = [{"partition": None, "offset": None} for _ in records]
        return 200, {"offsets": offsets, **ids}

    def _schema_id(self, request: dict[str, Any], side: str) -> int | None:
        if f"{side}_schema_id" in request:
            schema_id = int(request[f"{side}_schema_id"])
            if schema_id not in self.schemas:
                raise ValueError(f"no schema {schema_id}")
            return schema_id
        text = request.get(f"{side}_schema")
        if text is None:
            return None
        if text not in self._ids:
            self._ids[text] = len(self._ids) + 1
            self.schemas[self._ids[text]] = fastavro.parse_schema(json.loads(text))
        return self._ids[text]

    def _avro(self, schema_id: int, value: Any) -> bytes:
        """Avro's JSON encoding (a union's value named by its branch) to the Confluent frame."""
        schema = self.schemas[schema_id]
        if isinstance(schema, dict) and schema.get("type") == "record":
            unions = {f["name"] for f in schema["fields"] if isinstance(f["type"], list)}
            value = {
                k: next(iter(v.values())) if k in unions and isinstance(v, dict) else v
                for k, v in value.items()
            }
        out = io.BytesIO()
        out.write(struct.pack(">bI", 0, schema_id))
        fastavro.schemaless_writer(out, schema, value)
        return out.getvalue()


def _read_topic(settings: Settings, topic: str, count: int) -> list[tuple[bytes, bytes]]:
    consumer = Consumer(
        client_config(
            settings,
            client_id="test-peers-reader",
            **{"group.id": f"test-peers-{topic}", "auto.offset.reset": "earliest"},
        )
    )
    consumer.subscribe([topic])
    found: list[tuple[bytes, bytes]] = []
    try:
        for _ in range(600):  # a deadline of 5 minutes' polls, ended by the count
            if len(found) >= count:
                break
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                found.append((message.key() or b"", message.value() or b""))
    finally:
        consumer.close()
    return found


def _bench_record(index: int) -> dict[str, Any]:
    """The gateway bench's record ``index`` (``bench/`` is scripts, not a package)."""
    sys.path.insert(0, str(BENCH))
    try:
        bench = importlib.import_module("gateway_bench")
    finally:
        sys.path.remove(str(BENCH))
    record: dict[str, Any] = bench.record(index)
    return record


def test_loadgen_body_building() -> None:
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local", "GOPROXY": "off"}
    done = subprocess.run(
        [_go(), "test", "./..."],
        cwd=BENCH / "loadgen",
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.kafka
def test_peers_bench_drives_inlet_and_a_rest_proxy(
    settings: Settings, kafka_bootstrap: str, tmp_path: Path
) -> None:
    _go()
    proxy = RestProxy(settings)
    out = tmp_path / "peers.json"
    env = {
        **os.environ,
        "TMPDIR": str(tmp_path),  # the bench's work dir, the services' data dirs
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    with serve(proxy) as url:
        done = subprocess.run(
            [
                sys.executable,
                str(BENCH / "peers_bench.py"),
                f"--bootstrap={kafka_bootstrap}",
                f"--peer-url={url}",
                "--peer-format=avro",
                f"--peer-pid={os.getpid()}",  # the proxy serves in this process
                "--batch=50",
                "--batch-connections=2",
                "--single-connections=4",
                "--duration=1.5",
                "--warmup=0.5",
                "--warm=0",
                "--rounds=1",
                "--quiet-wait=0",
                f"--out={out}",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())

    runs = {(row["scenario"], row["server"]): row for row in report["runs"]}
    assert set(runs) == {(s, server) for s in ("batch", "single") for server in ("inlet", "peer")}
    for row in runs.values():
        assert row["requests"] > 0, row
        assert row["errors"] == 0, row
        assert row["records_on_topic"] >= row["records"], row
        assert row["server_cpu_us_per_record"] is not None
    assert runs["batch", "peer"]["records_per_request"] == 50
    assert "peer" in report["summary"]["batch"]
    assert "single records" in done.stdout

    # The peer's records are the bench's records, keyed by their id, under the schema it primed.
    peer = report["peer"]
    assert peer["value_schema_id"] is not None
    assert peer["key_schema_id"] is not None
    value_schema = proxy.schemas[peer["value_schema_id"]]
    key_schema = proxy.schemas[peer["key_schema_id"]]
    sent = {r["id"]: r for r in map(_bench_record, range(50))}
    found = _read_topic(settings, peer["topic"], 60)
    assert len(found) >= 60
    for key, value in found:
        record_id = fastavro.schemaless_reader(io.BytesIO(key[5:]), key_schema)
        decoded = fastavro.schemaless_reader(io.BytesIO(value[5:]), value_schema)
        assert decoded == sent[record_id]
        assert struct.unpack(">bI", value[:5]) == (0, peer["value_schema_id"])
