"""`inlet gateway` as shipped (2 worker processes behind one port): limits hold for the gateway."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from inlet.process import listening_socket
from inlet.settings import Settings
from registry.app import create_app as create_registry
from tests.gateway_processes import (
    TOKEN,
    connections_by_worker,
    create_connector,
    every_connection_knows,
    gateway_with_two_workers,
    server_workers,
)
from tests.servers import serve

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

RATE = 40.0  # records per second; the burst is one second's worth
SENDING_S = 5.0
CONNECTIONS = 24
RECORDS_PER_REQUEST = 4


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
            await every_connection_knows(clients, url)
            held = connections_by_worker(server_workers(gateway.pid), port)
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
            await every_connection_knows(clients, url)
            held = connections_by_worker(server_workers(gateway.pid), port)
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
        workers = server_workers(gateway.pid)
        assert len(workers) == 2, workers
        for pid in [gateway.pid, *workers]:
            assert handed in _socket_inodes(pid), f"process {pid} does not hold the handed socket"
        clients = [
            httpx.Client(timeout=60, limits=httpx.Limits(max_connections=1)) for _ in range(16)
        ]
        try:
            for client in clients:
                assert client.get(f"http://127.0.0.1:{port}/health/live").status_code == 200
            held = connections_by_worker(workers, port)
        finally:
            for client in clients:
                client.close()
    assert sum(held.values()) == len(clients), held
    assert all(held.values()), f"both workers should have answered: {held}"
