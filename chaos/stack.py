"""Inlet as real processes on loopback, with handles to hurt them.

The broker is ``deploy.broker.LocalKafka`` (1 or 3 nodes) run from this process, with its data in
the work directory so that a killed node restarts on its own log. The registry, the gateway(s) and
the consumers are ``python -m deploy.cli <service>`` children, each with its own log file; all of
them die with this process (parent-death signal), so an interrupted run leaves nothing behind.
"""

from __future__ import annotations

import base64
import functools
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from deploy.broker import LocalKafka, env_cache_dir
from inlet.process import die_with_parent, spare_ports, stderr_to

ROOT = Path(__file__).resolve().parent.parent

# The connector every scenario writes to: the writers' three fields, keyed by the record id.
FIELDS = [
    {"name": "id", "type": "uuid"},
    {"name": "writer", "type": "integer"},
    {"name": "seq", "type": "integer"},
]


def children_of(pid: int) -> list[int]:
    """The direct children of ``pid`` (uvicorn's worker processes), from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return sorted(found)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class QuietKafka(LocalKafka):
    """``LocalKafka`` whose JVMs write their stderr (log4j's console) to ``stderr_log``."""

    stderr_log: Path

    def start_node(self, node_id: int, *, wait: bool = True, timeout_s: float = 60.0) -> None:
        with stderr_to(self.stderr_log):
            super().start_node(node_id, wait=False)
        if wait:
            self.wait_ready(timeout_s)


@dataclass
class Service:
    name: str
    command: str  # the deploy.cli subcommand
    env: dict[str, str]
    log: Path
    port: int | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "deploy.cli", self.command],
                env=self.env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=functools.partial(die_with_parent, signal.SIGKILL),  # noqa: PLW1509
            )

    def kill(self) -> list[int]:
        """kill -9 of the service's process; returns the pids that were its family, which die
        with it (parent-death signal), waited for so the port is free again."""
        assert self.process is not None
        family = [self.pid, *children_of(self.pid)]
        self.process.kill()
        self.process.wait()
        deadline = time.monotonic() + 30
        while any(alive(p) for p in family) and time.monotonic() < deadline:
            time.sleep(0.05)
        return family

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def wait_healthy(self, timeout_s: float = 120.0) -> None:
        assert self.port is not None
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}):\n{tail}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not healthy after {timeout_s:.0f} s")
            time.sleep(0.2)

    def error_lines(self) -> int:
        """ERROR lines logged so far (JSON lines: ``"level":"error"``)."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return 0
        return text.count('"level":"error"') + text.count('"level": "error"')


@dataclass
class Connector:
    id: str
    topic: str
    token: str


@dataclass
class Stack:
    """A broker of ``nodes`` nodes, the registry, ``gateways`` gateways, maybe the consumers."""

    work: Path
    nodes: int = 1
    gateways: int = 1
    consumers: bool = False  # also the consumer workers, and a PostgreSQL server for pipelines
    disk_mb: int = 0  # > 0: the broker's data on a tmpfs of this size (root only), to fill up
    gateway_workers: int = 2
    admin_token: str = field(default_factory=lambda: "inlet_admin_chaos-" + uuid.uuid4().hex)
    kafka: QuietKafka | None = None
    services: dict[str, Service] = field(default_factory=dict)
    postgres_dsn: str | None = None
    _postgres: Any = None
    _mounted: Path | None = None

    @property
    def kafka_dir(self) -> Path:
        return self.work / "kafka"

    def start(self) -> Stack:
        self.work.mkdir(parents=True, exist_ok=True)
        if self.disk_mb:
            self.kafka_dir.mkdir(exist_ok=True)
            subprocess.run(
                [
                    "mount",
                    "-t",
                    "tmpfs",
                    "-o",
                    f"size={self.disk_mb}m",
                    "tmpfs",
                    str(self.kafka_dir),
                ],
                check=True,
                capture_output=True,
            )
            self._mounted = self.kafka_dir
        if self.consumers:
            from tests.postgres import LocalPostgres, postgres_bindir  # noqa: PLC0415 - only here

            bindir = postgres_bindir()
            if bindir is None:
                raise RuntimeError("no PostgreSQL binaries: run scripts/ensure-postgres")
            self._postgres = LocalPostgres(bindir)
            self.postgres_dsn = self._postgres.start()
        self.kafka = QuietKafka(
            data_dir=self.kafka_dir,
            cache_dir=env_cache_dir(),
            nodes=self.nodes,
            first_port=None,
            quiet=True,
        )
        self.kafka.stderr_log = self.work / "kafka.log"
        bootstrap = self.kafka.start(timeout_s=180)
        # Bound by the services themselves, again at each restart after a kill (a socket held
        # here would queue connections while a service is down, not refuse them): outside the
        # ephemeral range, so no outgoing connection can take one meanwhile.
        ports = spare_ports(1 + self.gateways)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("INLET_", "KAFKA_"))},
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "INLET_ADMIN_TOKEN": self.admin_token,
            "INLET_SECRET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "INLET_DATA_DIR": str(self.work / "data"),
            "INLET_FILES_ROOT": str(self.work),  # the files pipelines' lakes are below it
            "INLET_REGISTRY_PORT": str(ports[0]),
            "INLET_GATEWAY_WORKERS": str(self.gateway_workers),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        self.services["registry"] = Service(
            "registry", "registry", env, self.work / "registry.log", ports[0]
        )
        for i, port in enumerate(ports[1:]):
            name = "gateway" if i == 0 else f"gateway-{i + 1}"
            own = {**env, "INLET_GATEWAY_PORT": str(port)}
            self.services[name] = Service(name, "gateway", own, self.work / f"{name}.log", port)
        if self.consumers:
            self.services["consumers"] = Service(
                "consumers", "consumers", env, self.work / "consumers.log"
            )
        for service in self.services.values():
            service.start()
        for service in self.services.values():
            if service.port is not None:
                service.wait_healthy()
        return self

    def stop(self) -> None:
        for service in self.services.values():
            service.stop()
        if self.kafka is not None:
            self.kafka.stop()
        if self._postgres is not None:
            self._postgres.stop()
        if self._mounted is not None:
            subprocess.run(["umount", "-l", str(self._mounted)], check=False, capture_output=True)

    @property
    def bootstrap(self) -> str:
        assert self.kafka is not None
        return self.kafka.bootstrap_servers

    @property
    def registry(self) -> Service:
        return self.services["registry"]

    def gateway_urls(self) -> list[str]:
        return [s.url for s in self.services.values() if s.command == "gateway"]

    def admin(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.registry.url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=60,
        )

    def create_connector(self, name: str) -> Connector:
        created = self.admin(
            "POST", "/v1/connectors", {"name": name, "fields": FIELDS, "key_field": "id"}
        )
        if created.status_code != 201:
            raise RuntimeError(f"creating {name}: {created.status_code} {created.text}")
        body = created.json()
        connector = Connector(body["id"], body["topic"], body["token"])
        # Until every gateway's fold has it (an empty array writes nothing): a 404 here is the
        # known fresh-connector lag, not the fault under test.
        for url in self.gateway_urls():
            deadline = time.monotonic() + 60
            for _ in range(6):  # several probes: each may reach another worker
                while (
                    httpx.post(self.ingest_path(url, connector), json=[], timeout=30).status_code
                    != 200
                ):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{url} never learned of connector {name}")
                    time.sleep(0.1)
        return connector

    @staticmethod
    def ingest_path(gateway_url: str, connector: Connector) -> str:
        return f"{gateway_url}/v1/ingest/{connector.token}"
