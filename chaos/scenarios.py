"""The faults, one function each: hurt the stack, say when (``Marks``), put it back.

Each fault runs while the writers write; it marks the moment it struck (``fault``) and the moment
it was undone (``recovered``: the process restarted, the signal sent), and returns once the stack is
whole again, so the next scenario starts on a healthy stack. Blocking waits run in threads.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from chaos.sinks import difference, parquet_ids, postgres_ids
from chaos.stack import Connector, Stack, alive, children_of
from chaos.verdict import Copy, Timeline
from chaos.writers import Ledger, Load


@dataclass
class Marks:
    """When the fault struck and was undone; what a scenario found beyond the verdict's counts."""

    ledger: Ledger
    fault_at: float | None = None
    recovered_at: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def fault(self) -> None:
        self.fault_at = self.ledger.now()

    def recovered(self) -> None:
        self.recovered_at = self.ledger.now()

    @property
    def timeline(self) -> Timeline:
        return Timeline(self.fault_at, self.recovered_at)


Fault = Callable[[Stack, Connector, Marks], Awaitable[None]]
# After the topic was read back: more checks (the sinks), failures into ``marks.failures``.
Verify = Callable[[Stack, Connector, Marks, list[Copy]], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    fault: Fault
    nodes: int = 1
    gateways: int = 1
    consumers: bool = False
    warmup_s: float = 3.0
    tail_s: float = 8.0  # load after the fault returned: recovery must be seen, not assumed
    disk_mb: int = 0  # > 0: the broker's data on a tmpfs this small
    no_200_during_fault: bool = False
    load: Load | None = None  # None: the run's default load
    verify: Verify | None = None
    quick: bool = False  # cheap enough for `make test`

    @property
    def stack_shape(self) -> tuple[int, int, bool, int]:
        return (self.nodes, self.gateways, self.consumers, self.disk_mb)


async def broker_kill(stack: Stack, _c: Connector, marks: Marks, hold_s: float = 5.0) -> None:
    kafka = stack.kafka
    assert kafka is not None
    await asyncio.to_thread(kafka.stop_node, 1, kill=True)
    marks.fault()
    await asyncio.sleep(hold_s)
    marks.recovered()
    await asyncio.to_thread(kafka.start_node, 1, wait=True, timeout_s=180)


async def broker_sigstop(stack: Stack, _c: Connector, marks: Marks, hold_s: float = 15.0) -> None:
    kafka = stack.kafka
    assert kafka is not None
    (pid,) = kafka.pids()
    os.kill(pid, signal.SIGSTOP)
    marks.fault()
    try:
        await asyncio.sleep(hold_s)
    finally:
        os.kill(pid, signal.SIGCONT)
        marks.recovered()


def _workers(stack: Stack, name: str = "gateway") -> list[int]:
    """uvicorn's worker processes (multiprocessing's spawned children, not its resource tracker)."""
    return [pid for pid in children_of(stack.services[name].pid) if b"spawn_main" in _cmdline(pid)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


async def gateway_worker_kill(stack: Stack, _c: Connector, marks: Marks) -> None:
    before = _workers(stack)
    if len(before) < 2:
        raise RuntimeError(f"expected 2 gateway workers, found {before}")
    os.kill(before[0], signal.SIGKILL)
    marks.fault()
    # uvicorn's supervisor notices and starts a replacement: recovered when it is there.
    deadline = time.monotonic() + 60
    while not (set(_workers(stack)) - set(before)):
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn started no new gateway worker within 60 s")
        await asyncio.sleep(0.05)
    marks.recovered()
    await asyncio.to_thread(stack.services["gateway"].wait_healthy)


async def _kill_and_restart(stack: Stack, service: str, marks: Marks, hold_s: float) -> None:
    """kill -9 of a whole service process, restarted after ``hold_s``."""
    process = stack.services[service]
    await asyncio.to_thread(process.kill)
    marks.fault()
    await asyncio.sleep(hold_s)
    process.start()
    marks.recovered()
    await asyncio.to_thread(process.wait_healthy)


async def gateway_kill(stack: Stack, _c: Connector, marks: Marks, hold_s: float = 3.0) -> None:
    await _kill_and_restart(stack, "gateway", marks, hold_s)


async def registry_kill(stack: Stack, _c: Connector, marks: Marks, hold_s: float = 5.0) -> None:
    registry = stack.registry
    await asyncio.to_thread(registry.kill)
    marks.fault()
    await asyncio.sleep(hold_s)
    registry.start()
    marks.recovered()
    await asyncio.to_thread(registry.wait_healthy)


def _leader(stack: Stack, topic: str, partition: int = 0) -> int:
    admin = AdminClient({"bootstrap.servers": stack.bootstrap})
    leader = admin.list_topics(topic, timeout=30).topics[topic].partitions[partition].leader
    if leader < 0:
        raise RuntimeError(f"{topic}[{partition}] has no leader")
    return int(leader)


async def leader_kill(
    stack: Stack, connector: Connector, marks: Marks, hold_s: float = 10.0
) -> None:
    kafka = stack.kafka
    assert kafka is not None
    node = await asyncio.to_thread(_leader, stack, connector.topic)
    await asyncio.to_thread(kafka.stop_node, node, kill=True)
    marks.fault()
    await asyncio.sleep(hold_s)
    marks.recovered()
    await asyncio.to_thread(kafka.start_node, node, wait=True, timeout_s=180)


async def two_brokers_down(
    stack: Stack, connector: Connector, marks: Marks, hold_s: float = 20.0
) -> None:
    kafka = stack.kafka
    assert kafka is not None
    leader = await asyncio.to_thread(_leader, stack, connector.topic)
    # The two that are not partition 0's leader: the leader stays, below min ISR.
    down = [n.node_id for n in kafka.nodes if n.node_id != leader]
    for node in down:
        await asyncio.to_thread(kafka.stop_node, node, kill=True)
    marks.fault()
    await asyncio.sleep(hold_s)
    marks.recovered()
    for node in down:
        await asyncio.to_thread(kafka.start_node, node, wait=False)
    await asyncio.to_thread(kafka.wait_ready, 180)


async def rolling_restart(stack: Stack, _c: Connector, marks: Marks) -> None:
    kafka = stack.kafka
    assert kafka is not None
    marks.fault()
    for node in kafka.nodes:
        await asyncio.to_thread(kafka.stop_node, node.node_id)  # SIGTERM: controlled shutdown
        await asyncio.to_thread(kafka.start_node, node.node_id, wait=True, timeout_s=180)
        await asyncio.sleep(3)
    marks.recovered()


async def second_gateway_kill(
    stack: Stack, _c: Connector, marks: Marks, hold_s: float = 10.0
) -> None:
    await _kill_and_restart(stack, "gateway-2", marks, hold_s)


async def consumers_kill(stack: Stack, connector: Connector, marks: Marks) -> None:
    """A PostgreSQL and a Parquet pipeline on the connector; the consumers kill -9 mid-feed."""
    table = f"chaos_{connector.id}"
    lake = stack.work / f"lake-{connector.id}"
    sinks = {
        "postgres": {"type": "postgres", "dsn": stack.postgres_dsn, "table": table},
        "files": {"type": "files", "directory": str(lake), "format": "parquet", "roll_seconds": 1},
    }
    for kind, sink in sinks.items():
        body = {"name": f"chaos-{kind}-{connector.id}", "connector_id": connector.id, "sink": sink}
        created = await asyncio.to_thread(stack.admin, "POST", "/v1/pipelines", body)
        if created.status_code != 201:
            raise RuntimeError(
                f"creating the {kind} pipeline: {created.status_code} {created.text}"
            )
    marks.notes |= {"table": table, "lake": str(lake)}
    await asyncio.sleep(5)  # both feeds are delivering
    consumers = stack.services["consumers"]
    await asyncio.to_thread(consumers.kill)
    marks.fault()
    await asyncio.sleep(5)
    consumers.start()
    marks.recovered()


async def sinks_hold_the_topic(
    stack: Stack, _c: Connector, marks: Marks, copies: list[Copy], timeout_s: float = 180.0
) -> None:
    """Until both sinks hold exactly the topic's records (or the deadline says they never will)."""
    assert stack.postgres_dsn is not None
    expected = Counter(c.record_id for c in copies)
    deadline = time.monotonic() + timeout_s
    while True:
        found = {
            "postgres": await asyncio.to_thread(
                postgres_ids, stack.postgres_dsn, marks.notes["table"]
            ),
            "files": await asyncio.to_thread(parquet_ids, Path(marks.notes["lake"])),
        }
        gaps = {kind: difference(expected, ids) for kind, ids in found.items()}
        if all(gap == {"missing": 0, "extra": 0} for gap in gaps.values()):
            break
        if time.monotonic() > deadline:
            for kind, gap in gaps.items():
                marks.failures += [f"{kind}_{k}={n}" for k, n in gap.items() if n]
            break
        await asyncio.sleep(1)
    marks.notes["sinks"] = {kind: sum(ids.values()) for kind, ids in found.items()}
    marks.notes["sink_gaps"] = gaps


def _tree_rss_mb(pid: int) -> float:
    total = 0
    for member in [pid, *children_of(pid)]:
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


async def overload(stack: Stack, _c: Connector, marks: Marks, hold_s: float = 30.0) -> None:
    """No fault but the load itself; the gateway's RSS (all its processes) sampled meanwhile."""
    gateway = stack.services["gateway"]
    peak = 0.0
    deadline = time.monotonic() + hold_s
    while time.monotonic() < deadline:
        peak = max(peak, _tree_rss_mb(gateway.pid))
        await asyncio.sleep(0.5)
    marks.notes["gateway_rss_peak_mb"] = round(peak, 1)
    if peak > OVERLOAD_RSS_MB:
        marks.failures.append(f"gateway_rss_peak_mb={peak:.0f}")


OVERLOAD_RSS_MB = 1024  # two workers and their librdkafka queues; the benchmark sees ~200 MB
OVERLOAD = Load(writers=200, records=500, rate_per_writer=100.0, answer_bound_s=20.0)


async def only_2xx_429_503(_s: Stack, _c: Connector, marks: Marks, _copies: list[Copy]) -> None:
    others = {
        outcome: n
        for outcome, n in Counter(a.outcome for a in marks.ledger.attempts).items()
        if outcome not in {"200", "429", "503"}
    }
    if others:
        marks.failures.append(f"other_answers={others}")


async def disk_full(stack: Stack, _c: Connector, marks: Marks, hold_s: float = 10.0) -> None:
    """The broker's file system fills up (a filler file to ENOSPC); freed after ``hold_s``."""
    kafka = stack.kafka
    assert kafka is not None
    filler = stack.kafka_dir / "filler"
    await asyncio.to_thread(_fill, filler)
    marks.fault()
    await asyncio.sleep(hold_s)
    (pid,) = kafka.pids() or (None,)
    marks.notes["broker_survived_full_disk"] = pid is not None and alive(pid)
    filler.unlink()
    marks.recovered()
    # A broker whose only log dir failed shuts itself down; one that did not is left running.
    await asyncio.to_thread(kafka.start_node, 1, wait=True, timeout_s=180)


def _fill(path: Path) -> None:
    chunk = b"\0" * (1 << 20)
    with path.open("wb") as out:
        try:
            while True:
                out.write(chunk)
                out.flush()
        except OSError:
            pass


SCENARIOS = [
    Scenario("broker-kill", "single broker kill -9, restart after 5 s", broker_kill, quick=True),
    Scenario("broker-sigstop", "broker SIGSTOP 15 s, then SIGCONT", broker_sigstop, quick=True),
    Scenario(
        "gateway-worker-kill",
        "kill -9 of one of 2 gateway workers",
        gateway_worker_kill,
        quick=True,
    ),
    Scenario("gateway-kill", "kill -9 of the whole gateway, restart after 3 s", gateway_kill),
    Scenario("registry-kill", "registry kill -9 while ingesting, restart after 5 s", registry_kill),
    Scenario("leader-kill", "3 nodes: kill -9 of partition 0's leader, 10 s", leader_kill, nodes=3),
    Scenario(
        "below-min-isr",
        "3 nodes, min ISR 2: two brokers kill -9 for 20 s",
        two_brokers_down,
        nodes=3,
        no_200_during_fault=True,
    ),
    Scenario("rolling-restart", "3 nodes: each restarted in turn", rolling_restart, nodes=3),
    Scenario(
        "two-gateways",
        "2 gateways, writers alternating; one kill -9 for 10 s",
        second_gateway_kill,
        gateways=2,
    ),
    Scenario(
        "consumers-kill",
        "PostgreSQL + Parquet pipelines; consumers kill -9 for 5 s; sinks = topic",
        consumers_kill,
        consumers=True,
        verify=sinks_hold_the_topic,
    ),
    Scenario(
        "overload",
        "200 connections of 500-record arrays for 30 s",
        overload,
        warmup_s=0.0,
        tail_s=0.0,
        load=OVERLOAD,
        verify=only_2xx_429_503,
    ),
    Scenario(
        "disk-full",
        "the broker's file system (tmpfs) fills up for 10 s",
        disk_full,
        disk_mb=256,
    ),
]
