"""Latency of the schema registry's writes and reads, one request at a time, on a local broker.

Run: ``make bench`` (or ``uv run python bench/registry_bench.py [--requests N]``).

It starts an ephemeral local Kafka broker and ``inlet registry`` (as shipped), then sends each kind
of request ``--requests`` times over one kept-alive HTTP connection, one after the other (closed
loop, a single client: the latency of one request on an idle registry, not its throughput):

  writes: register a new schema (a new subject each time), register a schema the subject already
          has (answered without a write), set a subject's compatibility level, soft-delete a
          version, soft-delete a whole subject
  reads:  a schema by id, a subject's latest version, a lookup (``POST /subjects/{s}``), the global
          compatibility level

and the CPU the broker uses idle, alone and then with the registry connected, and the registry's
own (what an idle state reader costs: nothing should poll the broker in a tight loop). It prints
a table (p50, p99, max in ms, against the targets: a write ≤ 50 ms p99, a read ≤ 5 ms p99), the
machine's load average and the CPU the rest of the machine used meanwhile (a busy neighbour slows
every number), and writes the report as JSON to ``bench/results/registry-latest.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gateway_bench import _cpu_s, _system_busy_s, _wait_healthy, machine, process_tree

from deploy.broker import LocalKafka, env_cache_dir
from inlet.process import listening_socket, stderr_to

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
ADMIN_TOKEN = "inlet_admin_bench-" + uuid.uuid4().hex[:12]
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
WRITE_TARGET_MS, READ_TARGET_MS = 50.0, 5.0


class Registry:
    """One kept-alive connection to the registry, timing each request."""

    def __init__(self, port: int) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self._headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": CONTENT_TYPE}

    def call(self, method: str, path: str, body: object = None) -> tuple[float, Any]:
        """(milliseconds, decoded answer); anything but a 200 stops the benchmark."""
        data = None if body is None else json.dumps(body).encode()
        started = time.perf_counter()
        self._connection.request(method, path, body=data, headers=self._headers)
        response = self._connection.getresponse()
        answer = response.read()
        elapsed_ms = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise SystemExit(f"{method} {path}: {response.status} {answer[:300]!r}")
        return elapsed_ms, json.loads(answer)

    def close(self) -> None:
        self._connection.close()


def _schema(name: str) -> str:
    fields = [{"name": "id", "type": "string"}, {"name": "count", "type": "long"}]
    return json.dumps({"type": "record", "name": name, "fields": fields})


def _summary(latencies_ms: list[float], target_ms: float) -> dict[str, Any]:
    ordered = sorted(latencies_ms)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "requests": len(ordered),
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(p99, 2),
        "max_ms": round(ordered[-1], 2),
        "target_p99_ms": target_ms,
        "within_target": p99 <= target_ms,
    }


def measure(registry: Registry, count: int, run: str) -> dict[str, dict[str, Any]]:
    subjects = [f"bench-{run}-{i}" for i in range(count)]
    schemas = [_schema(f"Bench{i}") for i in range(count)]
    timings: dict[str, list[float]] = {}

    def _body(i: int) -> dict[str, str]:
        return {"schema": schemas[i]}

    def each(name: str, calls: Callable[[int], tuple[str, str, object]]) -> None:
        timings[name] = [registry.call(*calls(i))[0] for i in range(count)]

    # Writes.
    each("register (new)", lambda i: ("POST", f"/subjects/{subjects[i]}/versions", _body(i)))
    ids = [registry.call("GET", f"/subjects/{s}/versions/1")[1]["id"] for s in subjects]
    each("register (existing)", lambda i: ("POST", f"/subjects/{subjects[i]}/versions", _body(i)))
    each("set config", lambda i: ("PUT", f"/config/{subjects[i]}", {"compatibility": "FULL"}))
    # Reads (before the deletes below take the versions away).
    each("get schema by id", lambda i: ("GET", f"/schemas/ids/{ids[i]}", None))
    each("get latest version", lambda i: ("GET", f"/subjects/{subjects[i]}/versions/latest", None))
    each("lookup schema", lambda i: ("POST", f"/subjects/{subjects[i]}", _body(i)))
    each("get global config", lambda _: ("GET", "/config", None))
    each("delete version", lambda i: ("DELETE", f"/subjects/{subjects[i]}/versions/1", None))
    # A subject's soft delete needs a live version: subjects of their own, registered untimed.
    doomed = [f"{subject}-whole" for subject in subjects]
    for i, subject in enumerate(doomed):
        registry.call("POST", f"/subjects/{subject}/versions", _body(i))
    each("delete subject", lambda i: ("DELETE", f"/subjects/{doomed[i]}", None))

    reads = {"get schema by id", "get latest version", "lookup schema", "get global config"}
    return {
        name: _summary(values, READ_TARGET_MS if name in reads else WRITE_TARGET_MS)
        for name, values in timings.items()
    }


def idle_cpu(registry_pid: int, broker_pids: list[int], seconds: float) -> dict[str, float]:
    """Cores the registry (its process tree) and the broker use while nothing is asked of them."""
    ours = process_tree(registry_pid)
    before = (_cpu_s(ours), _cpu_s(broker_pids), _system_busy_s(), time.monotonic())
    time.sleep(seconds)
    after = (_cpu_s(ours), _cpu_s(broker_pids), _system_busy_s(), time.monotonic())
    wall = after[3] - before[3]
    registry, broker, busy = ((a - b) / wall for a, b in zip(after[:3], before[:3], strict=True))
    return {
        "registry": round(registry, 4),
        "broker": round(broker, 4),
        "other": round(max(0.0, busy - registry - broker), 2),
    }


@contextmanager
def registry_process(bootstrap: str, work: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    listening = listening_socket()  # handed to the registry: no port to pick and re-bind
    port = listening.getsockname()[1]
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "INLET_ADMIN_TOKEN": ADMIN_TOKEN,
        "INLET_REGISTRY_PORT": str(port),
        "INLET_REGISTRY_LISTEN_FD": str(listening.fileno()),
        "INLET_DATA_DIR": str(work / "data"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    log = work / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "deploy.cli", "registry"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            pass_fds=[listening.fileno()],
        )
    listening.close()  # the registry holds it now
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/health", process, log)
        yield process, port
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def print_table(report: dict[str, Any]) -> None:
    print()
    header = f"{'request':24s} {'p50 ms':>8s} {'p99 ms':>8s} {'max ms':>8s} {'target':>8s}"
    print(header)
    print("-" * len(header))
    for name, row in report["latency"].items():
        mark = "" if row["within_target"] else "  over"
        print(
            f"{name:24s} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} {row['max_ms']:8.2f}"
            f" {row['target_p99_ms']:8.0f}{mark}"
        )
    idle, alone = report["idle_cpu_cores"], report["idle_cpu_cores_broker_alone"]
    print(
        f"\nidle: registry {idle['registry']:.4f} cores, broker {idle['broker']:.4f} cores"
        f" (others used {idle['other']:.2f}); the broker alone {alone['broker']:.4f}"
        f" (others used {alone['other']:.2f})"
    )
    print("load average before / after: {} / {}".format(*report["load_average"]))
    print(f"the bench took {report['bench_wall_s']:g} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=300, help="requests of each kind")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle CPU measured")
    args = parser.parse_args()
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="inlet-registry-bench-"))
    broker = LocalKafka(
        data_dir=None, cache_dir=env_cache_dir(), first_port=None, quiet=True, quick_start=False
    )
    try:
        print("starting Kafka …", flush=True)
        with stderr_to(work / "kafka.log"):
            bootstrap = broker.start()
        print(f"idle CPU of the broker alone ({args.idle:g} s) …", flush=True)
        alone = idle_cpu(os.getpid(), broker.pids(), args.idle)
        del alone["registry"]  # not started yet: that was this script
        with registry_process(bootstrap, work) as (process, port):
            registry = Registry(port)
            try:
                # A fresh JVM compiles its hot paths for a while: warm up before measuring.
                print("warming up …", flush=True)
                measure(registry, 50, "warm")
                load_before = os.getloadavg()[0]
                print(f"measuring ({args.requests} requests of each kind) …", flush=True)
                latency = measure(registry, args.requests, uuid.uuid4().hex[:8])
                load_after = os.getloadavg()[0]
            finally:
                registry.close()
            print(f"idle CPU ({args.idle:g} s) …", flush=True)
            idle = idle_cpu(process.pid, broker.pids(), args.idle)
    finally:
        broker.stop()
    report = {
        "machine": machine(),
        "load_average": [round(load_before, 2), round(load_after, 2)],
        "latency": latency,
        "idle_cpu_cores": idle,
        "idle_cpu_cores_broker_alone": alone,
        "bench_wall_s": round(time.monotonic() - started, 1),
    }
    print_table(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "registry-latest.json").write_text(json.dumps(report, indent=2) + "\n")
    print("results: bench/results/registry-latest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
