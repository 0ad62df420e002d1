"""One service process as a deployment runs it, without Kafka: stopped at any moment, killed, or
failing, on a machine whose cores are all busy; and its log lines, on a terminal and off one."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from inlet.process import listening_socket
from tests.cpu_load import busy_cores
from tests.processes import commands, marked, new_mark

pytestmark = [pytest.mark.e2e]

_STOP_WITHIN_S = 15.0


@pytest.fixture
def cpu_load() -> Iterator[list[int]]:
    with busy_cores() as pids:
        yield pids


@pytest.fixture
def ports() -> Iterator[dict[str, str]]:
    """The ports' variables: Kafka on a port bound here but not listening (connections to it are
    refused; nothing else can take it), and the service's port, bound here and handed over."""
    with socket.socket() as no_kafka, listening_socket() as service:
        no_kafka.bind(("127.0.0.1", 0))
        port, fd = str(service.getsockname()[1]), str(service.fileno())
        yield {
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{no_kafka.getsockname()[1]}",
            "INLET_REGISTRY_PORT": port,
            "INLET_REGISTRY_LISTEN_FD": fd,
            "INLET_GATEWAY_PORT": port,
            "INLET_GATEWAY_LISTEN_FD": fd,
        }


def _env(tmp_path: Path, ports: dict[str, str], **extra: str) -> dict[str, str]:
    # The services' start-up waits on the Kafka that refuses connections (then fails, ~30 s).
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("INLET_")},
        "INLET_DATA_DIR": str(tmp_path / "data"),
        "INLET_CACHE_DIR": str(tmp_path / "cache"),
        "INLET_ADMIN_TOKEN": "e2e-admin-token-e2e-admin-token",
        **ports,
        **new_mark(),
        **extra,
    }


@contextlib.contextmanager
def _service(
    command: str, env: dict[str, str], stderr_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "deploy.cli", command],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            pass_fds=(int(env["INLET_GATEWAY_LISTEN_FD"]),),
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in marked(env):  # only if a test failed: leave nothing running
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _wait_for_line(path: Path, text: str, process: subprocess.Popen[bytes], count: int = 1) -> None:
    deadline = time.monotonic() + 90
    while path.read_text(errors="replace").count(text) < count:
        assert process.poll() is None, f"exited ({process.returncode}): {path.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"no {text!r} on stderr: {path.read_text()[-2000:]}"
        time.sleep(0.05)


def _wait_none_left(env: dict[str, str], since: float) -> None:
    deadline = since + _STOP_WITHIN_S
    while (left := marked(env)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == set(), f"still running {_STOP_WITHIN_S:.0f}s after the stop: {commands(left)}"


@pytest.mark.usefixtures("cpu_load")
@pytest.mark.parametrize(("service", "workers"), [("gateway", 2), ("registry", 1)])
def test_sigterm_during_start_up_stops_every_process_of_a_service(
    tmp_path: Path, ports: dict[str, str], service: str, workers: int
) -> None:
    """Its start-up is waiting on Kafka: uvicorn alone would run it to the end (~30 s here)."""
    env = _env(tmp_path, ports)
    stderr = tmp_path / "stderr"
    with _service(service, env, stderr) as process:
        _wait_for_line(stderr, "Waiting for application startup.", process, count=workers)
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(_STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{service} still running {_STOP_WITHIN_S:.0f}s after SIGTERM")
        _wait_none_left(env, sent)


@pytest.mark.usefixtures("cpu_load")
def test_sigterm_during_start_up_stops_the_consumers(tmp_path: Path, ports: dict[str, str]) -> None:
    """Their start-up waits on Kafka in a worker thread (the state topics' creation), which no
    cancellation reaches: the process must go all the same."""
    env = _env(tmp_path, ports, INLET_CONSUMERS_METRICS_PORT="0")  # a port the system picks
    stderr = tmp_path / "stderr"
    with _service("consumers", env, stderr) as process:
        _wait_for_line(stderr, "metrics served", process)  # the workers are starting now
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(_STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the consumers still running {_STOP_WITHIN_S:.0f}s after SIGTERM")
        assert process.returncode == 0
        _wait_none_left(env, sent)


@pytest.mark.usefixtures("cpu_load")
def test_a_killed_gateway_server_takes_its_starting_workers_with_it(
    tmp_path: Path, ports: dict[str, str]
) -> None:
    env = _env(tmp_path, ports)
    stderr = tmp_path / "stderr"
    with _service("gateway", env, stderr) as process:
        # As soon as the workers exist, before they could ask to die with their server.
        deadline = time.monotonic() + 90
        while not any("multiprocessing.spawn" in c for c in commands(marked(env))):
            assert process.poll() is None, stderr.read_text()[-2000:]
            assert time.monotonic() < deadline, "the gateway's workers never started"
            time.sleep(0.01)
        killed = time.monotonic()
        process.kill()
        process.wait()
        _wait_none_left(env, killed)


def _fatal(tmp_path: Path, stderr: int, **extra: str) -> int:
    """`inlet kafka` with neither cached jars nor Maven: a fatal error, logged, exit 1."""
    env = _env(tmp_path, {}, PATH=str(tmp_path), **extra)  # an empty PATH: no mvn, no java
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    return subprocess.run(
        [sys.executable, "-m", "deploy.cli", "kafka"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        timeout=60,
        check=False,
    ).returncode


def test_a_fatal_errors_last_log_line_reaches_stderr_as_json_when_not_a_terminal(
    tmp_path: Path,
) -> None:
    with (tmp_path / "stderr").open("wb") as stderr:
        assert _fatal(tmp_path, stderr.fileno()) == 1
    *_, last = (json.loads(line) for line in (tmp_path / "stderr").read_text().splitlines())
    assert (last["level"], last["logger"]) == ("error", "inlet.cli")
    assert last["msg"] == "kafka could not start"
    assert "Maven" in last["error"]


def _on_a_terminal(tmp_path: Path, **extra: str) -> list[str]:
    """What the command prints on a terminal (a pseudo-terminal as its stderr)."""
    controller, terminal = pty.openpty()
    try:
        assert _fatal(tmp_path, terminal, **extra) == 1
        os.close(terminal)
        terminal = -1
        out = b""
        with contextlib.suppress(OSError):  # EIO: the terminal's other side is closed
            while chunk := os.read(controller, 65536):
                out += chunk
    finally:
        os.close(controller)
        if terminal != -1:
            os.close(terminal)
    return out.decode().splitlines()


def test_on_a_terminal_lines_are_for_a_person_unless_json_is_asked_for(tmp_path: Path) -> None:
    *_, last = _on_a_terminal(tmp_path)
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d\.\d{3} ERROR \[kafka\] inlet\.cli: kafka could not start "
        r"error=\".*Maven.*\"",
        last,
    ), last
    *_, last = _on_a_terminal(tmp_path, INLET_LOG_FORMAT="json")
    assert json.loads(last)["msg"] == "kafka could not start"
