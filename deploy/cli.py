"""The ``inlet`` command.

``up`` runs everything; ``kafka``, ``registry``, ``gateway`` and ``consumers`` run one part each,
for real deployments; ``send`` sends a file's records to an ingest URL (``deploy/send.py``).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from deploy._listen import inherited_socket
from deploy._serve import STOP_GRACE_S, serve
from deploy.broker import BrokerError, LocalKafka
from inlet.logs import flush_logs, setup_logging
from inlet.process import die_with_parent
from inlet.settings import Settings, SettingsError, load_settings
from inlet.tokens import ensure_admin_token, ensure_secret_key

if TYPE_CHECKING:
    # Only named here: each server worker imports this module first (as multiprocessing's
    # __mp_main__), and answers the server's health checks only after that.
    from litestar import Litestar
    from litestar.types import ASGIApp

log = logging.getLogger("inlet.cli")

SERVICES = ("registry", "gateway", "consumers")
# prometheus_client's multiprocess mode: only the gateway (several workers) uses it.
MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# `inlet up` stops everything within this (the bound is 15 s; this leaves a margin): the
# services first, each given at most SERVICES_STOP_S (a started server's own grace, then SIGKILL),
# then the broker, with what remains but at least _KAFKA_STOP_MIN_S for a controlled shutdown.
STOP_WITHIN_S = 12.0
SERVICES_STOP_S = STOP_GRACE_S + 1.0
_KAFKA_STOP_MIN_S = 3.0


class _Stop(BaseException):
    """Raised by the first SIGINT/SIGTERM: ends whatever the command was waiting on.

    A BaseException, as KeyboardInterrupt is, so that no ``except Exception`` on the way (a
    readiness poll, a retry) takes it for an error and carries on starting.
    """


class _Signals:
    """SIGINT/SIGTERM stop the command at any moment, start-up included.

    The first signal raises ``_Stop`` wherever the main thread is (starting Kafka, waiting for a
    service's health), so the ``finally`` blocks that stop what was started run at once. Once
    stopping, signals only set ``stopped``: cleanup must not be interrupted halfway.
    """

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self._raising = True
        self._stop_deadline: float | None = None
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        self.stopped.set()
        if self._raising:
            self._raising = False
            raise _Stop

    def stopping(self) -> None:
        """From here on a signal no longer interrupts: the caller is stopping already."""
        self._raising = False
        if self._stop_deadline is None:
            self._stop_deadline = time.monotonic() + STOP_WITHIN_S

    @property
    def stop_deadline(self) -> float:
        """When everything must have stopped: ``STOP_WITHIN_S`` after stopping began."""
        self.stopping()
        assert self._stop_deadline is not None
        return self._stop_deadline


@contextmanager
def _kafka(settings: Settings, signals: _Signals, *, ephemeral: bool) -> Iterator[str]:
    """The configured cluster, or a local broker for the duration of the block."""
    if settings.kafka_bootstrap_servers:
        yield settings.kafka_bootstrap_servers
        return
    broker = LocalKafka(
        data_dir=None if ephemeral else Path(settings.data_dir) / "kafka",
        cache_dir=Path(settings.cache_dir),
        nodes=settings.kafka_nodes,
        first_port=settings.kafka_port,
        heap=settings.kafka_heap,
    )
    try:
        yield broker.start()
    finally:
        signals.stopping()
        broker.stop(timeout_s=max(_KAFKA_STOP_MIN_S, signals.stop_deadline - time.monotonic()))


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode} before becoming healthy")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own URL
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not healthy after {timeout_s:.0f}s")


def _terminate(processes: list[subprocess.Popen[bytes]], timeout_s: float) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + timeout_s
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_EXAMPLE_CONNECTOR = {
    "name": "orders",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "total", "type": "decimal", "precision": 10, "scale": 2},
    ],
}


def _banner(settings: Settings, token: str, created: bool) -> str:
    registry = settings.registry_url
    note = " (new; stored in the data dir — keep it secret)" if created else ""
    return f"""
Inlet is up.
  console (open in a browser): {registry}/console/  (sign in with the admin token)
  admin API + schema registry: {registry}
  gateway (ingest):            {settings.gateway_url}
  admin token{note}: {token}

Create a connector:
  curl -s -X POST {registry}/v1/connectors \\
    -H "Authorization: Bearer {token}" -H "Content-Type: application/json" \\
    -d '{json.dumps(_EXAMPLE_CONNECTOR)}'
Then POST records to the "ingest_url" it returns.  Ctrl-C stops everything.
"""


def _handed_fds(settings: Settings, service: str) -> tuple[int, ...]:
    """The listening socket `inlet up` was handed for ``service`` (its environment names it too)."""
    fd = {"registry": settings.registry_listen_fd, "gateway": settings.gateway_listen_fd}.get(
        service
    )
    return () if fd is None else (fd,)


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    signals = _Signals()
    token, created = ensure_admin_token(settings.admin_token, Path(settings.data_dir))
    secret_key = ensure_secret_key(settings.secret_key, Path(settings.data_dir))
    with _kafka(settings, signals, ephemeral=args.ephemeral) as bootstrap:
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "INLET_ADMIN_TOKEN": token,
            "INLET_SECRET_KEY": secret_key,
        }
        children: list[subprocess.Popen[bytes]] = []
        try:
            for service in SERVICES:
                handed = _handed_fds(settings, service)
                child = subprocess.Popen(
                    [sys.executable, "-m", "deploy.cli", service],
                    env=env,
                    pass_fds=handed,
                    # An orphaned service is killed outright: a graceful stop could wait on a Kafka
                    # that died with `up`, and every service is safe to kill (crash-safe state).
                    preexec_fn=functools.partial(  # noqa: PLW1509 - only prctl and getppid
                        die_with_parent, signal.SIGKILL, parent=os.getpid()
                    ),
                )
                children.append(child)
                for fd in handed:  # the service's now: a dead one must not leave it listening
                    os.close(fd)
            for port, child in (
                (settings.registry_port, children[0]),
                (settings.gateway_port, children[1]),
            ):
                _wait_healthy(f"http://{settings.host}:{port}/health", child)
            print(_banner(settings, token, created), flush=True)
            while not signals.stopped.wait(0.5):
                dead = [c for c in children if c.poll() is not None]
                if dead:
                    log.error(
                        "a service exited; stopping",
                        extra={"exit_codes": [c.returncode for c in dead]},
                    )
                    return 1
        finally:
            signals.stopping()
            _terminate(children, SERVICES_STOP_S)
    return 0


def cmd_kafka(settings: Settings, args: argparse.Namespace) -> int:
    signals = _Signals()
    if settings.kafka_bootstrap_servers:
        print(
            "KAFKA_BOOTSTRAP_SERVERS is set: Inlet uses that cluster and starts none.",
            file=sys.stderr,
        )
        return 2
    with _kafka(settings, signals, ephemeral=args.ephemeral) as bootstrap:
        print(f"Kafka is up: KAFKA_BOOTSTRAP_SERVERS={bootstrap}  (Ctrl-C stops it)", flush=True)
        signals.stopped.wait()
    return 0


def registry_app() -> Litestar:
    from registry.app import create_app  # noqa: PLC0415 - each service imports only its own app

    return create_app(load_settings())


def gateway_app() -> ASGIApp:
    from gateway.app import create_app  # noqa: PLC0415 - each service imports only its own app

    return create_app(load_settings())


def cmd_registry(settings: Settings, _args: argparse.Namespace) -> int:
    return serve(
        "deploy.cli:registry_app",
        service="registry",
        port=settings.registry_port,
        settings=settings,
        listening=_handed_socket(settings.registry_listen_fd, "registry", settings.registry_port),
    )


def _handed_socket(fd: int | None, service: str, port: int) -> socket.socket | None:
    """The socket ``INLET_<SERVICE>_LISTEN_FD`` names, if set (``deploy/_listen.py``)."""
    if fd is None:
        return None
    prefix = f"INLET_{service.upper()}"
    return inherited_socket(
        fd, variable=f"{prefix}_LISTEN_FD", port=port, port_variable=f"{prefix}_PORT"
    )


def _gateway_metrics_dir(settings: Settings) -> Path:
    """Where the gateway's workers keep their metric files (``gateway/metrics.py``): one directory
    per gateway instance, like its rate-limit table, made empty at every start."""
    path = Path(settings.data_dir) / "gateway" / f"metrics-{settings.gateway_port}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def cmd_gateway(settings: Settings, _args: argparse.Namespace) -> int:
    # Before the workers start (and import prometheus_client): they inherit the environment.
    os.environ[MULTIPROC_DIR_VARIABLE] = str(_gateway_metrics_dir(settings))
    # Measured (bench/README.md): two gateway processes beat one on 2 cores, even beside Kafka.
    return serve(
        "deploy.cli:gateway_app",
        service="gateway",
        port=settings.gateway_port,
        settings=settings,
        workers=settings.gateway_workers,
        listening=_handed_socket(settings.gateway_listen_fd, "gateway", settings.gateway_port),
    )


def cmd_consumers(settings: Settings, _args: argparse.Namespace) -> int:
    from consumers.main import run  # noqa: PLC0415 - only this command needs the workers

    return run(settings)


def _send_arguments(parser: argparse.ArgumentParser) -> None:
    from deploy.send import add_arguments  # noqa: PLC0415 - rich and httpx only for `send`

    add_arguments(parser)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inlet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start Kafka (unless configured), the registry and the gateway")
    up.add_argument("--ephemeral", action="store_true", help="keep no Kafka data after stopping")
    up.set_defaults(run=cmd_up)
    kafka = sub.add_parser("kafka", help="run only the local Kafka broker")
    kafka.add_argument("--ephemeral", action="store_true", help="keep no data after stopping")
    kafka.set_defaults(run=cmd_kafka)
    sub.add_parser("registry", help="run the registry + admin API").set_defaults(run=cmd_registry)
    sub.add_parser("gateway", help="run the ingest gateway").set_defaults(run=cmd_gateway)
    sub.add_parser("consumers", help="run the consumer workers").set_defaults(run=cmd_consumers)
    send = sub.add_parser("send", help="send a JSON, NDJSON or CSV file to an ingest URL")
    _send_arguments(send)
    args = parser.parse_args(argv)
    if args.command == "send":  # a client: no settings, no service logging
        from deploy.send import cmd_send  # noqa: PLC0415 - only this command needs it

        return cmd_send(args)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"inlet: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, service=args.command, log_format=settings.log_format)
    # One process each, the other services keep their metrics in memory; `inlet gateway` sets its
    # own directory. (A value inherited from elsewhere would be shared by unrelated processes.)
    os.environ.pop(MULTIPROC_DIR_VARIABLE, None)
    try:
        return int(args.run(settings, args))
    except _Stop:  # stopped during start-up: what was started is stopped by now
        return 0
    except SettingsError as exc:  # found only once the command looked (a handed socket)
        print(f"inlet: {exc}", file=sys.stderr)
        return 2
    except BrokerError as exc:
        log.error("kafka could not start", extra={"error": str(exc)})  # noqa: TRY400 - no traceback
        return 1
    finally:
        flush_logs()  # the last lines (often the reason for the exit) before anything else ends


if __name__ == "__main__":
    sys.exit(main())
