"""End-to-end benchmark of the gateway: HTTP in, Avro on Kafka out, answered after the acks.

Run: ``make bench`` (or ``uv run python bench/gateway_bench.py [--quick] [--server ...]``).

It starts everything itself on this machine, loopback only: an ephemeral local Kafka broker, the
registry and the gateway (``inlet registry`` / ``inlet gateway``, as shipped; ``--server`` runs the
same app under uvicorn or granian with N workers, to compare), creates a connector (string,
integer, float, boolean, datetime, nullable string, decimal, uuid; keyed by the uuid), and drives
it with ``bench/loadgen`` (Go, built here with ``go build``):

  (a) 500-record JSON arrays, closed loop
  (b) 1,000-line NDJSON bodies, closed loop
  (c) single-record POSTs at high concurrency, closed loop
  (c') the same, to a connector with ``verify`` (``stripe``), each request signed by the load
       generator as it sends it: what signature verification costs, beside (c) in the same run
  (d) single records, open loop at a fixed rate, latency from each request's scheduled time

``--transactions both`` starts a second gateway with ``INLET_GATEWAY_TRANSACTIONS=true`` beside the
first and runs each scenario on the two in turn (``--rounds`` times each, interleaved, so that the
shared machine's noise falls on both), and reports what the transactions cost.

then, in the same run, the ceiling: the same records pre-encoded and produced straight with
confluent-kafka with the gateway's producer settings (``bench/_baseline.py``). It prints a table
(records/s, requests/s, latency percentiles, CPU of each process, the gateway's peak RSS from
/proc) and writes it as JSON to ``bench/results/latest.json``; ``--save`` also keeps a dated copy
``bench/results/<date>-<machine>.json`` meant to be committed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from _profile import breakdown

from deploy.broker import LocalKafka, env_cache_dir
from inlet.process import spare_ports, stderr_to

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
ADMIN_TOKEN = "inlet_admin_bench-" + uuid.uuid4().hex[:12]
STRIPE_SECRET = "whsec_bench" + uuid.uuid4().hex

FIELDS: list[dict[str, Any]] = [
    {"name": "name", "type": "string"},
    {"name": "count", "type": "integer"},
    {"name": "ratio", "type": "float"},
    {"name": "paid", "type": "boolean"},
    {"name": "at", "type": "datetime"},
    {"name": "note", "type": "string", "nullable": True},
    {"name": "amount", "type": "decimal", "precision": 12, "scale": 2},
    {"name": "id", "type": "uuid"},
]

# The targets, on a 2-core machine that also runs the broker.
TARGETS = {
    "array_records_per_s": 150_000,
    "single_requests_per_s": 5_000,
    "open_p99_ms": 25.0,
    "rss_mb": 300,
}
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    body: str  # a file name in the work dir
    content_type: str
    records_per_request: int
    connections: int
    rate: float = 0.0  # > 0: open loop
    signed: bool = False  # to the stripe-verified connector, each request signed by loadgen
    # A header the load generator sets to a new value on every request (an idempotency key).
    unique_header: str = ""
    # More of the load generator's flags (bench/peers_bench.py: a REST proxy's body format).
    loadgen_args: tuple[str, ...] = ()


def record(index: int) -> dict[str, Any]:
    # About 150 bytes of JSON; deterministic, so every run sends the same bodies.
    return {
        "name": f"customer-{index:06d}",
        "count": (index * 7919) % 100_000,
        "ratio": round((index * 0.618) % 1, 3),
        "paid": index % 2 == 0,
        "at": f"2026-05-01T12:{index % 60:02d}:{(index * 7) % 60:02d}Z",
        "note": None if index % 3 else "ok",
        "amount": f"{(index * 37) % 100000}.{index % 100:02d}",
        "id": str(uuid.UUID(int=(index * 2654435761) % 2**128, version=4)),
    }


def write_bodies(work: Path) -> dict[str, int]:
    records = [record(i) for i in range(1000)]
    (work / "array500.json").write_bytes(msgspec.json.encode(records[:500]))
    (work / "ndjson1000.ndjson").write_bytes(b"\n".join(map(msgspec.json.encode, records)))
    (work / "single.json").write_bytes(msgspec.json.encode(records[0]))
    sizes = [len(msgspec.json.encode(r)) for r in records]
    return {"record_bytes_mean": round(sum(sizes) / len(sizes))}


# ---------------------------------------------------------------------------------------------
# Processes: CPU and memory read from /proc


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def process_tree(pid: int) -> list[int]:
    children = _children_map()
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _threads_cpu_s(pids: list[int]) -> dict[str, float]:
    """CPU seconds by thread name (librdkafka's are rdk:main, rdk:broker…) over ``pids``."""
    by_name: dict[str, float] = {}
    for pid in pids:
        try:
            tasks = [entry.name for entry in Path(f"/proc/{pid}/task").iterdir()]
        except OSError:
            continue
        for tid in tasks:
            try:
                comm = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
                stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            name = "main" if tid == str(pid) else re.sub(r"\d+$", "", comm)
            by_name[name] = by_name.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / _TICK
    return by_name


def _cpu_s(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / _TICK


@dataclass
class Watch:
    """Samples the gateway's RSS (the sum over its process tree) while a scenario runs."""

    gateway_pid: int
    broker_pids: list[int]
    interval_s: float = 0.1
    peak_rss_kb: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def wait_quiet(self, max_wait_s: float, threshold: float = 0.25) -> float:
        """Wait (up to ``max_wait_s``) until the rest of the machine uses under ``threshold``
        cores, the shared machine's neighbours being the largest noise; returns the last load."""
        deadline = time.monotonic() + max_wait_s
        while True:
            ours = process_tree(self.gateway_pid) + self.broker_pids
            busy, mine, started = _system_busy_s(), _cpu_s(ours), time.monotonic()
            time.sleep(1.0)
            wall = time.monotonic() - started
            other = (_system_busy_s() - busy - (_cpu_s(ours) - mine)) / wall
            if other < threshold or time.monotonic() > deadline:
                return round(max(other, 0.0), 2)
            print(f"  the machine is busy ({other:.2f} cores used by others); waiting …")
            time.sleep(2.0)

    def _run(self) -> None:
        tree = process_tree(self.gateway_pid)
        refreshed = time.monotonic()
        while not self._stop.wait(self.interval_s):
            if time.monotonic() - refreshed > 2:
                tree, refreshed = process_tree(self.gateway_pid), time.monotonic()
            rss = sum(_status_kb(pid, "VmRSS:") for pid in tree)
            self.peak_rss_kb = max(self.peak_rss_kb, rss)

    @contextmanager
    def window(self) -> Iterator[dict[str, Any]]:
        """CPU seconds of gateway, broker and load generator (as cores), and the peak RSS."""
        tree = process_tree(self.gateway_pid)
        self.peak_rss_kb = sum(_status_kb(pid, "VmRSS:") for pid in tree)
        self._stop.clear()
        sampler = threading.Thread(target=self._run, daemon=True)
        threads_before = _threads_cpu_s(tree)
        before = (
            _cpu_s(tree),
            _cpu_s(self.broker_pids),
            _children_cpu_s(),
            time.monotonic(),
            _system_busy_s(),
        )
        sampler.start()
        out: dict[str, Any] = {}
        try:
            yield out
        finally:
            self._stop.set()
            sampler.join()
            after = (
                _cpu_s(tree),
                _cpu_s(self.broker_pids),
                _children_cpu_s(),
                time.monotonic(),
                _system_busy_s(),
            )
            wall = after[3] - before[3]
            threads_after = _threads_cpu_s(tree)
            out["gateway_threads_cpu_cores"] = {
                name: round((spent - threads_before.get(name, 0.0)) / wall, 3)
                for name, spent in sorted(threads_after.items(), key=lambda kv: -kv[1])
                if spent - threads_before.get(name, 0.0) > 0.005 * wall
            }
            used = [(a - b) / wall for a, b in zip(after, before, strict=True)]
            gateway, broker, loadgen, _, machine = used
            out["cpu_cores"] = {
                "gateway": round(gateway, 2),
                "broker": round(broker, 2),
                "loadgen": round(loadgen, 2),
                # Everything else this machine ran meanwhile (the registry, other jobs): a busy
                # neighbour makes the numbers of this run lower than the code deserves.
                "other": round(max(0.0, machine - gateway - broker - loadgen), 2),
            }
            out["wall_s"] = wall
            out["gateway_rss_peak_mb"] = round(self.peak_rss_kb / 1024, 1)
            out["gateway_processes"] = len(tree)


def _system_busy_s() -> float:
    """CPU seconds every core spent busy since boot (/proc/stat), for the machine's load."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICK


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------------------------------------
# The services


def _http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise SystemExit(f"{url}: the process exited ({process.returncode}):\n{tail}")
        try:
            if _http("GET", url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} not healthy after 90 s")


def _gateway_command(server: str, workers: int, port: int, root: Path = ROOT) -> list[str]:
    """The gateway of the checkout at ``root`` (this one, or ``--against``'s), with its Python."""
    python = sys.executable if root == ROOT else str(root / ".venv" / "bin" / "python")
    if server == "inlet":
        return [python, "-m", "deploy.cli", "gateway"]
    script = str(root / "bench" / "_serve_gateway.py")
    return [python, script, server, "--port", str(port), "--workers", str(workers)]


@dataclass
class Stack:
    registry_url: str
    gateway_url: str
    gateway: subprocess.Popen[bytes]
    registry: subprocess.Popen[bytes]
    # With --transactions both, the gateway with INLET_GATEWAY_TRANSACTIONS=true; with --against,
    # the gateway of another checkout: each scenario runs on both in turn.
    second_url: str | None = None
    second: subprocess.Popen[bytes] | None = None
    second_label: str = ""  # what the second one's runs are called: "+transactions", "+against"


@contextmanager
def services(
    bootstrap: str,
    work: Path,
    server: str,
    workers: int,
    *,
    fast_path: bool,
    transactions: str = "off",
    against: Path | None = None,
) -> Iterator[Stack]:
    # Bound by the servers themselves (the other servers compared take a --port): outside the
    # ephemeral range, so no outgoing connection can take one before they do.
    registry_port, gateway_port, second_port = spare_ports(3)
    env = {
        **os.environ,
        "INLET_GATEWAY_FAST_PATH": str(fast_path).lower(),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "INLET_ADMIN_TOKEN": ADMIN_TOKEN,
        "INLET_REGISTRY_PORT": str(registry_port),
        "INLET_GATEWAY_PORT": str(gateway_port),
        "INLET_DATA_DIR": str(work / "data"),
        "INLET_GATEWAY_TRANSACTIONS": str(transactions == "on").lower(),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        logs = {name: work / f"{name}.log" for name in ("registry", "gateway")}
        with logs["registry"].open("wb") as out:
            registry = subprocess.Popen(
                [sys.executable, "-m", "deploy.cli", "registry"],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        processes.append(registry)
        with logs["gateway"].open("wb") as out:
            gateway = subprocess.Popen(
                _gateway_command(server, workers, gateway_port),
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        processes.append(gateway)
        registry_url = f"http://127.0.0.1:{registry_port}"
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        _wait_healthy(f"{registry_url}/health", registry, logs["registry"])
        _wait_healthy(f"{gateway_url}/health", gateway, logs["gateway"])
        stack = Stack(registry_url, gateway_url, gateway, registry)
        if transactions == "both" or against is not None:
            root = against or ROOT
            stack.second_label = "+transactions" if against is None else "+against"
            log = work / f"gateway{stack.second_label.replace('+', '-')}.log"
            second_env = {**env, "INLET_GATEWAY_PORT": str(second_port)}
            if against is None:
                second_env["INLET_GATEWAY_TRANSACTIONS"] = "true"
            else:
                second_env["PYTHONPATH"] = os.pathsep.join(
                    filter(None, [str(root), os.environ.get("PYTHONPATH")])
                )
            with log.open("wb") as out:
                stack.second = subprocess.Popen(
                    _gateway_command(server, workers, second_port, root),
                    env=second_env,
                    cwd=root,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            processes.append(stack.second)
            stack.second_url = f"http://127.0.0.1:{second_port}"
            _wait_healthy(f"{stack.second_url}/health", stack.second, log)
        yield stack
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


_DEDUP_HEADER = "webhook-id"


def create_connector(stack: Stack, *, signed: bool = False, **settings: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"bench-{uuid.uuid4().hex[:8]}",
        "fields": FIELDS,
        "key_field": "id",
        **settings,
    }
    if signed:
        body["verify"] = {"scheme": "stripe", "secrets": [STRIPE_SECRET]}
    status, answer = _http(
        "POST",
        f"{stack.registry_url}/v1/connectors",
        json.dumps(body).encode(),
        {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
    )
    if status != 201:
        raise SystemExit(f"creating the connector failed ({status}): {answer[:500]!r}")
    connector: dict[str, Any] = json.loads(answer)
    ingest_url = f"{stack.gateway_url}/v1/ingest/{connector['token']}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the gateway's fold has it
        probe = _http("POST", ingest_url, b"[]", {"Content-Type": "application/json"})[0]
        if probe != 404:
            break
        time.sleep(0.1)
    else:
        raise SystemExit("the gateway never learned of the connector")
    connector["bench_ingest_url"] = ingest_url
    if stack.second_url is not None:
        connector["second_ingest_url"] = ingest_url.replace(stack.gateway_url, stack.second_url)
        _wait_known(connector["second_ingest_url"])
    return connector


def _wait_known(ingest_url: str) -> None:
    deadline = time.monotonic() + 30
    while _http("POST", ingest_url, b"[]", {"Content-Type": "application/json"})[0] == 404:
        if time.monotonic() > deadline:
            raise SystemExit("the gateway never learned of the connector")
        time.sleep(0.1)


_BUCKET = re.compile(r'^inlet_produce_latency_seconds_bucket\{le="([^"]+)"\} (\S+)$', re.MULTILINE)


def produce_histogram(gateway_url: str) -> dict[float, float]:
    """The gateway's own histogram of "records handed to the producer -> all acked" (cumulative
    counts by upper bound, seconds): ``inlet gateway`` sums its workers' (multiprocess metrics);
    another server's launcher (uvicorn/granian with several workers) answers with one worker's."""
    try:
        _, text = _http("GET", f"{gateway_url}/metrics")
    except OSError:
        return {}
    return {float(le): float(count) for le, count in _BUCKET.findall(text.decode())}


def produce_quantiles(before: dict[float, float], after: dict[float, float]) -> dict[str, Any]:
    """Upper bounds (ms) of the buckets holding p50 and p99 of the requests in between."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    if any(count < 0 for count in counts) or total <= 0:
        return {"requests": 0, "p50_le_ms": None, "p99_le_ms": None}
    out: dict[str, Any] = {"requests": int(total)}
    for name, q in (("p50_le_ms", 0.5), ("p99_le_ms", 0.99)):
        bound = next((b for b, c in zip(bounds, counts, strict=True) if c >= q * total), None)
        out[name] = None if bound is None or total == 0 else round(bound * 1000, 1)
    return out


# ---------------------------------------------------------------------------------------------
# Load


def build_loadgen(out_dir: Path) -> Path:
    go = shutil.which("go") or next(
        (p for p in ("/usr/local/go/bin/go", "/usr/lib/go/bin/go") if Path(p).exists()), None
    )
    if go is None:
        raise SystemExit("the load generator is built with Go (1.22+): install it, then retry")
    binary = out_dir / "loadgen"
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local", "GOPROXY": "off"}
    subprocess.run(
        [go, "build", "-trimpath", "-o", str(binary), "."],
        cwd=HERE / "loadgen",
        env=env,
        check=True,
    )
    return binary


def run_load(
    loadgen: Path,
    scenario: Scenario,
    url: str,
    work: Path,
    duration_s: float,
    warmup_s: float,
    profile: Path | None = None,
    gateway_pid: int = 0,
) -> dict[str, Any]:
    command = [
        str(loadgen),
        f"-url={url}",
        f"-body={work / scenario.body}",
        f"-content-type={scenario.content_type}",
        f"-connections={scenario.connections}",
        f"-duration={duration_s}s",
        f"-warmup={warmup_s}s",
    ]
    if scenario.rate:
        command.append(f"-rate={scenario.rate}")
    if scenario.signed:
        command.append(f"-stripe-secret={STRIPE_SECRET}")
    if scenario.unique_header:
        command.append(f"-unique-header={scenario.unique_header}")
    command.extend(scenario.loadgen_args)
    load = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    spy = None
    if profile is not None:
        time.sleep(warmup_s)
        spy = _start_profiler(profile, gateway_pid, duration_s - 1)
    assert load.stdout is not None
    stdout = load.stdout.read()
    # Reaped here, with its own resource usage: the load generator's CPU, py-spy's left out.
    _, status, usage = os.wait4(load.pid, 0)
    load.returncode = os.waitstatus_to_exitcode(status)
    load.stdout.close()
    if spy is not None:
        spy.wait()
    if load.returncode != 0:
        raise SystemExit(f"loadgen failed ({load.returncode})")
    result: dict[str, Any] = json.loads(stdout)
    result["loadgen_cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)
    return result


def _start_profiler(out: Path, pid: int, duration_s: float) -> subprocess.Popen[bytes]:
    """py-spy on the gateway (and its workers) while the scenario is measured."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--subprocesses", "--threads", "--nolineno",
         "--nonblocking", "--rate", "200", "--format", "raw", "--output", str(out),
         "--duration", str(max(1, int(duration_s)))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def run_baseline(bootstrap: str, topic: str, work: Path, schema_id: int, duration_s: float) -> Any:
    done = subprocess.run(
        [
            sys.executable,
            str(HERE / "_baseline.py"),
            f"--bootstrap={bootstrap}",
            f"--topic={topic}",
            f"--records={work / 'ndjson1000.ndjson'}",
            f"--fields={json.dumps(FIELDS)}",
            f"--schema-id={schema_id}",
            f"--duration={duration_s}",
        ],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# Report


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kb = _status_kb_meminfo()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def _status_kb_meminfo() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def machine_slug(info: dict[str, Any]) -> str:
    cpu = re.sub(r"\(.*?\)|cpu|processor|@.*", "", str(info["cpu"]), flags=re.IGNORECASE)
    words = re.findall(r"[a-z0-9]+", cpu.lower())[:3]
    return "-".join([f"{info['cores']}core", *words])


def print_table(report: dict[str, Any]) -> None:
    rows = report["scenarios"]
    print()
    header = (
        f"{'scenario':34s} {'req/s':>8s} {'records/s':>10s} {'p50 ms':>7s} {'p99 ms':>7s}"
        f" {'max ms':>7s} {'ack p99':>7s} {'errors':>6s} {'gw µs/rec':>9s} {'gw cpu':>6s}"
        f" {'kafka':>6s} {'loadgen':>7s} {'other':>6s} {'gw RSS':>7s}"
    )
    print(header)
    print("-" * len(header))
    for row in rows.values():
        latency = row["latency_ms"]
        cpu = row["cpu_cores"]
        print(
            f"{row['title']:34s} {row['requests_per_s']:8,.0f} {row['records_per_s']:10,.0f}"
            f" {latency['p50']:7.1f} {latency['p99']:7.1f} {latency['max']:7.1f}"
            f" {_bound(row['kafka_ack_ms']['p99_le_ms']):>7s} {row['errors'] + row['missed']:6d}"
            f" {row['gateway_cpu_us_per_record']:9.1f} {cpu['gateway']:6.2f} {cpu['broker']:6.2f}"
            f" {cpu['loadgen']:7.2f} {cpu['other']:6.2f}"
            f" {row['gateway_rss_peak_mb']:5.0f}MB"
        )
    baseline = report.get("baseline")
    if baseline:
        trip = baseline["batch_round_trip"]["latency_ms"]
        print(
            f"{'baseline: confluent-kafka direct':34s} {'':8s} {baseline['records_per_s']:10,.0f}"
            f" {trip['p50']:7.1f} {trip['p99']:7.1f}   (latency: one 500-record batch to all acks)"
        )
        print()
        for name, ratio in report["ratios"].items():
            print(f"  {name:28s} {ratio:6.1%} of the baseline")
    for name, cost in report.get("transactions_cost", {}).items():
        print(
            f"  transactions, {name}: {cost['median_plain']:,.0f} → "
            f"{cost['median_transactions']:,.0f} records/s (median of the rounds): "
            f"they cost {cost['cost']:.1%}"
        )
    for name, sides in report.get("against", {}).items():
        this, against = sides["this"]["median"], sides["against"]["median"]
        print(
            f"  {name}, median of {len(sides['this']['gw_us_per_record'])} rounds: gw µs/rec "
            f"{against['gw_us_per_record']:g} (--against) → {this['gw_us_per_record']:g} (this), "
            f"requests/s {against['requests_per_s']:,.0f} → {this['requests_per_s']:,.0f}, "
            f"p99 {against['p99_ms']:g} → {this['p99_ms']:g} ms"
        )
    cost = report.get("signature_cost")
    if cost:
        print(
            f"  signature (stripe) on (c), median of {cost['rounds']} rounds: "
            f"{cost['added_us_per_request']:+g} gateway µs/request "
            f"({cost['gateway_cpu_us_per_request']['plain']:g} → "
            f"{cost['gateway_cpu_us_per_request']['signed']:g}); requests/s "
            f"{cost['requests_per_s_ratio']:.1%} of (c)'s"
        )
    for row in rows.values():
        if "profile" in row:
            stages = row["profile"]["main_thread_us_per_record"]
            shown = ", ".join(f"{name} {us:.1f}" for name, us in stages.items())
            print(f"  profile {row['title']}: main thread µs/record: {shown}")
            threads = row["gateway_threads_cpu_cores"]
            print(f"     threads (cores): {threads}")
    print()
    for name, check in report["targets"].items():
        mark = "ok  " if check["met"] else "MISS"
        print(f"  [{mark}] {name:24s} {check['value']:>12,g} (target {check['target']})")
    print()


def _bound(ms: float | None) -> str:
    return "?" if ms is None else f"≤{ms:g}"


def transactions_cost(rows: dict[str, Any], scenarios: list[Scenario]) -> dict[str, Any]:
    """Per scenario: the median records/s of its rounds without and with transactions, and the
    share of records/s the transactions cost."""
    cost: dict[str, Any] = {}
    for scenario in scenarios:

        def rates(prefix: str) -> list[int]:
            return [
                row["records_per_s"]
                for key, row in rows.items()
                if key == prefix or key.startswith(prefix + ".")
            ]

        plain, transactional = rates(scenario.name), rates(scenario.name + "+transactions")
        if plain and transactional:
            without, with_ = statistics.median(plain), statistics.median(transactional)
            cost[scenario.name] = {
                "records_per_s": {"plain": plain, "transactions": transactional},
                "median_plain": without,
                "median_transactions": with_,
                "cost": round(1 - with_ / without, 3),
            }
    return cost


def against_compared(rows: dict[str, Any], scenarios: list[Scenario]) -> dict[str, Any]:
    """Per scenario, this checkout's gateway and ``--against``'s (the same load, in turn): every
    round's gateway CPU µs per record, requests/s and p99, and their medians."""
    compared: dict[str, Any] = {}
    for scenario in scenarios:
        sides: dict[str, dict[str, Any]] = {}
        for side, name in (("this", scenario.name), ("against", scenario.name + "+against")):
            own = [row for key, row in rows.items() if key == name or key.startswith(name + ".")]
            if not own:
                break
            figures = {
                "gw_us_per_record": [row["gateway_cpu_us_per_record"] for row in own],
                "requests_per_s": [round(row["requests_per_s"]) for row in own],
                "p99_ms": [row["latency_ms"]["p99"] for row in own],
            }
            sides[side] = {
                **figures,
                "median": {name: statistics.median(v) for name, v in figures.items()},
            }
        else:
            compared[scenario.name] = sides
    return compared


def signature_cost(rows: dict[str, Any]) -> dict[str, Any] | None:
    """(c') against (c): the gateway CPU a signed single-record request adds, and the requests/s
    it keeps, as medians over the rounds. CPU per request is the figure to read (requests/s
    depends on the CPU the gateway got); both are the same load on the same gateway, in turn."""

    medians: dict[str, tuple[float, float]] = {}
    for name in ("single", "signed"):
        own = [row for key, row in rows.items() if key == name or key.startswith(name + ".")]
        if not own:
            return None
        medians[name] = (
            statistics.median(row["gateway_cpu_us_per_record"] for row in own),
            statistics.median(row["requests_per_s"] for row in own),
        )
    (plain_us, plain_rps), (signed_us, signed_rps) = medians["single"], medians["signed"]
    return {
        "rounds": len([key for key in rows if key.startswith("signed")]),
        "gateway_cpu_us_per_request": {"plain": plain_us, "signed": signed_us},
        "added_us_per_request": round(signed_us - plain_us, 1),
        "requests_per_s_ratio": round(signed_rps / max(plain_rps, 1), 3),
    }


def check_targets(scenarios: dict[str, Any]) -> dict[str, Any]:
    checks: dict[str, Any] = {}

    def add(name: str, value: float, target: float, *, at_most: bool = False) -> None:
        value = round(value, 1)
        met = value <= target if at_most else value >= target
        bound = f"<= {target:,}" if at_most else f">= {target:,}"
        checks[name] = {"value": value, "target": bound, "met": met}

    if "array" in scenarios:
        add("(a) records/s", scenarios["array"]["records_per_s"], TARGETS["array_records_per_s"])
    if "single" in scenarios:
        add(
            "(c) requests/s",
            scenarios["single"]["requests_per_s"],
            TARGETS["single_requests_per_s"],
        )
    if "open" in scenarios:
        row = scenarios["open"]
        add("(d) p99 ms", row["latency_ms"]["p99"], TARGETS["open_p99_ms"], at_most=True)
        add("(d) errors + missed", row["errors"] + row["missed"], 0, at_most=True)
    peak = max(row["gateway_rss_peak_mb"] for row in scenarios.values())
    add("gateway RSS MB (peak)", peak, TARGETS["rss_mb"], at_most=True)
    return checks


# ---------------------------------------------------------------------------------------------


def every_scenario(args: argparse.Namespace) -> list[Scenario]:
    return [
        Scenario("array", "(a) JSON arrays of 500", "array500.json", "application/json", 500,
                 args.array_connections),
        Scenario("ndjson", "(b) NDJSON of 1,000 lines", "ndjson1000.ndjson",
                 "application/x-ndjson", 1000, args.ndjson_connections),
        Scenario("single", f"(c) single records, {args.single_connections} conns",
                 "single.json", "application/json", 1, args.single_connections),
        Scenario("signed", "(c') the same, stripe-signed", "single.json", "application/json", 1,
                 args.single_connections, signed=True),
        Scenario("open", f"(d) single records, {args.rate:,.0f}/s open loop", "single.json",
                 "application/json", 1, args.open_connections, rate=args.rate),
    ]  # fmt: skip


def scenarios_for(args: argparse.Namespace) -> list[Scenario]:
    every = every_scenario(args)
    chosen = set(args.only.split(",")) if args.only else {s.name for s in every}
    return [s for s in every if s.name in chosen]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=12.0, help="seconds per scenario")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--quick", action="store_true", help="4 s scenarios, 1 s warm-up")
    parser.add_argument(
        "--warm", type=float, default=20.0, help="seconds of unmeasured load before the scenarios"
    )
    parser.add_argument("--server", choices=["inlet", "uvicorn", "granian"], default="inlet")
    parser.add_argument("--workers", type=int, default=1, help="with --server uvicorn|granian")
    parser.add_argument("--only", help="comma-separated: array,ndjson,single,signed,open,baseline")
    parser.add_argument(
        "--no-fast-path",
        dest="fast_path",
        action="store_false",
        help="the gateway without its plain-ASGI ingest path (INLET_GATEWAY_FAST_PATH=false)",
    )
    parser.add_argument("--array-connections", type=int, default=8)
    parser.add_argument("--ndjson-connections", type=int, default=8)
    parser.add_argument("--single-connections", type=int, default=64)
    parser.add_argument("--open-connections", type=int, default=64)
    parser.add_argument("--rate", type=float, default=2000.0, help="(d)'s requests per second")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="seconds to wait, before each scenario, for other processes to leave the CPU (0: no)",
    )
    parser.add_argument(
        "--transactions",
        choices=["off", "on", "both"],
        default="off",
        help="INLET_GATEWAY_TRANSACTIONS for the gateway; both: a second, transactional gateway, "
        "each scenario run on the two in turn",
    )
    parser.add_argument(
        "--against",
        type=Path,
        help="another checkout (with its .venv synced): its gateway runs beside this one's, each "
        "scenario on the two in turn (--rounds times), to compare code before and after",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="runs of each scenario, in turn (with --transactions both: plain and transactional)",
    )
    parser.add_argument(
        "--dedup",
        action="store_true",
        help="run each scenario also on a connector with dedup (a new webhook-id per request)",
    )
    parser.add_argument("--save", action="store_true", help="also write a dated copy to commit")
    parser.add_argument("--keep-logs", action="store_true", help="keep the services' logs")
    parser.add_argument(
        "--profile", type=Path, help="py-spy the gateway into this directory (needs py-spy)"
    )
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup, args.warm = 4.0, 1.0, 6.0
    if args.server == "inlet" and args.workers != 1:
        parser.error("--workers needs --server uvicorn or granian (inlet gateway runs one)")
    scenarios = scenarios_for(args)
    run_baseline_too = not args.only or "baseline" in args.only.split(",")

    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="inlet-bench-"))
    report: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "config": {
            "server": args.server,
            "workers": args.workers,
            "fast_path": args.fast_path,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
        },
        "scenarios": {},
    }
    # Full JIT: the broker's throughput is part of what is measured.
    broker = LocalKafka(
        data_dir=None, cache_dir=env_cache_dir(), first_port=None, quiet=True, quick_start=False
    )
    try:
        print("building bench/loadgen …", flush=True)
        loadgen = build_loadgen(work)
        report["workload"] = {"fields": FIELDS, "key_field": "id", **write_bodies(work)}
        print("starting Kafka …", flush=True)
        with stderr_to(work / "kafka.log"):  # librdkafka's "connection refused" while it boots
            bootstrap = broker.start()
        with services(
            bootstrap,
            work,
            args.server,
            args.workers,
            fast_path=args.fast_path,
            transactions=args.transactions,
            against=args.against,
        ) as stack:
            connector = create_connector(stack)
            plain_url = connector["bench_ingest_url"]
            signed = (
                create_connector(stack, signed=True) if any(s.signed for s in scenarios) else {}
            )
            url = plain_url
            report["workload"]["topic_partitions"] = connector.get("partitions")
            watch = Watch(stack.gateway.pid, broker.pids())
            idle = process_tree(stack.gateway.pid)
            report["gateway_rss_idle_mb"] = round(
                sum(_status_kb(pid, "VmRSS:") for pid in idle) / 1024, 1
            )
            if args.warm > 0:
                # A fresh JVM compiles its hot paths for a while (and uses CPU for it): warm the
                # broker (and the gateway) with both kinds of load before measuring anything.
                print(f"warming up Kafka and the gateway ({args.warm:g} s) …", flush=True)
                for warm in (every_scenario(args)[0], every_scenario(args)[2]):
                    run_load(loadgen, warm, url, work, args.warm / 2, 0.0)
            runs: list[tuple[str, Scenario, str, Watch, str]] = []
            deduplicated = (
                create_connector(stack, dedup={"header": _DEDUP_HEADER}) if args.dedup else None
            )
            if stack.second is None:
                # Rounds go over the scenarios in turn, so that (c) and (c') alternate and the
                # shared machine's noise falls on both.
                for round_ in range(args.rounds):
                    suffix = f".{round_ + 1}" if args.rounds > 1 else ""
                    for scenario in scenarios:
                        url = signed["bench_ingest_url"] if scenario.signed else plain_url
                        runs.append(
                            (scenario.name + suffix, scenario, url, watch, stack.gateway_url)
                        )
                        if deduplicated is None or scenario.signed:
                            continue
                        # The same load on a connector with dedup, each request a new key: what
                        # the claim, its read-back and the acceptance cost beside the plain one.
                        runs.append((
                            f"{scenario.name}+dedup{suffix}",
                            dataclasses.replace(
                                scenario,
                                title=scenario.title + " +dedup",
                                unique_header=_DEDUP_HEADER,
                            ),
                            deduplicated["bench_ingest_url"],
                            watch,
                            stack.gateway_url,
                        ))  # fmt: skip
            else:
                # Each scenario on the two gateways in turn, the first of the pair alternating
                # from round to round, so that a drift in the machine's load falls on both.
                second = Watch(stack.second.pid, broker.pids())
                label = stack.second_label
                for round_ in range(args.rounds):
                    suffix = f".{round_ + 1}" if args.rounds > 1 else ""
                    for scenario in scenarios:
                        url = signed["bench_ingest_url"] if scenario.signed else plain_url
                        pair = [
                            (scenario.name + suffix, scenario, url, watch, stack.gateway_url),
                            (
                                f"{scenario.name}{label}{suffix}",
                                dataclasses.replace(scenario, title=scenario.title + " " + label),
                                (signed if scenario.signed else connector)["second_ingest_url"],
                                second,
                                stack.second_url or "",
                            ),
                        ]
                        runs.extend(pair if round_ % 2 == 0 else pair[::-1])
                if args.warm > 0:
                    print(f"warming up the second gateway ({args.warm:g} s) …", flush=True)
                    second_url = connector["second_ingest_url"]
                    for warm in (every_scenario(args)[0], every_scenario(args)[2]):
                        run_load(loadgen, warm, second_url, work, args.warm / 2, 0.0)
            for key, scenario, url, watch, gateway_url in runs:
                before = watch.wait_quiet(args.quiet_wait) if args.quiet_wait > 0 else None
                print(f"running {scenario.title} …", flush=True)
                # `inlet gateway` sums its workers' metrics; other launchers answer with one
                # worker's, whose counts add up only when there is one.
                single = args.server == "inlet" or args.workers == 1
                histogram = produce_histogram(gateway_url) if single else {}
                with watch.window() as usage:
                    load = run_load(
                        loadgen,
                        scenario,
                        url,
                        work,
                        args.duration,
                        args.warmup,
                        # One file per run: a +dedup run beside its plain one, each round's own.
                        None if args.profile is None else args.profile / f"{key}.txt",
                        watch.gateway_pid,
                    )
                usage["cpu_cores"]["loadgen"] = round(
                    load.pop("loadgen_cpu_s") / usage["wall_s"], 2
                )
                records_per_s = load["requests_per_s"] * scenario.records_per_request
                # CPU per record: steadier than records/s when the machine is shared.
                cpu_us = usage["cpu_cores"]["gateway"] / max(records_per_s, 1) * 1e6
                report["scenarios"][key] = {
                    "title": scenario.title,
                    "records_per_request": scenario.records_per_request,
                    **load,
                    "records_per_s": round(records_per_s),
                    "gateway_cpu_us_per_record": round(cpu_us, 1),
                    "other_load_before": before,
                    # From the gateway's metrics: how long Kafka took to ack a request's records
                    # (bucket bounds), to tell Kafka's share of the latency from the gateway's.
                    "kafka_ack_ms": produce_quantiles(
                        histogram, produce_histogram(gateway_url) if single else {}
                    ),
                    **usage,
                }
                if args.profile is not None:
                    stacks = args.profile / f"{key}.txt"
                    if stacks.exists():
                        row = report["scenarios"][key]
                        row["profile"] = shares = breakdown(stacks)
                        # The main thread's CPU per record, split by the stages' shares.
                        main_us = row["gateway_threads_cpu_cores"].get("main", 0.0)
                        main_us = main_us / max(records_per_s, 1) * 1e6
                        shares["main_thread_us_per_record"] = {
                            stage: round(share * main_us, 2)
                            for stage, share in shares["main_thread_stages"].items()
                        }
            if run_baseline_too:
                print("running the baseline (confluent-kafka direct) …", flush=True)
                with watch.window() as usage:
                    baseline = run_baseline(
                        bootstrap, connector["topic"], work, connector["schema_id"], args.duration
                    )
                cores = usage["cpu_cores"]
                baseline["cpu_cores"] = {
                    "producer": cores["loadgen"],  # the baseline's own process
                    "broker": cores["broker"],
                    "other": cores["other"],
                }
                report["baseline"] = baseline
            if args.keep_logs:
                for name in ("gateway", "registry"):
                    shutil.copy(work / f"{name}.log", RESULTS / f"{name}.log")
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)

    if "baseline" in report:
        ceiling = report["baseline"]["records_per_s"]
        report["ratios"] = {
            f"{row['title']}": round(row["records_per_s"] / ceiling, 3)
            for name, row in report["scenarios"].items()
            if name != "open"
        }
    if args.transactions == "both":
        report["transactions_cost"] = transactions_cost(report["scenarios"], scenarios)
    if args.against is not None:
        report["config"]["against"] = str(args.against)
        report["against"] = against_compared(report["scenarios"], scenarios)
    if any(key.startswith("signed") for key in report["scenarios"]):
        report["signature_cost"] = signature_cost(report["scenarios"])
    report["targets"] = check_targets(report["scenarios"])
    print_table(report)
    RESULTS.mkdir(exist_ok=True)
    text = json.dumps(report, indent=2) + "\n"
    (RESULTS / "latest.json").write_text(text)
    if args.save:
        name = f"{dt.date.today().isoformat()}-{machine_slug(report['machine'])}.json"
        (RESULTS / name).write_text(text)
        print(f"results: bench/results/latest.json and bench/results/{name}")
    else:
        print("results: bench/results/latest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
