"""Inlet beside another HTTP→Kafka endpoint: the same records, the same load generator, one broker.

Run: ``make bench-peers PEERS_ARGS="--peer-url http://127.0.0.1:8082 ..."`` (or
``uv run python bench/peers_bench.py ...``); how to start a peer is in ``bench/README.md``.

It starts Inlet's registry and gateway (as shipped, ``bench/gateway_bench.py``'s ``services``) on
a local broker it starts (or on ``--bootstrap``'s), creates a connector of the gateway bench's
record shape, and drives it with ``bench/loadgen``: batches of ``--batch`` records as one JSON
array per request, and single records, closed loop. Given ``--peer-url``, an endpoint in the
Confluent REST proxy's v2 style (``POST /topics/{topic}``: the Strimzi Kafka Bridge, Karapace's REST
proxy, Confluent's), it sends the same records there in turn, in that format (``--peer-format``:
``application/vnd.kafka.json.v2+json``, or ``…avro.v2+json`` with the value schema registered by the
first request and named by its id after that), keyed by the same field, to a topic of its own with
as many partitions as the connector's. Rounds alternate Inlet and the peer, so the shared machine's
noise falls on both.

Printed side by side: records/s, requests/s, latency p50/p99 (loadgen, to the whole answer), the
server's CPU per record from /proc (Inlet's gateway process tree; the peer's with ``--peer-pid``),
the broker's and the machine's other CPU, and the records each topic gained (a 2xx that left no
record on Kafka would show). The report goes to ``bench/results/peers-latest.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from gateway_bench import (
    Scenario,
    Watch,
    _http,
    build_loadgen,
    create_connector,
    machine,
    record,
    run_load,
    services,
)

from deploy.broker import LocalKafka, env_cache_dir
from inlet.kafka import client_config
from inlet.process import stderr_to
from inlet.settings import Settings

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
KEY_FIELD = "id"
JSON_V2 = "application/vnd.kafka.json.v2+json"
AVRO_V2 = "application/vnd.kafka.avro.v2+json"
ACCEPT_V2 = "application/vnd.kafka.v2+json, application/json"

# The peer's value schema for the gateway bench's records: the JSON they are sent as, typed (the
# peer converts nothing; Inlet turns `at` into timestamp-micros, `amount` into a decimal and `id`
# into a uuid, and validates every field).
PEER_AVRO_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "BenchRecord",
    "namespace": "inlet.bench",
    "fields": [
        {"name": "name", "type": "string"},
        {"name": "count", "type": "long"},
        {"name": "ratio", "type": "double"},
        {"name": "paid", "type": "boolean"},
        {"name": "at", "type": "string"},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "amount", "type": "string"},
        {"name": "id", "type": "string"},
    ],
}
PEER_KEY_SCHEMA = '"string"'


@dataclass(frozen=True)
class Peer:
    url: str  # base URL: records go to {url}/topics/{topic}
    format: str  # "json" or "avro"
    topic: str
    pid: int | None
    value_schema_id: int | None = None  # avro: as the peer's registry answered
    key_schema_id: int | None = None

    @property
    def topic_url(self) -> str:
        return f"{self.url.rstrip('/')}/topics/{self.topic}"


def avro_json(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` in Avro's JSON encoding for ``PEER_AVRO_SCHEMA``: a union's non-null value is
    named by its branch (``{"string": "ok"}``), as Confluent's REST proxy (and Karapace's, which
    follows it) read Avro values."""
    unions = {f["name"] for f in PEER_AVRO_SCHEMA["fields"] if isinstance(f["type"], list)}
    return {
        name: {"string": value} if name in unions and value is not None else value
        for name, value in record.items()
    }


def write_bodies(work: Path, batch: int) -> dict[str, str]:
    """The records files (the gateway bench's records), for Inlet and in Avro's JSON encoding;
    the load generator wraps the peer's in the REST proxy's body itself."""
    records = [record(i) for i in range(batch)]
    files = {
        "batch": records,
        "single": records[0],  # an object, as a webhook is
        "batch.avro": [avro_json(r) for r in records],
        "single.avro": avro_json(records[0]),
    }
    names = {}
    for name, content in files.items():
        names[name] = f"{name}.json"
        (work / names[name]).write_bytes(msgspec.json.encode(content))
    (work / "value-schema.avsc").write_text(json.dumps(PEER_AVRO_SCHEMA))
    (work / "key-schema.avsc").write_text(PEER_KEY_SCHEMA)
    return names


