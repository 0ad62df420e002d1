"""`inlet gateway` with 2 workers: `/metrics` adds up over the workers, scrape after scrape."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import httpx
import msgspec
import pytest

from inlet.process import listening_socket
from inlet.settings import Settings
from registry.app import create_app as create_registry
from tests.gateway_processes import (
    connections_by_worker,
    create_connector,
    every_connection_knows,
    gateway_with_two_workers,
    server_workers,
)
from tests.servers import serve

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

TOKEN = "inlet_admin_metrics-test"
CONNECTIONS = 16
REQUESTS_PER_CONNECTION = 25
SCRAPES = 20


def _value(text: str, metric: str, connector: str) -> float:
    """A counter's value for ``connector`` in an exposition (0 while the series is absent)."""
    found = re.search(rf'^{metric}\{{connector="{connector}"\}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def _send(client: httpx.AsyncClient, url: str, connection: int) -> int:
    """``REQUESTS_PER_CONNECTION`` POSTs on one kept-alive connection; the records accepted."""
    accepted = 0
    for request in range(REQUESTS_PER_CONNECTION):
        body = [{"id": f"{connection}-{request}-{i}"} for i in range(1 + request % 4)]
        response = await client.post(url, json=body)
        assert response.status_code == 200, response.text
        accepted += response.json()["accepted"]
    return accepted


async def _scrape(clients: list[httpx.AsyncClient], gateway: str, connector: str) -> list[float]:
    """``SCRAPES`` scrapes while the senders send, over every connection in turn (so every
    worker answers some): each the sum over the workers."""
    seen = []
    for scrape in range(SCRAPES):
        response = await clients[scrape % len(clients)].get(f"{gateway}/metrics")
        assert response.status_code == 200
        seen.append(_value(response.text, "inlet_records_accepted_total", connector))
        await asyncio.sleep(0.05)  # pacing, not waiting for anything
    return seen


def _requests(text: str, connector: str) -> float:
    found = re.search(
        rf'^inlet_ingest_requests_total\{{connector="{connector}",status="200"\}} (\S+)$',
        text,
        re.MULTILINE,
    )
    return float(found.group(1)) if found else 0.0


def _scrape_now(gateway: str, connector: str) -> float:
    with httpx.Client(timeout=60) as client:  # a new connection: whichever worker takes it
        text = client.get(f"{gateway}/metrics").text
    return _value(text, "inlet_records_accepted_total", connector)


@pytest.mark.timeout(300)  # a gateway start and a worker restart, on a busy machine
async def test_metrics_add_up_over_the_workers_and_survive_a_worker(
    settings: Settings, tmp_path: Path
) -> None:
    listening = listening_socket()
    port = listening.getsockname()[1]
    settings = msgspec.structs.replace(settings, admin_token=TOKEN, gateway_port=port)
    gateway = f"http://127.0.0.1:{port}"
    with (
        serve(create_registry(settings)) as registry,
        gateway_with_two_workers(settings, listening) as server,
    ):
        created = await create_connector(registry, "counted", token=TOKEN)
        connector, url = created["id"], created["ingest_url"]
        clients = [
            httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=1))
            for _ in range(CONNECTIONS)
        ]
        try:
            await every_connection_knows(clients, url)
            held = connections_by_worker(server_workers(server.pid), port)
            assert len(held) == 2, f"expected 2 worker processes, found {held}"
            assert all(held.values()), f"every worker should hold connections: {held}"

            scraping = asyncio.ensure_future(_scrape(clients, gateway, connector))
            counts = await asyncio.gather(
                *(_send(client, url, i) for i, client in enumerate(clients))
            )
            seen = await scraping
            accepted = sum(counts)
            assert seen == sorted(seen), f"a counter went backwards: {seen}"
            assert seen[-1] <= accepted
            # Every worker answers the whole gateway's count once the senders are done.
            finals = [(await client.get(f"{gateway}/metrics")).text for client in clients]
        finally:
            await asyncio.gather(*(client.aclose() for client in clients))
        assert {_value(t, "inlet_records_accepted_total", connector) for t in finals} == {accepted}
        # Each connection's probe (an empty array) was answered 200 once, after any 404s.
        requests = CONNECTIONS * (REQUESTS_PER_CONNECTION + 1)
        assert {_requests(t, connector) for t in finals} == {requests}

        # A worker killed outright: what it counted stays counted, its files are merged away.
        workers = server_workers(server.pid)
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 120
        while victim in server_workers(server.pid) or len(server_workers(server.pid)) < 2:
            assert time.monotonic() < deadline, "uvicorn did not replace the killed worker"
            await asyncio.sleep(0.2)
        for _ in range(4):
            assert await asyncio.to_thread(_scrape_now, gateway, connector) == accepted
        files = sorted(
            p.name for p in (Path(settings.data_dir) / "gateway" / f"metrics-{port}").glob("*")
        )
        assert not [name for name in files if name.endswith(f"_{victim}.db")], files
        assert "counter_dead.db" in files, files

        # A deleted connector's series go, from every worker's answer.
        async with httpx.AsyncClient(
            base_url=registry, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
        ) as admin:
            assert (await admin.delete(f"/v1/connectors/{connector}")).status_code == 204
        absent, deadline = 0, time.monotonic() + 60
        while absent < 6:  # new connections: both workers answer some of them
            assert time.monotonic() < deadline, "the deleted connector's series stayed"
            text = await asyncio.to_thread(lambda: httpx.get(f"{gateway}/metrics", timeout=60).text)
            absent = absent + 1 if f'connector="{connector}"' not in text else 0
            await asyncio.sleep(0.1)
