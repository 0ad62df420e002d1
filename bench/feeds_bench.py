"""Feed throughput: records/s from a connector topic into PostgreSQL and into Parquet, with lag.

Run: ``uv run python bench/feeds_bench.py [--records N] [--rate R] [--seconds S]
[--sinks postgres,parquet]``. Needs Kafka
(``KAFKA_BOOTSTRAP_SERVERS``, else a local broker from the Maven jars) and PostgreSQL (``--dsn``,
else a throwaway server from the installed binaries, as the tests make). Records are about 200
bytes of Avro (string, integer, decimal, datetime, date, array, object, enum, uuid, nullable
string) on a 3-partition topic, the registry runs in-process, and the feeds run as
``run_pipelines`` runs them in ``inlet consumers``.

For each sink, two phases:
  backlog   N records already on the topic; records/s until the sink holds them all (the
            feed's start-up, until the first record is delivered, is shown apart), and the CPU
            µs per record it took (/proc): this process (the feed's thread, nearly all of it)
            and, for PostgreSQL, the server's processes
  live      R records/s produced for S seconds; the lag (records produced but not yet in the
            sink) sampled every 0.25 s: p50, p99, max (also in seconds of records at R/s), and
            the time to drain after the last one
The baseline, measured in the same run on the same topic: a consumer that reads and decodes
every record and delivers nowhere (what no sink can beat), a batch at a time with the C reader as
the feeds do, and one record at a time with fastavro as they did, interleaved; with CPU µs a
record of the thread that decodes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
from _cpu import cpu_s, postmaster_of, tree_cpu_s
from confluent_kafka import Consumer, Producer, TopicPartition
from fastavro import parse_schema, schemaless_reader, schemaless_writer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/ is no installed package
from consumers.pipeline_worker import run_pipelines
from deploy.broker import LocalKafka, env_cache_dir
from inlet.codec.wire import WireDecoder
from inlet.kafka import client_config, producer_config
from inlet.records import HEADER_RECEIVED_AT, wire_frame
from inlet.settings import Settings
from inlet.sink_layout.file_names import parse_file_name
from registry.app import create_app
from tests.postgres import LocalPostgres, postgres_bindir
from tests.servers import serve

TOKEN = "inlet_admin_feeds-bench"
FIELDS: list[dict[str, Any]] = [
    {"name": "id", "type": "string"},
    {"name": "n", "type": "integer"},
    {"name": "total", "type": "decimal", "precision": 12, "scale": 2},
    {"name": "at", "type": "datetime"},
    {"name": "day", "type": "date"},
    {"name": "tags", "type": "array", "items": "string"},
    {"name": "customer", "type": "object", "fields": [{"name": "email", "type": "string"}]},
    {"name": "status", "type": "enum", "symbols": ["new", "paid", "shipped"]},
    {"name": "ref", "type": "uuid"},
    {"name": "note", "type": "string", "nullable": True},
]
START = datetime(2026, 1, 1, tzinfo=UTC)


def _value(i: int) -> dict[str, Any]:
    return {
        "id": f"order-{i:09d}",
        "n": i,
        "total": Decimal(i % 100_000) / 100,
        "at": START + timedelta(milliseconds=i),
        "day": date(2026, 1, 1) + timedelta(days=i % 30),
        "tags": ["web", "promo"][: i % 3],
        "customer": {"email": f"customer{i % 5000}@example.com"},
        "status": ("new", "paid", "shipped")[i % 3],
        "ref": uuid.UUID(int=i),
        "note": None if i % 4 else "leave at the door",
    }


class Topic:
    """A connector's topic and a fast producer of its records."""

    def __init__(self, settings: Settings, connector: dict[str, Any], schema_text: str) -> None:
        self.name: str = connector["topic"]
        self.schema_text = schema_text
        self._schema_id: int = connector["schema_id"]
        self._schema = parse_schema(json.loads(schema_text))
        self._producer = Producer(producer_config(settings, client_id="bench-producer"))
        self.produced = 0

    def produce(self, start: int, count: int) -> None:
        now = str(int(time.time() * 1000))
        for i in range(start, start + count):
            body = io.BytesIO()
            schemaless_writer(body, self._schema, _value(i))
            value = wire_frame(self._schema_id, body.getvalue())
            while True:
                try:
                    self._producer.produce(
                        self.name, value, str(i).encode(), headers=[(HEADER_RECEIVED_AT, now)]
                    )
                    break
                except BufferError:
                    self._producer.poll(0.05)
            self.produced += 1
        self._producer.flush(60)