def scenarios(args: argparse.Namespace, peer: Peer | None) -> list[tuple[str, Scenario, str]]:
    """(server, scenario, URL) for each run of one round: each load on Inlet, then the peer."""
    bodies = {"batch": "batch.json", "single": "single.json"}
    loads = {
        "batch": (f"batches of {args.batch}", args.batch, args.batch_connections),
        "single": ("single records", 1, args.single_connections),
    }
    chosen = args.only.split(",") if args.only else list(loads)
    runs = []
    for name in chosen:
        title, per_request, connections = loads[name]
        inlet = Scenario(name, title, bodies[name], "application/json", per_request, connections)
        runs.append(("inlet", inlet, ""))
        if peer is None:
            continue
        flags = [f"-body-format=kafka-{peer.format}", f"-key-field={KEY_FIELD}"]
        body = bodies[name]
        if peer.format == "avro":
            body = body.replace(".json", ".avro.json")
            flags += (
                [f"-value-schema-id={peer.value_schema_id}"]
                if peer.value_schema_id
                else ["-value-schema=value-schema.avsc"]
            )
            flags += (
                [f"-key-schema-id={peer.key_schema_id}"]
                if peer.key_schema_id
                else ["-key-schema=key-schema.avsc"]
            )
        content_type = JSON_V2 if peer.format == "json" else AVRO_V2
        runs.append((
            "peer",
            Scenario(name, title, body, content_type, per_request, connections,
                     loadgen_args=tuple(flags)),
            peer.topic_url,
        ))  # fmt: skip
    return runs


# ---------------------------------------------------------------------------------------------
# Kafka: the peer's topic, and how many records a topic holds


def create_topic(settings: Settings, topic: str, partitions: int) -> None:
    admin = AdminClient(client_config(settings, client_id="inlet-bench-peers-admin"))
    future = admin.create_topics([NewTopic(topic, partitions, -1)], operation_timeout=30)[topic]
    future.result(60)


@contextmanager
def offsets_reader(settings: Settings) -> Iterator[Consumer]:
    consumer = Consumer(
        client_config(settings, client_id="inlet-bench-peers-offsets", **{"group.id": "unused"})
    )
    try:
        yield consumer
    finally:
        consumer.close()


def records_on(consumer: Consumer, topic: str) -> int:
    """The records ``topic`` holds: the sum of its partitions' high watermarks (nothing is ever
    compacted or deleted from it during a run)."""
    metadata = consumer.list_topics(topic, timeout=30).topics[topic]
    if metadata.error is not None:
        raise KafkaException(metadata.error)
    return sum(
        consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
        for p in metadata.partitions
    )


def prime_avro(peer: Peer, work: Path) -> Peer:
    """Send one record with the schemas' text: the peer registers them and answers their ids,
    which every request after names instead (as a REST proxy's client does)."""
    record = json.loads((work / "single.avro.json").read_bytes())
    body = {
        "key_schema": PEER_KEY_SCHEMA,
        "value_schema": json.dumps(PEER_AVRO_SCHEMA),
        "records": [{"key": record[KEY_FIELD], "value": record}],
    }
    status, answer = _http(
        "POST",
        peer.topic_url,
        json.dumps(body).encode(),
        {"Content-Type": AVRO_V2, "Accept": ACCEPT_V2},
    )
    if status != 200:
        raise SystemExit(f"the peer refused the first Avro record ({status}): {answer[:500]!r}")
    ids = json.loads(answer)
    return Peer(
        peer.url,
        peer.format,
        peer.topic,
        peer.pid,
        value_schema_id=ids.get("value_schema_id"),
        key_schema_id=ids.get("key_schema_id"),
    )


