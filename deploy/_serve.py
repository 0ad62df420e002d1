"""Serving an app with uvicorn, in one process or several, so that it starts and stops cleanly.

- Each worker process, as soon as uvicorn hands it control (after importing ``deploy.cli``, kept
  light for that), asks to die with the server process and exits if that one is already gone,
  then sets up Inlet's logging: a killed server leaves no worker behind.
- A new worker has ``worker_startup_timeout_s`` to answer the server's first health check; uvicorn's
  5 s killed workers that were only slow to start on a busy machine, over and over. Waiting for an
  answer never keeps the server from handling a signal or a worker's death.
- Connections are bounded (``deploy/_connections.py``): a deadline for each phase of a request,
  uvicorn's keep-alive timeout from a connection's first moment, a cap per process sized below its
  file-descriptor limit (raised to the hard limit here first, before workers inherit it). No
  ``server`` header: what runs behind the port is nobody's business; ``date`` stays.
- A stop ends: a worker that has not finished starting is killed at once (uvicorn would run its
  whole start-up first, which waits on Kafka), a started one gets ``STOP_GRACE_S`` to finish its
  requests and close its clients, then is killed. Every service is safe to kill: its state is in
  Kafka, written transactionally.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import socket
import time
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from deploy._connections import (
    ConnectionLimits,
    DeadlineProtocol,
    connection_cap,
    raise_nofile_limit,
)
from inlet.logs import flush_logs, setup_logging
from inlet.process import die_with_parent
from inlet.settings import Settings

logger = logging.getLogger("inlet.serve")

# How long a started server has, after SIGTERM, to finish in-flight requests and shut down.
STOP_GRACE_S = 6.0
# Of that, how long uvicorn waits for in-flight requests (then its app shutdown runs).
_REQUESTS_GRACE_S = 4
# How long a worker that answered the health check before has to answer it again.
_LIVENESS_TIMEOUT_S = 10.0
_SLICE_S = 0.25


class _Config(uvicorn.Config):
    """uvicorn's configuration, carrying what a worker process does before anything else."""

    def __init__(
        self,
        app: str,
        *,
        service: str,
        settings: Settings,
        connection_limits: ConnectionLimits,
        **kwargs: Any,
    ) -> None:
        self.connection_limits = connection_limits  # read by DeadlineProtocol
        # Set before uvicorn's __init__, which calls configure_logging.
        self.server_pid = os.getpid()
        self.service = service
        self.inlet_log_level = settings.log_level
        self.inlet_log_format = settings.log_format
        super().__init__(app, **kwargs)

    def configure_logging(self) -> None:
        # uvicorn calls this first in a new worker process, before it imports the app.
        if os.getpid() != self.server_pid:
            die_with_parent(signal.SIGKILL, parent=self.server_pid)
            setup_logging(self.inlet_log_level, self.service, self.inlet_log_format)
        super().configure_logging()


