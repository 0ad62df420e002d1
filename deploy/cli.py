"""The ``inlet`` command.

``up`` runs everything; ``kafka``, ``registry``, ``gateway`` and ``consumers`` run one part each,
for real deployments.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from litestar import Litestar

from deploy.broker import BrokerError, LocalKafka
from inlet.logs import setup_logging
from inlet.process import die_with_parent
from inlet.settings import Settings, SettingsError, load_settings
from inlet.tokens import ensure_admin_token, ensure_secret_key

log = logging.getLogger("inlet.cli")

SERVICES = ("registry", "gateway", "consumers")
# prometheus_client's multiprocess mode: only the gateway (several workers) uses it.
MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def _stop_event() -> threading.Event:
    """An event set by Ctrl-C or SIGTERM."""
    stop = threading.Event()

    def _handler(signum: int, _frame: object) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    return stop


@contextmanager
def _kafka(settings: Settings, *, ephemeral: bool) -> Iterator[str]:
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
        broker.stop()


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
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


def _terminate(processes: list[subprocess.Popen[bytes]], timeout_s: float = 10.0) -> None:
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
  admin API + schema registry: {registry}
  gateway (ingest):            {settings.gateway_url}
  admin token{note}: {token}

Create a connector:
  curl -s -X POST {registry}/v1/connectors \\
    -H "Authorization: Bearer {token}" -H "Content-Type: application/json" \\
    -d '{json.dumps(_EXAMPLE_CONNECTOR)}'
Then POST records to the "ingest_url" it returns.  Ctrl-C stops everything.
"""


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    stop = _stop_event()
    token, created = ensure_admin_token(settings.admin_token, Path(settings.data_dir))
    secret_key = ensure_secret_key(settings.secret_key, Path(settings.data_dir))
    with _kafka(settings, ephemeral=args.ephemeral) as bootstrap:
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "INLET_ADMIN_TOKEN": token,
            "INLET_SECRET_KEY": secret_key,
        }
        children: list[subprocess.Popen[bytes]] = []
        try:
            for service in SERVICES:
                child = subprocess.Popen(
                    [sys.executable, "-m", "deploy.cli", service],
                    env=env,
                    # An orphaned service is killed outright: a graceful stop could wait on a Kafka
                    # that died with `up`, and every service is safe to kill (crash-safe state).
                    preexec_fn=functools.partial(die_with_parent, signal.SIGKILL),  # noqa: PLW1509
                )
                children.append(child)
            for port, child in (
                (settings.registry_port, children[0]),
                (settings.gateway_port, children[1]),
            ):
                _wait_healthy(f"http://{settings.host}:{port}/health", child)
            print(_banner(settings, token, created), flush=True)
            while not stop.wait(0.5):
                dead = [c for c in children if c.poll() is not None]
                if dead:
                    log.error(
                        "a service exited; stopping",
                        extra={"exit_codes": [c.returncode for c in dead]},
                    )
                    return 1
        finally:
            _terminate(children)
    return 0


def cmd_kafka(settings: Settings, args: argparse.Namespace) -> int:
    stop = _stop_event()
    if settings.kafka_bootstrap_servers:
        print(
            "KAFKA_BOOTSTRAP_SERVERS is set: Inlet uses that cluster and starts none.",
            file=sys.stderr,
        )
        return 2
    with _kafka(settings, ephemeral=args.ephemeral) as bootstrap:
        print(f"Kafka is up: KAFKA_BOOTSTRAP_SERVERS={bootstrap}  (Ctrl-C stops it)", flush=True)
        stop.wait()
    return 0


def _serve(app_factory: str, port: int, settings: Settings, workers: int = 1) -> int:
    import uvicorn  # noqa: PLC0415 - only the service commands need the server

    uvicorn.run(
        app_factory,
        factory=True,
        host=settings.host,
        port=port,
        workers=workers,
        log_config=None,  # our JSON logging (set up again in each worker process)
        access_log=False,
        # No X-Forwarded-* rewriting per request: nothing Inlet logs or answers uses the client's
        # address (measured: ~5% of a single-record request's CPU).
        proxy_headers=False,
        lifespan="on",
    )
    return 0


def _in_worker_process(service: str) -> Settings:
    """Settings and logging for an app built in a server's worker process.

    With several workers, uvicorn spawns fresh interpreters that inherit neither our logging nor a
    parent-death signal: set both, so a worker never outlives its server process.
    """
    settings = load_settings()
    if multiprocessing.parent_process() is not None:
        setup_logging(settings.log_level, service=service)
        die_with_parent(signal.SIGKILL)
    return settings


def registry_app() -> Litestar:
    from registry.app import create_app  # noqa: PLC0415 - each service imports only its own app

    return create_app(_in_worker_process("registry"))


def gateway_app() -> Litestar:
    from gateway.app import create_app  # noqa: PLC0415 - each service imports only its own app

    return create_app(_in_worker_process("gateway"))


def cmd_registry(settings: Settings, _args: argparse.Namespace) -> int:
    return _serve("deploy.cli:registry_app", settings.registry_port, settings)


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
    return _serve(
        "deploy.cli:gateway_app", settings.gateway_port, settings, settings.gateway_workers
    )


def cmd_consumers(settings: Settings, _args: argparse.Namespace) -> int:
    from consumers.main import run  # noqa: PLC0415 - only this command needs the workers

    return run(settings)


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
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"inlet: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, service=args.command)
    # One process each, the other services keep their metrics in memory; `inlet gateway` sets its
    # own directory. (A value inherited from elsewhere would be shared by unrelated processes.)
    os.environ.pop(MULTIPROC_DIR_VARIABLE, None)
    try:
        return int(args.run(settings, args))
    except BrokerError as exc:
        log.error("kafka could not start", extra={"error": str(exc)})  # noqa: TRY400 - no traceback
        return 1


if __name__ == "__main__":
    sys.exit(main())
