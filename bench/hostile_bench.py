"""What one hostile body costs everyone else: single-record latency while it is processed.

Run: ``uv run python bench/hostile_bench.py [--duration 10] [--only ndjson-mixed,gzip-bomb]
[--source DIR] [--json FILE]`` (about a minute; never part of ``make test``). It starts an
ephemeral local Kafka broker, ``inlet registry`` and ``inlet gateway`` with ONE worker process (so
that the big body and the probes share one event loop), then, per scenario, sends one worst-case
body after another on
one connection while a second connection sends single-record requests one after another (closed
loop). It prints the probes' latency (p50, p99, max), the big bodies' own time and status, and the
gateway's RSS (peak while the scenario ran, and after it, idle). ``idle`` is the probes alone.

``--source DIR`` runs the services from another checkout of Inlet (its ``deploy.cli``), e.g. an
older commit, to compare; the load is the same.

Scenarios (10 MiB bodies, the default ``INLET_MAX_BODY_BYTES``; 100,000 the default records cap):

  ndjson-valid    100,000 valid NDJSON records of ~100 bytes: all encoded and produced
  ndjson-mixed    the same, every other record invalid: all examined, half to the rejected topic
  all-invalid     100,000 invalid records: 422, the listed errors looked for, the rest counted
  json-tiny       a JSON array of 5M zeros (10 MiB): 413 at the records cap
  gzip-bomb       14.6 KB of gzip inflating to 1.25M NDJSON lines: 413 at the records cap
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from deploy.broker import LocalKafka, env_cache_dir
from inlet.process import spare_ports, stderr_to

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "inlet_admin_hostile-" + uuid.uuid4().hex[:12]
FIELDS = [
    {"name": "id", "type": "string"},
    {"name": "n", "type": "integer"},
    {"name": "tags", "type": "array", "items": "string"},
    {"name": "note", "type": "string", "nullable": True},
]
RECORDS = 100_000


def _record(i: int, *, valid: bool = True) -> bytes:
    n = str(i) if valid else '"not a number"'
    line = f'{{"id":"r-{i:07d}","n":{n},"tags":["a","b"],"note":"'
    return (line + "x" * max(0, 98 - len(line)) + '"}').encode()


def bodies() -> dict[str, tuple[bytes, dict[str, str]]]:
    ndjson = {"content-type": "application/x-ndjson"}
    return {
        "ndjson-valid": (b"\n".join(_record(i) for i in range(RECORDS)), ndjson),
        "ndjson-mixed": (
            b"\n".join(_record(i, valid=i % 2 == 0) for i in range(RECORDS)),
            ndjson,
        ),
        "all-invalid": (b"\n".join(_record(i, valid=False) for i in range(RECORDS)), ndjson),
        "json-tiny": (
            b"[" + b",".join([b"0"] * 5_000_000) + b"]",
            {"content-type": "application/json"},
        ),
        "gzip-bomb": (
            gzip.compress(b'{"a":1}\n' * 1_250_000, 9),
            {**ndjson, "content-encoding": "gzip"},
        ),
    }


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        todo += [int(child) for child in children]
    return found


def _rss_mb(pid: int) -> float:
    total = 0
    for member in _tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


@contextmanager
def services(bootstrap: str, work: Path, source: Path) -> Iterator[tuple[str, str, int]]:
    # Bound by the services themselves (--source may be a checkout that takes no handed socket):
    # outside the ephemeral range, so no outgoing connection can take one before they do.
    registry_port, gateway_port = spare_ports(2)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "INLET_ADMIN_TOKEN": TOKEN,
        "INLET_REGISTRY_PORT": str(registry_port),
        "INLET_GATEWAY_PORT": str(gateway_port),
        "INLET_GATEWAY_WORKERS": "1",
        "INLET_TOPIC_PARTITIONS": "1",
        "INLET_LOG_LEVEL": "WARNING",
        "INLET_DATA_DIR": str(work / "data"),
        "PYTHONPATH": str(source),
    }
    processes = []
    try:
        for name in ("registry", "gateway"):
            with (work / f"{name}.log").open("wb") as out:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "deploy.cli", name],
                        env=env,
                        cwd=source,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        urls = (f"http://127.0.0.1:{registry_port}", f"http://127.0.0.1:{gateway_port}")
        for url, process in zip(urls, processes, strict=True):
            deadline = time.monotonic() + 120
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"{url} did not start; see {work}")
                try:
                    if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        yield urls[0], urls[1], processes[1].pid
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def run_scenario(
    url: str, body: tuple[bytes, dict[str, str]] | None, duration_s: float, rss: Callable[[], float]
) -> dict[str, Any]:
    stop = threading.Event()
    big: list[tuple[float, int]] = []
    peak = [rss()]

    def send_big() -> None:
        assert body is not None
        with httpx.Client(timeout=300) as client:
            while not stop.is_set():
                started = time.perf_counter()
                status = client.post(url, content=body[0], headers=body[1]).status_code
                big.append((time.perf_counter() - started, status))

    def sample() -> None:
        while not stop.wait(0.05):
            peak[0] = max(peak[0], rss())

    threads = [threading.Thread(target=sample)]
    if body is not None:
        threads.append(threading.Thread(target=send_big))
    for thread in threads:
        thread.start()
    latencies: list[float] = []
    statuses: set[int] = set()
    one = {"id": "probe", "n": 1, "tags": [], "note": None}
    with httpx.Client(timeout=60) as probe:
        probe.post(url, json=one)  # the connection open before the clock starts
        if body is not None:
            while not big and threads[1].is_alive():  # until the first big body was answered
                time.sleep(0.01)
        deadline = time.monotonic() + duration_s
        while time.monotonic() < deadline:
            started = time.perf_counter()
            statuses.add(probe.post(url, json=one).status_code)
            latencies.append(time.perf_counter() - started)
    stop.set()
    for thread in threads:
        thread.join()
    time.sleep(2)  # then the RSS the process kept
    ms = [latency * 1000 for latency in latencies]
    return {
        "probes": len(ms),
        "probe_statuses": sorted(statuses),
        "p50_ms": round(_percentile(ms, 0.5), 2),
        "p99_ms": round(_percentile(ms, 0.99), 2),
        "max_ms": round(max(ms), 2),
        "big_bodies": len(big),
        "big_statuses": sorted({status for _, status in big}),
        "big_mean_s": round(statistics.fmean(t for t, _ in big), 3) if big else None,
        "rss_peak_mb": round(peak[0], 1),
        "rss_after_mb": round(rss(), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--source", type=Path, default=ROOT, help="the Inlet checkout to run")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    scenarios: dict[str, tuple[bytes, dict[str, str]] | None] = {"idle": None, **bodies()}
    if args.only:
        scenarios = {name: scenarios[name] for name in args.only.split(",")}
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="inlet-hostile-") as tmp:
        work = Path(tmp)
        broker = LocalKafka(data_dir=None, cache_dir=env_cache_dir(), first_port=None, quiet=True)
        with stderr_to(work / "kafka.log"):
            bootstrap = broker.start()
        try:
            with services(bootstrap, work, args.source.resolve()) as (registry, _gateway, pid):
                created = httpx.post(
                    f"{registry}/v1/connectors",
                    json={"name": f"hostile-{uuid.uuid4().hex[:6]}", "fields": FIELDS},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                    timeout=60,
                )
                created.raise_for_status()
                url = created.json()["ingest_url"]
                while httpx.post(url, json=[], timeout=30).status_code == 404:
                    time.sleep(0.1)
                print(
                    f"{'scenario':<13} {'probes':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
                    f"{'big':>4} {'big s':>6} {'status':>8} {'RSS peak':>9} {'after':>7}"
                )
                for name, body in scenarios.items():
                    found = run_scenario(url, body, args.duration, lambda: _rss_mb(pid))
                    results[name] = found
                    print(
                        f"{name:<13} {found['probes']:>6} {found['p50_ms']:>8} "
                        f"{found['p99_ms']:>8} {found['max_ms']:>8} {found['big_bodies']:>4} "
                        f"{found['big_mean_s'] or '-':>6} "
                        f"{','.join(map(str, found['big_statuses'])) or '-':>8} "
                        f"{found['rss_peak_mb']:>9} {found['rss_after_mb']:>7}",
                        flush=True,
                    )
        finally:
            broker.stop()
    if args.json is not None:
        args.json.write_text(json.dumps({"source": str(args.source), "scenarios": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
