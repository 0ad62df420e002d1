"""`inlet gateway` as shipped (2 worker processes behind one port): limits hold for the gateway."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from inlet.process import listening_socket
from inlet.settings import Settings
from registry.app import create_app as create_registry
from tests.servers import serve

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

TOKEN = "inlet_admin_workers-test"
RATE = 40.0  # records per second; the burst is one second's worth
SENDING_S = 5.0
CONNECTIONS = 24
RECORDS_PER_REQUEST = 4


def _server_workers(pid: int) -> list[int]:
    """The worker processes uvicorn spawned under ``pid`` (not multiprocessing's tracker)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"spawn_main" in command:
            found.append(int(stat.parent.name))
    return found


def _connections_by_worker(workers: list[int], port: int) -> dict[int, int]:
    """How many established connections to ``port`` each worker process holds (from /proc)."""
    owner: dict[str, int] = {}
    for pid in workers:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = str(fd.readlink())
            except OSError:
                continue
            if target.startswith("socket:["):
                owner[target[len("socket:[") : -1]] = pid
    held = dict.fromkeys(workers, 0)
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, state, inode = int(fields[1].rsplit(":", 1)[1], 16), fields[3], fields[9]
        if local_port == port and state == "01" and inode in owner:
            held[owner[inode]] += 1
    return held


@contextmanager
def gateway_with_two_workers(
    settings: Settings,
    listening: socket.socket,
    *,
    stderr: Path | None = None,
    extra_env: dict[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """``inlet gateway`` with 2 workers, serving on ``listening`` (handed over: closed here once
    the server has it); its log lines go to ``stderr`` (a file), if given."""
    port = listening.getsockname()[1]
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
        "INLET_DATA_DIR": settings.data_dir,
        "INLET_GATEWAY_PORT": str(port),
        "INLET_GATEWAY_LISTEN_FD": str(listening.fileno()),
        "INLET_GATEWAY_WORKERS": "2",
        "INLET_TOPIC_PARTITIONS": "1",
        "INLET_LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    with listening, (stderr or Path(os.devnull)).open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "deploy.cli", "gateway"],
            env=env,
            stderr=log,
            pass_fds=(listening.fileno(),),
            preexec_fn=preexec_fn,  # noqa: PLW1509 - the callers' only set a resource limit
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"the gateway exited with {process.returncode}"
            assert time.monotonic() < deadline, "the gateway was not healthy in 120 s"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


async def create_connector(
    registry: str, name: str, *, token: str = TOKEN, **settings: Any
) -> dict[str, Any]:
    """A connector of one string field ``id`` (the broker is the session's: a unique name)."""
    async with httpx.AsyncClient(
        base_url=registry, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as admin:
        created = await admin.post(
            "/v1/connectors",
            json={
                "name": f"{name}-{uuid.uuid4().hex[:8]}",
                "fields": [{"name": "id", "type": "string"}],
                **settings,
            },
        )
    assert created.status_code == 201, created.text
    connector: dict[str, Any] = created.json()
    return connector


async def _send(
    client: httpx.AsyncClient, url: str, body: list[dict[str, Any]], until: float
) -> int:
    """POST ``body`` until ``until`` (closed loop on one connection); the records accepted."""
    accepted = 0
    while time.monotonic() < until:
        response = await client.post(url, json=body)
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) >= 1
            continue
        assert response.status_code == 200, response.text
        accepted += response.json()["accepted"]
    return accepted


async def _every_connection_knows(clients: list[httpx.AsyncClient], url: str) -> None:
    """Until each connection (each pinned to one worker) is answered for the new connector.

    The probe is an empty array: it takes nothing from the bucket.
    """
    deadline = time.monotonic() + 60
    for client in clients:
        while (await client.post(url, json=[])).status_code == 404:
            assert time.monotonic() < deadline, "a worker never learned the connector"
            await asyncio.sleep(0.05)


async def test_a_rate_limit_holds_across_the_gateway_workers(
    settings: Settings, tmp_path: Path
) -> None:
    listening = listening_socket()
    port = listening.getsockname()[1]
    settings = msgspec.structs.replace(settings, admin_token=TOKEN, gateway_port=port)
    with (
        serve(create_registry(settings)) as registry,
        gateway_with_two_workers(settings, listening) as gateway,
    ):
        url = (await create_connector(registry, "limited", rate_limit_per_s=RATE))["ingest_url"]
        # One client per connection, kept alive: each connection stays with the worker that
        # accepted it, so the traffic each worker sees is whatever the kernel gave it.
        clients = [
            httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=1))
            for _ in range(CONNECTIONS)
        ]
        try:
            await _every_connection_knows(clients, url)
            held = _connections_by_worker(_server_workers(gateway.pid), port)
            assert len(held) == 2, f"expected 2 worker processes, found {held}"
            assert all(held.values()), f"every worker should hold connections: {held}"

            body = [{"id": str(i)} for i in range(RECORDS_PER_REQUEST)]
            started = time.monotonic()
            counts = await asyncio.gather(
                *(_send(client, url, body, started + SENDING_S) for client in clients)
            )
            elapsed = time.monotonic() - started
        finally:
            await asyncio.gather(*(client.aclose() for client in clients))

    accepted = sum(counts)
    burst = RATE
    # The bucket was full at the start (the probes take nothing) and refills at RATE: whatever
    # the machine's speed, the gateway may accept no more than this. Per-process buckets would
    # let each worker accept about as much.
    assert accepted <= RATE * elapsed + burst, (accepted, elapsed)
    assert accepted > burst, "the bucket should have refilled while the senders kept sending"


async def test_a_batch_larger_than_the_burst_is_refused_by_every_worker(
    settings: Settings, tmp_path: Path
) -> None:
    """Issue #10, item 3: at 5/s, 6-record batches all passed (each on a full bucket, then owed),
    whichever worker took them. Now every worker refuses them, and 5-record batches share one
    bucket: at most the rate (plus one burst) passes, however the connections spread."""
    rate = 5.0
    listening = listening_socket()
    port = listening.getsockname()[1]
    settings = msgspec.structs.replace(settings, admin_token=TOKEN, gateway_port=port)
    with (
        serve(create_registry(settings)) as registry,
        gateway_with_two_workers(settings, listening) as gateway,
    ):
        url = (await create_connector(registry, "burst", rate_limit_per_s=rate))["ingest_url"]
        clients = [
            httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=1)) for _ in range(8)
        ]
        try:
            await _every_connection_knows(clients, url)
            held = _connections_by_worker(_server_workers(gateway.pid), port)
            assert len(held) == 2, f"expected 2 worker processes, found {held}"
            assert all(held.values()), f"every worker should hold connections: {held}"

            six = [{"id": str(i)} for i in range(6)]
            refused = await asyncio.gather(*(client.post(url, json=six) for client in clients))
            assert {r.status_code for r in refused} == {429}
            assert {r.json()["code"] for r in refused} == {"batch_exceeds_burst"}

            five = [{"id": str(i)} for i in range(5)]
            started = time.monotonic()
            counts = await asyncio.gather(
                *(_send(client, url, five, started + 3.0) for client in clients)
            )
            elapsed = time.monotonic() - started
        finally:
            await asyncio.gather(*(client.aclose() for client in clients))
    accepted = sum(counts)
    # The refused 6-record batches took nothing (the bucket was full at the start).
    assert rate <= accepted <= rate * elapsed + rate, (accepted, elapsed)


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    return inodes


@pytest.mark.timeout(300)  # a gateway start on a busy machine
def test_the_gateway_serves_on_a_handed_socket_with_both_workers(settings: Settings) -> None:
    """Issue #15, item 7: the port is bound here and handed over (INLET_GATEWAY_LISTEN_FD), never
    picked, closed and bound again; both workers serve on that very socket."""
    listening = listening_socket()
    port = listening.getsockname()[1]
    handed = os.fstat(listening.fileno()).st_ino
    settings = msgspec.structs.replace(settings, gateway_port=port)
    with gateway_with_two_workers(settings, listening) as gateway:
        workers = _server_workers(gateway.pid)
        assert len(workers) == 2, workers
        for pid in [gateway.pid, *workers]:
            assert handed in _socket_inodes(pid), f"process {pid} does not hold the handed socket"
        clients = [
            httpx.Client(timeout=60, limits=httpx.Limits(max_connections=1)) for _ in range(16)
        ]
        try:
            for client in clients:
                assert client.get(f"http://127.0.0.1:{port}/health/live").status_code == 200
            held = _connections_by_worker(workers, port)
        finally:
            for client in clients:
                client.close()
    assert sum(held.values()) == len(clients), held
    assert all(held.values()), f"both workers should have answered: {held}"
