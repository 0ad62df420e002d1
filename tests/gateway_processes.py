"""`inlet gateway` as shipped, started by the tests: its processes, their connections, a connector.

A gateway serves on a socket bound here and handed over (``INLET_GATEWAY_LISTEN_FD``); a
``GatewayInstance`` keeps it, so that the instance can be stopped and started again on the same
port (connections that come meanwhile wait in the socket's backlog, as behind a restarting host).
"""

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

from inlet.settings import Settings

TOKEN = "inlet_admin_workers-test"


def server_workers(pid: int) -> list[int]:
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


def connections_by_worker(workers: list[int], port: int) -> dict[int, int]:
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


def worker_of(workers: list[int], port: int, client_port: int) -> int | None:
    """The worker process holding the server's end of the connection from ``client_port`` to
    ``port`` (from /proc), if any."""
    owner: dict[str, int] = {}
    for pid in workers:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = str(fd.readlink())
            except OSError:
                continue
            if target.startswith("socket:["):
                owner[target[len("socket:[") : -1]] = pid
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if (
            int(local.rsplit(":", 1)[1], 16) == port
            and int(remote.rsplit(":", 1)[1], 16) == client_port
            and inode in owner
        ):
            return owner[inode]
    return None


class GatewayInstance:
    """One ``inlet gateway`` (``workers`` processes) on ``listening``, which it keeps open:
    ``restart`` stops the instance (SIGTERM: it finishes what it serves) and starts a new one on
    the same socket."""

    def __init__(
        self,
        settings: Settings,
        listening: socket.socket,
        *,
        workers: int = 2,
        stderr: Path | None = None,
        extra_env: dict[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.listening = listening
        self.port: int = listening.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
            "INLET_DATA_DIR": settings.data_dir,
            "INLET_GATEWAY_PORT": str(self.port),
            "INLET_GATEWAY_LISTEN_FD": str(listening.fileno()),
            "INLET_GATEWAY_WORKERS": str(workers),
            "INLET_TOPIC_PARTITIONS": "1",
            "INLET_LOG_LEVEL": "WARNING",
            **(extra_env or {}),
        }
        self._stderr = stderr or Path(os.devnull)
        self._preexec_fn = preexec_fn
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "the gateway is not running"
        return self.process.pid

    def start(self, timeout_s: float = 120.0) -> None:
        with self._stderr.open("ab") as log:
            self.process = process = subprocess.Popen(
                [sys.executable, "-m", "deploy.cli", "gateway"],
                env=self._env,
                stderr=log,
                pass_fds=(self.listening.fileno(),),
                preexec_fn=self._preexec_fn,  # noqa: PLW1509 - the callers' only set a resource limit
            )
        deadline = time.monotonic() + timeout_s
        while True:
            assert process.poll() is None, f"the gateway exited with {process.returncode}"
            assert time.monotonic() < deadline, f"the gateway was not healthy in {timeout_s:g} s"
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()


@contextmanager
def gateway_instance(
    settings: Settings, listening: socket.socket, **options: Any
) -> Iterator[GatewayInstance]:
    """A running ``GatewayInstance`` until the block ends (then stopped, its socket closed)."""
    instance = GatewayInstance(settings, listening, **options)
    with listening:
        try:
            instance.start()
            yield instance
        finally:
            instance.stop()


@contextmanager
def gateway_with_two_workers(
    settings: Settings,
    listening: socket.socket,
    *,
    stderr: Path | None = None,
    extra_env: dict[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """``inlet gateway`` with 2 workers, serving on ``listening`` (closed here once the server
    has it); its log lines go to ``stderr`` (a file), if given."""
    instance = GatewayInstance(
        settings, listening, stderr=stderr, extra_env=extra_env, preexec_fn=preexec_fn
    )
    try:
        with listening:
            instance.start()
        assert instance.process is not None
        yield instance.process
    finally:
        instance.stop()


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


async def every_connection_knows(clients: list[httpx.AsyncClient], url: str) -> None:
    """Until each connection (each pinned to one worker) is answered for the new connector.

    The probe is an empty array: it takes nothing from the bucket.
    """
    deadline = time.monotonic() + 60
    for client in clients:
        while (await client.post(url, json=[])).status_code == 404:
            assert time.monotonic() < deadline, "a worker never learned the connector"
            await asyncio.sleep(0.05)
