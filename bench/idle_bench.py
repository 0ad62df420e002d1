"""What an idle `inlet up` costs: CPU per process, from /proc, over a quiet stretch.

``python bench/idle_bench.py [--tree DIR ...] [--rounds N] [--seconds S] [--dedup]``.
Each round starts `inlet up` with a new data directory (from each ``--tree``, a checkout of
Inlet: the repository by default; several alternate round by round, so that old and new code
are compared in the same run on the same machine), waits until the gateway is ready, settles,
then reads every process's ``utime + stime`` (``/proc/<pid>/stat``) at the start and the end of
``--seconds`` and prints the cores each used. ``--dedup`` first creates a connector with a dedup
key and waits until both gateway workers answer its repeat as a duplicate. Prints one JSON line
per run and a table at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

import httpx

from inlet.process import ephemeral_ports, listening_socket, spare_ports

_TICKS = os.sysconf("SC_CLK_TCK")
_ROOT = Path(__file__).resolve().parent.parent


def _family(pid: int) -> set[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children[int(fields[1])].append(int(stat.parent.name))
    found, todo = {pid}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def _role(pid: int, parent_roles: dict[int, str]) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return "gone"
    if "java" in command.split(" ", 1)[0]:
        return "kafka"
    if "spawn_main" in command:
        return f"{parent_roles.get(ppid, '?')} worker"
    if "resource_tracker" in command:
        return "resource tracker"
    for role in ("gateway", "registry", "consumers", "up"):
        if f"deploy.cli {role}" in command:
            return "inlet up" if role == "up" else role
    return command[:40]


def _wait_ready(url: str, deadline: float) -> None:
    while True:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} not ready in time")
        time.sleep(0.2)


def _dedup_connector(registry: str, gateway: str, token: str, deadline: float) -> None:
    admin = httpx.Client(base_url=registry, headers={"Authorization": f"Bearer {token}"})
    created = admin.post(
        "/v1/connectors",
        json={
            "name": f"idle-{uuid.uuid4().hex[:6]}",
            "fields": [{"name": "id", "type": "string"}],
            "dedup": {"header": "webhook-id"},
        },
    )
    assert created.status_code == 201, created.text
    url = created.json()["ingest_url"]
    key = uuid.uuid4().hex
    # New connections spread over both workers: each must answer the repeat as a duplicate.
    duplicates = 0
    while duplicates < 16:
        with httpx.Client() as client:
            answer = client.post(url, json={"id": "a"}, headers={"webhook-id": key})
        if answer.status_code == 200 and answer.json().get("duplicate") is True:
            duplicates += 1
        if time.monotonic() > deadline:
            raise SystemExit("the dedup connector did not answer duplicates in time")
        if answer.status_code != 200:
            time.sleep(0.2)
    assert gateway


def _one_run(tree: Path, seconds: float, settle_s: float, dedup: bool) -> dict[str, float]:
    data = Path(tempfile.mkdtemp(prefix="inlet-idle-"))
    # The broker binds its own ports (this one and the next): outside the ephemeral range.
    kafka_port = next(p for p in spare_ports(20) if p + 1 not in ephemeral_ports())
    registry_sock, gateway_sock = listening_socket(), listening_socket()
    env = {
        **{k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"},
        "PYTHONPATH": str(tree),
        "INLET_DATA_DIR": str(data),
        "INLET_KAFKA_PORT": str(kafka_port),
        "INLET_REGISTRY_PORT": str(registry_sock.getsockname()[1]),
        "INLET_REGISTRY_LISTEN_FD": str(registry_sock.fileno()),
        "INLET_GATEWAY_PORT": str(gateway_sock.getsockname()[1]),
        "INLET_GATEWAY_LISTEN_FD": str(gateway_sock.fileno()),
        "INLET_LOG_LEVEL": "WARNING",
    }
    registry = f"http://127.0.0.1:{env['INLET_REGISTRY_PORT']}"
    gateway = f"http://127.0.0.1:{env['INLET_GATEWAY_PORT']}"
    process = subprocess.Popen(
        [sys.executable, "-m", "deploy.cli", "up"],
        cwd=tree,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(registry_sock.fileno(), gateway_sock.fileno()),
    )
    registry_sock.close()
    gateway_sock.close()
    try:
        deadline = time.monotonic() + 180
        _wait_ready(registry + "/health", deadline)
        for _ in range(8):  # new connections: each worker in turn
            _wait_ready(gateway + "/health", deadline)
        if dedup:
            token = (data / "admin-token").read_text().strip()
            _dedup_connector(registry, gateway, token, deadline)
        time.sleep(settle_s)
        pids = _family(process.pid)
        roles: dict[int, str] = {}
        for pid in sorted(pids):  # parents before their workers (lower pids, mostly)
            roles[pid] = _role(pid, roles)
        seen: dict[str, int] = defaultdict(int)
        for pid in sorted(pids):
            if roles[pid].endswith("? worker"):
                roles[pid] = _role(pid, roles)
            if roles[pid].endswith(" worker"):  # each worker on its own: "gateway worker 2"
                seen[roles[pid]] += 1
                roles[pid] = f"{roles[pid]} {seen[roles[pid]]}"
        before = {pid: _cpu_s(pid) for pid in pids}
        started = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - started
        cores: dict[str, float] = defaultdict(float)
        for pid in pids:
            first, last = before[pid], _cpu_s(pid)
            if first is not None and last is not None:
                cores[roles[pid]] += (last - first) / elapsed
        return dict(cores)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", type=Path, help="a checkout of Inlet")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--settle", type=float, default=5.0, help="quiet seconds before measuring")
    parser.add_argument("--dedup", action="store_true", help="with one dedup connector")
    args = parser.parse_args()
    trees = args.tree or [_ROOT]
    runs: dict[str, list[dict[str, float]]] = defaultdict(list)
    for round_ in range(args.rounds):
        for tree in trees:
            cores = _one_run(tree.resolve(), args.seconds, args.settle, args.dedup)
            runs[str(tree)].append(cores)
            print(json.dumps({"round": round_, "tree": str(tree), "cores": cores}), flush=True)
    print(f"\ncores per process role, median of {args.rounds} ({args.seconds:g} s each)")
    for tree, results in runs.items():
        roles = sorted({role for cores in results for role in cores})
        line = ", ".join(
            f"{role} {statistics.median(c.get(role, 0.0) for c in results):.3f}" for role in roles
        )
        total = statistics.median(sum(c.values()) for c in results)
        print(f"{tree}: {line}; total {total:.3f}")


if __name__ == "__main__":
    main()