@contextlib.contextmanager
def local_kafka() -> Iterator[str]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    broker = LocalKafka(data_dir=None, cache_dir=env_cache_dir(), first_port=None, quiet=True)
    try:
        yield broker.start()
    finally:
        broker.stop()


@contextlib.contextmanager
def postgres_database(dsn: str | None) -> Iterator[tuple[str, int]]:
    """A database to write into, and its server's postmaster (for its CPU: a local server)."""
    if dsn:
        yield dsn, postmaster_of(dsn)
        return
    bindir = postgres_bindir()
    if bindir is None:
        raise SystemExit("no PostgreSQL: pass --dsn or install it (scripts/ensure-postgres)")
    server = LocalPostgres(bindir)
    try:
        dsn = server.start()
        assert server.pid is not None
        yield dsn, server.pid
    finally:
        server.stop()


@contextlib.contextmanager
def _feeds(settings: Settings) -> Iterator[None]:
    """``run_pipelines`` in a thread of its own, as ``inlet consumers`` runs it."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(
        target=lambda: loop.run_until_complete(run_pipelines(settings, stop)), daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(120)


def _wait(progress: Callable[[], int], target: int, timeout_s: float = 600.0) -> float:
    """Seconds until ``progress()`` reaches ``target``."""
    started = time.monotonic()
    while progress() < target:
        if time.monotonic() - started > timeout_s:
            raise SystemExit(f"stuck at {progress()} of {target}")
        time.sleep(0.05)
    return time.monotonic() - started


def _baseline(settings: Settings, topic: Topic, count: int, *, batch: bool) -> tuple[float, float]:
    """Read and decode ``count`` records, deliver nowhere: records/s and CPU µs a record (this
    thread's, librdkafka's fetching threads apart). ``batch``: a consumed batch at a time, as
    the feeds decode (``decode_typed_batch``); else one record at a time with fastavro, as they
    did."""
    consumer = Consumer(
        client_config(
            settings, client_id="bench-baseline", **{"group.id": f"bench-{uuid.uuid4().hex}"}
        )
    )
    partitions = consumer.list_topics(topic.name, timeout=10).topics[topic.name].partitions
    consumer.assign([TopicPartition(topic.name, p, 0) for p in partitions])
    decoder = WireDecoder(lambda _: topic.schema_text)
    parsed = parse_schema(json.loads(topic.schema_text))
    seen = 0
    started, cpu = time.monotonic(), time.thread_time()
    while seen < count:
        messages = [m for m in consumer.consume(5000, 1.0) if m.error() is None]
        values = [m.value() for m in messages]
        if batch:
            decoder.decode_typed_batch(values)
        else:
            for value in values:
                assert value is not None
                schemaless_reader(io.BytesIO(value[5:]), parsed, None)
        seen += len(values)
    elapsed, cpu = time.monotonic() - started, time.thread_time() - cpu
    consumer.close()
    return count / elapsed, cpu / count * 1e6


def _postgres_progress(dsn: str, pipeline_id: str) -> Callable[[], int]:
    conn = psycopg.connect(dsn, autocommit=True)

    def delivered() -> int:
        try:
            row = conn.execute(
                "SELECT coalesce(sum(delivered), 0) FROM inlet_pipeline_offsets "
                "WHERE pipeline_id = %s",
                (pipeline_id,),
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
        return int(row[0]) if row else 0

    return delivered


def _files_progress(directory: Path) -> Callable[[], int]:
    def delivered() -> int:
        total = 0
        for path in directory.glob("dt=*/*.parquet"):
            found = parse_file_name(path.name, "parquet")
            if found is not None:
                total += found.last - found.first + 1  # no gaps: the bench's producer is plain
        return total

    return delivered


def _run_phases(
    name: str,
    topic: Topic,
    progress: Callable[[], int],
    backlog: int,
    rate: int,
    seconds: float,
    server: int | None = None,
) -> None:
    # The feed's start (group join, table or directory set-up) is timed apart from the drain.
    startup = _wait(progress, 1)
    first = progress()
    own, served = cpu_s(os.getpid()), tree_cpu_s(server) if server else 0.0
    drain = _wait(progress, backlog)
    drained = backlog - first
    own_us = (cpu_s(os.getpid()) - own) / drained * 1e6
    cpu = f"CPU µs/record: feed {own_us:.1f}"
    if server:
        cpu += f", PostgreSQL {(tree_cpu_s(server) - served) / drained * 1e6:.1f}"
    print(
        f"{name:<10} backlog  {drained / drain:>10,.0f} records/s "
        f"({backlog:,} records; first delivered {startup:.2f} s after the pipeline was made; "
        f"{cpu})"
    )
    lags: list[int] = []
    start_at = topic.produced
    total = int(rate * seconds)
    step = max(1, rate // 20)
    started = time.monotonic()
    sent = 0
    while sent < total:
        due = int((time.monotonic() - started) * rate)
        if due > sent:
            batch = min(due - sent, step, total - sent)
            topic.produce(start_at + sent, batch)
            sent += batch
        lags.append(topic.produced - progress())
        time.sleep(0.25 if due <= sent else 0)
    catch_up = _wait(progress, topic.produced)
    lags.sort()
    p50 = lags[len(lags) // 2]
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
    print(
        f"{name:<10} live     {rate:>10,} records/s for {seconds:.0f} s: lag p50 {p50:,}, "
        f"p99 {p99:,} ({p99 / rate:.2f} s), max {lags[-1]:,} records; "
        f"drained {catch_up:.2f} s after the last"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="backlog per sink")
    parser.add_argument("--rate", type=int, default=20_000, help="live phase records/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="live phase length")
    parser.add_argument("--dsn", help="a PostgreSQL database to write into (default: throwaway)")
    parser.add_argument(
        "--sinks", default="postgres,parquet", help="which sinks to run (comma-separated)"
    )
    args = parser.parse_args()
    sinks = set(args.sinks.split(","))

    database = (
        postgres_database(args.dsn) if "postgres" in sinks else contextlib.nullcontext(("", None))
    )
    with (
        local_kafka() as bootstrap,
        database as (dsn, postmaster),
        tempfile.TemporaryDirectory(prefix="inlet-bench-") as scratch,
    ):
        settings = Settings(
            kafka_bootstrap_servers=bootstrap,
            data_dir=scratch,
            files_root=scratch,  # the Parquet pipeline writes below it
            admin_token=TOKEN,
            topic_partitions=3,
        )
        with (
            serve(create_app(settings)) as url,
            httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
            ) as api,
        ):

            def connector(kind: str) -> tuple[str, Topic]:
                body = {"name": f"bench-{kind}-{uuid.uuid4().hex[:6]}", "fields": FIELDS}
                made = api.post("/v1/connectors", json=body).json()
                text = api.get(f"/schemas/ids/{made['schema_id']}").json()["schema"]
                return made["id"], Topic(settings, made, text)

            def pipeline(connector_id: str, sink: dict[str, Any]) -> str:
                body = {"name": f"bench-{uuid.uuid4().hex[:6]}", "connector_id": connector_id}
                made = api.post("/v1/pipelines", json={**body, "sink": sink})
                assert made.status_code == 201, made.text
                return str(made.json()["id"])

            _, baseline_topic = connector("baseline")
            baseline_topic.produce(0, args.records)
            # Interleaved, twice each: the machine's load changes less between neighbours.
            for batch in (False, True, False, True):
                rate, cpu = _baseline(settings, baseline_topic, args.records, batch=batch)
                how = "C reader, by batch" if batch else "fastavro, by record"
                print(
                    f"{'baseline':<10} backlog  {rate:>10,.0f} records/s, {cpu:5.2f} µs CPU a "
                    f"record (read + decode, no sink: {how})"
                )

            with _feeds(settings):
                if "postgres" in sinks:
                    connector_id, topic = connector("postgres")
                    topic.produce(0, args.records)
                    pipeline_id = pipeline(connector_id, {"type": "postgres", "dsn": dsn})
                    progress = _postgres_progress(dsn, pipeline_id)
                    phases = (args.records, args.rate, args.seconds, postmaster)
                    _run_phases("postgres", topic, progress, *phases)
                if "parquet" not in sinks:
                    return

                connector_id, topic = connector("parquet")
                topic.produce(0, args.records)
                directory = Path(scratch) / "lake"
                # Rolled every second: only complete files count as delivered.
                sink = {"type": "files", "directory": str(directory), "roll_seconds": 1}
                pipeline(connector_id, sink)
                progress = _files_progress(directory)
                _run_phases("parquet", topic, progress, args.records, args.rate, args.seconds)


if __name__ == "__main__":
    main()
