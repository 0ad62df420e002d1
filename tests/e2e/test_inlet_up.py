"""`inlet up` as a user runs it: health, a produce/consume round trip, Ctrl-C, a restart; and on a
machine whose cores are all busy: healthy within 60 s, SIGTERM at start-up or after stops every
process within 15 s, SIGKILL leaves none behind."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from inlet.process import ephemeral_ports, listening_socket, spare_ports
from tests.conftest import IN_CI
from tests.cpu_load import busy_cores
from tests.processes import commands, descendants, marked, new_mark, running

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]


def _port_pair() -> int:
    """A free port whose successor is free too (the broker's client and controller ports),
    outside the ephemeral range: `inlet up` starts its broker on a port it is told (a JVM cannot
    be handed a socket), and no outgoing connection can take such a port meanwhile."""
    ephemeral = ephemeral_ports()
    for _ in range(50):
        port = spare_ports(1)[0]
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        if port + 1 not in ephemeral and port + 1 < 65536:
            return port
    raise RuntimeError("no free port pair")


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


class Up:
    def __init__(self, process: subprocess.Popen[str], env: dict[str, str]) -> None:
        self.process = process
        self.env = env
        self.bootstrap = f"127.0.0.1:{env['INLET_KAFKA_PORT']}"
        self.registry = f"http://127.0.0.1:{env['INLET_REGISTRY_PORT']}"
        self.gateway = f"http://127.0.0.1:{env['INLET_GATEWAY_PORT']}"
        self.banner = ""

    def processes(self) -> set[int]:
        """Every process of this run still running, `inlet up` included."""
        return marked(self.env)


@contextmanager
def started(data_dir: Path) -> Iterator[Up]:
    """`inlet up` on free ports with its own data dir; killed, with all it started, after."""
    if IN_CI and not os.environ.get("JAVA_HOME") and not Path("/usr/bin/java").exists():
        pytest.fail("CI needs Java for `inlet up`")
    kafka_port = _port_pair()
    # The services' ports are bound here and handed down (`inlet up` passes each to its service).
    with listening_socket() as registry, listening_socket() as gateway:
        env = {
            **{k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"},
            "INLET_DATA_DIR": str(data_dir),
            "INLET_KAFKA_PORT": str(kafka_port),
            "INLET_REGISTRY_PORT": str(registry.getsockname()[1]),
            "INLET_REGISTRY_LISTEN_FD": str(registry.fileno()),
            "INLET_GATEWAY_PORT": str(gateway.getsockname()[1]),
            "INLET_GATEWAY_LISTEN_FD": str(gateway.fileno()),
            **new_mark(),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "deploy.cli", "up"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            pass_fds=(registry.fileno(), gateway.fileno()),
        )
    up = Up(process, env)
    try:
        yield up
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        for pid in up.processes():  # only if a test failed: leave nothing running
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@contextmanager
def inlet_up(data_dir: Path) -> Iterator[Up]:
    """`inlet up`, once it printed that it is up."""
    with started(data_dir) as up:
        assert up.process.stdout is not None
        deadline = time.monotonic() + 120
        banner = ""
        while "Inlet is up" not in banner:
            line = up.process.stdout.readline()
            if not line and up.process.poll() is not None:
                pytest.fail(f"inlet up exited with {up.process.returncode} before it was up")
            banner += line
            assert time.monotonic() < deadline, "inlet up did not come up in 120s"
        up.banner = banner + up.process.stdout.readline()  # the first URL: the console's
        yield up


def _stop_and_check_nothing_left(up: Up) -> None:
    family = descendants(up.process.pid)
    assert family, "inlet up should have started Kafka and the services"
    up.process.send_signal(signal.SIGINT)
    assert up.process.wait(60) == 0
    deadline = time.monotonic() + 30
    while any(running(pid) for pid in family) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in family if running(pid)] == []


def test_up_serves_health_round_trips_and_keeps_data_across_restarts(tmp_path: Path) -> None:
    topic = f"e2e-{uuid.uuid4().hex[:8]}"
    with inlet_up(tmp_path) as up:
        assert _get(up.registry + "/health") == 200
        # The first URL it prints is the console's: a browser there gets the sign-in page.
        assert f"console (open in a browser): {up.registry}/console/" in up.banner
        console = httpx.get(
            up.registry + "/console/", headers={"Accept": "text/html"}, follow_redirects=True
        )
        assert console.status_code == 200
        assert "Admin token" in console.text
        # `inlet up` saw one gateway worker ready; the other may still be finishing its first
        # Kafka check (a 2-s metadata request on a loaded machine) and say 503 until then.
        deadline = time.monotonic() + 30
        while _get(up.gateway + "/health") != 200:
            assert time.monotonic() < deadline, "the gateway was not ready within 30 s"
            time.sleep(0.1)
        admin = AdminClient({"bootstrap.servers": up.bootstrap})
        admin.create_topics([NewTopic(topic)])[topic].result(30)
        producer = Producer({"bootstrap.servers": up.bootstrap, "acks": "all"})
        producer.produce(topic, b"kept")
        assert producer.flush(30) == 0
        assert _consume(up.bootstrap, topic) == [b"kept"]
        _create_connector_and_ingest(up, tmp_path)
        _stop_and_check_nothing_left(up)

    # The same data dir: the admin token and Kafka's data are still there.
    token = (tmp_path / "admin-token").read_text().strip()
    with inlet_up(tmp_path) as up:
        assert _consume(up.bootstrap, topic) == [b"kept"]
        assert (tmp_path / "admin-token").read_text().strip() == token
        # No chance to clean up this time: the parent-death signals must take everything down.
        up.process.kill()
        _wait_none_left(up, within_s=30)


def _create_connector_and_ingest(up: Up, data_dir: Path) -> None:
    """What the README's quick start does: create a connector, POST to its URL, read Kafka."""
    token = (data_dir / "admin-token").read_text().strip()
    admin = httpx.Client(base_url=up.registry, headers={"Authorization": f"Bearer {token}"})
    created = admin.post(
        "/v1/connectors",
        json={"name": "quickstart", "fields": [{"name": "id", "type": "string"}]},
    )
    admin.close()
    assert created.status_code == 201, created.text
    connector = created.json()
    assert connector["ingest_url"].startswith(up.gateway)
    deadline = time.monotonic() + 30
    while (response := httpx.post(connector["ingest_url"], json=[{"id": "a"}])).status_code == 404:
        assert time.monotonic() < deadline, "the gateway never learned the new connector"
        time.sleep(0.05)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    (value,) = _consume(up.bootstrap, connector["topic"])
    assert value[0] == 0  # Confluent wire format
    assert int.from_bytes(value[1:5], "big") == connector["schema_id"]


def _consume(bootstrap: str, topic: str) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": uuid.uuid4().hex,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                return [msg.value() or b""]
        return []
    finally:
        consumer.close()


# On a busy machine: every core spinning for the whole test (the 2-core CI machine, with
# something else running). One `inlet up` per test: each costs 10-30 s under this load.

_STOP_WITHIN_S = 15.0


@pytest.fixture
def cpu_load() -> Iterator[list[int]]:
    with busy_cores() as pids:
        yield pids


def _wait_none_left(up: Up, *, within_s: float, since: float | None = None) -> None:
    deadline = (time.monotonic() if since is None else since) + within_s
    while (left := up.processes()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == set(), f"still running {within_s:.0f}s after the stop: {commands(left)}"


def _terminate_and_check(up: Up) -> None:
    """SIGTERM: `inlet up` exits 0 and no process of the run is left, within 15 s."""
    assert len(up.processes()) > 1, "inlet up should have started something by now"
    sent = time.monotonic()
    up.process.send_signal(signal.SIGTERM)
    try:
        code = up.process.wait(_STOP_WITHIN_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"inlet up still running {_STOP_WITHIN_S:.0f}s after SIGTERM")
    assert code == 0
    _wait_none_left(up, within_s=_STOP_WITHIN_S, since=sent)


def _wait_for_process(up: Up, command: str) -> None:
    """Until a process of the run has ``command`` in its command line (mid start-up)."""
    deadline = time.monotonic() + 90
    while not any(command in c for c in commands(up.processes(), width=None)):
        assert up.process.poll() is None, f"inlet up exited with {up.process.returncode}"
        assert time.monotonic() < deadline, f"no {command} process started"
        time.sleep(0.02)
    assert _get_or_none(up.gateway + "/health") != 200, "too late: the gateway is up already"


def _get_or_none(url: str) -> int | None:
    try:
        return _get(url)
    except (urllib.error.URLError, OSError):
        return None


@pytest.mark.usefixtures("cpu_load")
def test_under_load_up_is_healthy_within_60s_and_sigterm_stops_everything(tmp_path: Path) -> None:
    with started(tmp_path) as up:
        deadline = time.monotonic() + 60
        urls = [up.registry + "/health", up.gateway + "/health"]
        while [_get_or_none(url) for url in urls] != [200, 200]:
            assert up.process.poll() is None, f"inlet up exited with {up.process.returncode}"
            assert time.monotonic() < deadline, "inlet up not healthy within 60s under load"
            time.sleep(0.2)
        _terminate_and_check(up)


@pytest.mark.usefixtures("cpu_load")
def test_under_load_sigterm_during_start_up_stops_everything(tmp_path: Path) -> None:
    with started(tmp_path) as up:
        _wait_for_process(up, "kafka.Kafka")  # the broker is starting; no service yet
        _terminate_and_check(up)


@pytest.mark.usefixtures("cpu_load")
def test_under_load_sigkill_during_start_up_leaves_no_process(tmp_path: Path) -> None:
    with started(tmp_path) as up:
        # The gateway's workers are being spawned: some cannot have asked to die with it yet.
        _wait_for_process(up, "multiprocessing.spawn")
        up.process.kill()  # no chance to clean up: the parent-death signals must do it
        up.process.wait()
        _wait_none_left(up, within_s=30)