class _Server(uvicorn.Server):
    """The single-process server: a stop signal during start-up ends the process at once."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.started:
            flush_logs()
            os._exit(128 + sig)  # nothing to finish; the start-up may be waiting on Kafka
        super().handle_exit(sig, frame)


class _Supervisor(Multiprocess):
    """uvicorn's worker supervisor, with a health check that never stalls it and a stop that ends.

    uvicorn waits for each worker's answer for the whole health-check timeout, handling neither
    signals nor deaths meanwhile (a worker that dies with a ping in flight is noticed only when
    the timeout ends: its pipe stays open in the supervisor). Here the wait is cut into slices that
    look at the worker's process and the signal queue; a new worker has the start-up timeout for
    its first answer, a worker that answered before has ``_LIVENESS_TIMEOUT_S``.
    """

    def __init__(self, config: uvicorn.Config, sockets: list[Any]) -> None:
        super().__init__(config, sockets)
        self.startup_failed = False
        self._answered: set[int | None] = set()

    def _answers(self, process: Process) -> bool:
        started = process.pid in self._answered
        timeout = _LIVENESS_TIMEOUT_S if started else self.config.timeout_worker_healthcheck
        deadline = time.monotonic() + timeout
        try:
            process.parent_conn.send(b"ping")
            while not process.parent_conn.poll(_SLICE_S):
                if not process.process.is_alive():
                    return False
                if self.signal_queue or self.should_exit.is_set():
                    return True  # not now: the supervisor has a signal to handle first
                if time.monotonic() > deadline:
                    return False
            process.parent_conn.recv()
        except (OSError, EOFError, pickle.UnpicklingError):
            return False
        self._answered.add(process.pid)
        return True

    def keep_subprocess_alive(self) -> None:
        # uvicorn's, with _answers for its blocking is_alive.
        if self.should_exit.is_set():
            return
        for idx, process in enumerate(self.processes):
            if self._answers(process):
                continue
            process.kill()
            process.join()
            self._answered.discard(process.pid)
            if process.exitcode == STARTUP_FAILURE:  # the app cannot start: nor would a new one
                logger.error("a worker failed to start; stopping", extra={"pid": process.pid})
                self.startup_failed = True
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            logger.warning(
                "a worker died or stopped answering; starting another",
                extra={"pid": process.pid, "exit_code": process.exitcode},
            )
            replacement = Process(self.config, self.sockets)
            replacement.start()
            self.processes[idx] = replacement

    def terminate_all(self) -> None:
        for process in self.processes:
            if process.is_ready(timeout=1):
                process.terminate()
            else:  # still starting (or hung): SIGTERM would wait for its start-up to end
                process.kill()

    def join_all(self) -> None:
        deadline = time.monotonic() + STOP_GRACE_S
        for process in self.processes:
            process.process.join(max(0.0, deadline - time.monotonic()))
            if process.process.is_alive():
                process.kill()
                process.join()
            self.startup_failed |= process.exitcode == STARTUP_FAILURE


def _connection_limits(settings: Settings) -> ConnectionLimits:
    before, nofile = raise_nofile_limit()
    cap = connection_cap(settings.http_max_connections, nofile)
    logger.info(
        "connections per process",
        extra={"max": cap, "rlimit_nofile": nofile, "rlimit_nofile_was": before},
    )
    if cap < settings.http_max_connections:
        logger.warning(
            "INLET_HTTP_MAX_CONNECTIONS lowered to fit the file-descriptor limit",
            extra={"wanted": settings.http_max_connections, "max": cap, "rlimit_nofile": nofile},
        )
    return ConnectionLimits(
        head_s=settings.http_head_timeout_s,
        body_s=settings.http_body_timeout_s,
        body_min_rate=settings.http_body_min_rate,
        max_connections=cap,
        max_head_bytes=settings.http_max_head_bytes,
    )


def server_config(
    app: Any, *, service: str, settings: Settings, port: int = 0, workers: int = 1
) -> uvicorn.Config:
    """The one configuration of Inlet's HTTP servers: ``app`` a "module:function" factory (or,
    for ``bench/request_bench.py``, an ASGI app)."""
    return _Config(
        app,
        service=service,
        settings=settings,
        connection_limits=_connection_limits(settings),
        factory=isinstance(app, str),
        host=settings.host,
        port=port,
        workers=workers,
        log_config=None,  # Inlet's logging (set up again in each worker process)
        access_log=False,
        # No X-Forwarded-* rewriting per request: nothing Inlet logs or answers uses the client's
        # address (measured: ~5% of a single-record request's CPU).
        proxy_headers=False,
        lifespan="on",
        http=DeadlineProtocol,  # httptools (uvicorn[standard]), with deadlines and the cap
        ws="none",
        timeout_keep_alive=settings.http_keep_alive_timeout_s,
        server_header=False,
        timeout_worker_healthcheck=settings.worker_startup_timeout_s,
        timeout_graceful_shutdown=_REQUESTS_GRACE_S,
    )


def serve(
    app_factory: str,
    *,
    service: str,
    port: int,
    settings: Settings,
    workers: int = 1,
    listening: socket.socket | None = None,
) -> int:
    """Serve ``app_factory`` ("module:function") until a stop signal; the exit code.

    On ``listening`` when given (a socket bound by whoever started the server: ``_listen.py``),
    else on a socket bound here to ``settings.host``:``port``.
    """
    config = server_config(
        app_factory, service=service, settings=settings, port=port, workers=workers
    )
    if workers > 1:
        # The worker processes inherit the socket (multiprocessing passes it on at their spawn).
        supervisor = _Supervisor(config, sockets=[listening or config.bind_socket()])
        supervisor.run()
        return STARTUP_FAILURE if supervisor.startup_failed else 0
    server = _Server(config)
    server.run(sockets=None if listening is None else [listening])
    return 0 if server.started else STARTUP_FAILURE
