"""`inlet up` as a user runs it: health, a produce/consume round trip, Ctrl-C, a restart."""

from __future__ import annotations

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

from inlet.process import free_ports
from tests.conftest import IN_CI

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]


def _port_pair() -> int:
    """A free port whose successor is free too (the broker's client and controller ports)."""
    for _ in range(50):
        port = free_ports(1)[0]
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair")


def _descendants(pid: int) -> set[int]:
    """Every process started (transitively) by ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _running(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return False


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


@contextmanager
def inlet_up(data_dir: Path) -> Iterator[Up]:
    kafka_port = _port_pair()
    registry_port, gateway_port = free_ports(2)
    env = {
        **{k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"},
        "INLET_DATA_DIR": str(data_dir),
        "INLET_KAFKA_PORT": str(kafka_port),
        "INLET_REGISTRY_PORT": str(registry_port),
        "INLET_GATEWAY_PORT": str(gateway_port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "deploy.cli", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    up = Up(process, env)
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 120
        banner = ""
        while "Inlet is up" not in banner:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                pytest.fail(f"inlet up exited with {process.returncode} before it was up")
            banner += line
            assert time.monotonic() < deadline, "inlet up did not come up in 120s"
        yield up
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _stop_and_check_nothing_left(up: Up) -> None:
    family = _descendants(up.process.pid)
    assert family, "inlet up should have started Kafka and the services"
    up.process.send_signal(signal.SIGINT)
    assert up.process.wait(60) == 0
    deadline = time.monotonic() + 30
    while any(_running(pid) for pid in family) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in family if _running(pid)] == []


def test_up_serves_health_round_trips_and_keeps_data_across_restarts(tmp_path: Path) -> None:
    if IN_CI and not os.environ.get("JAVA_HOME") and not Path("/usr/bin/java").exists():
        pytest.fail("CI needs Java for `inlet up`")
    topic = f"e2e-{uuid.uuid4().hex[:8]}"
    with inlet_up(tmp_path) as up:
        assert _get(up.registry + "/health") == 200
        assert _get(up.gateway + "/health") == 200
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
        _stop_and_check_nothing_left(up)


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


def test_killing_up_takes_kafka_and_services_with_it(tmp_path: Path) -> None:
    with inlet_up(tmp_path) as up:
        family = _descendants(up.process.pid)
        up.process.kill()  # no chance to clean up: the parent-death signal must do it
        up.process.wait()
        deadline = time.monotonic() + 30
        while any(_running(pid) for pid in family) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [pid for pid in family if _running(pid)] == []


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