# ---------------------------------------------------------------------------------------------
# Report


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per scenario and server: the medians over the rounds."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        out.setdefault(row["scenario"], {}).setdefault(row["server"], []).append(row)

    def median(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return round(statistics.median(known), 1) if known else None

    summary: dict[str, dict[str, Any]] = {}
    for scenario, servers in out.items():
        summary[scenario] = {
            server: {
                "rounds": len(runs),
                "records_per_s": median([r["records_per_s"] for r in runs]),
                "requests_per_s": median([r["requests_per_s"] for r in runs]),
                "p50_ms": median([r["latency_ms"]["p50"] for r in runs]),
                "p99_ms": median([r["latency_ms"]["p99"] for r in runs]),
                "server_cpu_us_per_record": median([r["server_cpu_us_per_record"] for r in runs]),
            }
            for server, runs in servers.items()
        }
    return summary


def print_table(report: dict[str, Any]) -> None:
    print()
    header = (
        f"{'scenario':22s} {'server':6s} {'records/s':>10s} {'req/s':>8s} {'p50 ms':>7s}"
        f" {'p99 ms':>7s} {'errors':>6s} {'µs/rec':>7s} {'server':>6s} {'kafka':>6s}"
        f" {'other':>6s} {'on topic':>9s}"
    )
    print(header)
    print("-" * len(header))
    for row in report["runs"]:
        cpu = row["cpu_cores"]
        us = row["server_cpu_us_per_record"]
        server_cores = cpu["server"]
        mark = "" if row["records_on_topic"] >= row["records"] else "  MISSING"
        print(
            f"{row['title']:22s} {row['server']:6s} {row['records_per_s']:10,.0f}"
            f" {row['requests_per_s']:8,.0f} {row['latency_ms']['p50']:7.1f}"
            f" {row['latency_ms']['p99']:7.1f} {row['errors'] + row['missed']:6d}"
            f" {'?' if us is None else f'{us:.1f}':>7s}"
            f" {'?' if server_cores is None else f'{server_cores:.2f}':>6s}"
            f" {cpu['broker'] if report['broker_cpu_known'] else '?':>6}"
            f" {cpu['other']:6.2f} {row['records_on_topic']:9,d}{mark}"
        )
    print()
    for scenario, servers in report["summary"].items():
        inlet, peer = servers.get("inlet"), servers.get("peer")
        if inlet is None or peer is None:
            continue
        ratio = (inlet["records_per_s"] or 0) / max(peer["records_per_s"] or 0, 1)
        line = f"  {scenario}: Inlet {ratio:.2f} times the peer's records/s (medians)"
        if inlet["server_cpu_us_per_record"] and peer["server_cpu_us_per_record"]:
            line += (
                f", {inlet['server_cpu_us_per_record']:g} against"
                f" {peer['server_cpu_us_per_record']:g} server µs/record"
            )
        print(line)
    print("  load average before / after: {} / {}".format(*report["load_average"]))
    print()


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--peer-url", help="the peer's base URL (records go to /topics/{topic})")
    parser.add_argument("--peer-format", choices=["json", "avro"], default="json")
    parser.add_argument("--peer-pid", type=int, help="the peer's process (its tree's CPU counted)")
    parser.add_argument(
        "--peer-topic", help="the topic the peer writes to (default: one made here, new)"
    )
    parser.add_argument(
        "--bootstrap", help="use this Kafka (the peer's) instead of starting a local broker"
    )
    parser.add_argument(
        "--broker-pid", type=int, action="append", default=[], help="with --bootstrap: its JVM(s)"
    )
    parser.add_argument("--batch", type=int, default=500, help="records in a batch request")
    parser.add_argument("--batch-connections", type=int, default=8)
    parser.add_argument("--single-connections", type=int, default=64)
    parser.add_argument("--only", help="comma-separated: batch,single")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument(
        "--warm", type=float, default=10.0, help="seconds of unmeasured load on each server first"
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="runs of each, Inlet and peer in turn"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="seconds to wait, before each run, for other processes to leave the CPU (0: no)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "peers-latest.json")
    args = parser.parse_args(argv)
    if args.peer_pid is not None and args.peer_url is None:
        parser.error("--peer-pid needs --peer-url")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="inlet-peers-bench-"))
    bodies = write_bodies(work, args.batch)
    print("building bench/loadgen …", flush=True)
    loadgen = build_loadgen(work)
    broker = None
    if args.bootstrap is None:
        broker = LocalKafka(
            data_dir=None, cache_dir=env_cache_dir(), first_port=None, quiet=True, quick_start=False
        )
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "workload": {"records_file": bodies, "key_field": KEY_FIELD},
        "runs": [],
        # Without the broker's pids (--bootstrap alone) its CPU is in "other".
        "broker_cpu_known": args.bootstrap is None or bool(args.broker_pid),
    }
    try:
        if broker is not None:
            print("starting Kafka …", flush=True)
            with stderr_to(work / "kafka.log"):
                bootstrap = broker.start()
        else:
            bootstrap = args.bootstrap
        broker_pids = broker.pids() if broker is not None else args.broker_pid
        settings = Settings(kafka_bootstrap_servers=bootstrap, data_dir=str(work / "data"))
        with (
            services(bootstrap, work, "inlet", 1, fast_path=True) as stack,
            offsets_reader(settings) as offsets,
        ):
            connector = create_connector(stack)  # keyed by KEY_FIELD
            partitions = connector.get("partitions") or settings.topic_partitions
            peer = None
            if args.peer_url is not None:
                topic = args.peer_topic or f"bench-peer-{uuid.uuid4().hex[:8]}"
                if args.peer_topic is None:
                    create_topic(settings, topic, partitions)
                peer = Peer(args.peer_url, args.peer_format, topic, args.peer_pid)
                if peer.format == "avro":
                    peer = prime_avro(peer, work)
                report["peer"] = {
                    "url": peer.url,
                    "format": peer.format,
                    "topic": topic,
                    "value_schema_id": peer.value_schema_id,
                    "key_schema_id": peer.key_schema_id,
                }
            topics = {"inlet": connector["topic"], "peer": peer.topic if peer else ""}
            urls = {"inlet": connector["bench_ingest_url"], "peer": peer.topic_url if peer else ""}
            watches = {"inlet": Watch(stack.gateway.pid, broker_pids)}
            if peer is not None:
                # Without the peer's pid its CPU is only in "other" (the watch's own server, the
                # gateway, idles meanwhile and is not shown).
                watches["peer"] = Watch(peer.pid or stack.gateway.pid, broker_pids)
            runs = scenarios(args, peer)
            if args.warm > 0:
                print(f"warming up ({args.warm:g} s each) …", flush=True)
                for server, scenario, _ in runs[: 2 if peer else 1]:
                    run_load(loadgen, scenario, urls[server], work, args.warm, 0.0)
            report["load_average"] = [round(os.getloadavg()[0], 2)]
            for round_ in range(args.rounds):
                for server, scenario, _ in runs:
                    watch = watches[server]
                    if args.quiet_wait > 0:
                        watch.wait_quiet(args.quiet_wait)
                    print(f"round {round_ + 1}: {scenario.title} on {server} …", flush=True)
                    held = records_on(offsets, topics[server])
                    with watch.window() as usage:
                        load = run_load(
                            loadgen, scenario, urls[server], work, args.duration, args.warmup
                        )
                    usage["cpu_cores"]["loadgen"] = round(
                        load.pop("loadgen_cpu_s") / usage["wall_s"], 2
                    )
                    known = server == "inlet" or (peer is not None and peer.pid is not None)
                    cores = usage["cpu_cores"].pop("gateway")
                    usage["cpu_cores"]["server"] = cores if known else None
                    records_per_s = load["requests_per_s"] * scenario.records_per_request
                    report["runs"].append({
                        "round": round_ + 1,
                        "scenario": scenario.name,
                        "title": scenario.title,
                        "server": server,
                        **load,
                        "records": load["requests"] * scenario.records_per_request,
                        "records_per_s": round(records_per_s),
                        "server_cpu_us_per_record": (
                            round(cores / max(records_per_s, 1) * 1e6, 1) if known else None
                        ),
                        # Warm-up and late answers land too: at least the records counted.
                        "records_on_topic": records_on(offsets, topics[server]) - held,
                        **usage,
                    })  # fmt: skip
            report["load_average"].append(round(os.getloadavg()[0], 2))
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    report["summary"] = summarize(report["runs"])
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
