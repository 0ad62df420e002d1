"""Process helpers for every Inlet process tree: children that die with their parent, ports for
servers (bound sockets to hand over, spare ports for those that bind their own), children whose
stderr goes to a file."""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path


def listening_socket(host: str = "127.0.0.1") -> socket.socket:
    """A TCP socket listening on ``host``, on a port the OS assigns, to hand to a server.

    Whoever starts a server binds its port and passes the socket on (``INLET_*_LISTEN_FD`` and
    ``pass_fds`` for a process, ``sockets=`` for uvicorn in a thread): a port picked, closed and
    bound again by the server could be taken by another process in between. Listening already,
    it queues the connections that come before the server accepts.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((host, 0))
        sock.listen(socket.SOMAXCONN)
    except OSError:
        sock.close()
        raise
    return sock


_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# Below this: the ports local services are usually configured on (databases, brokers, 8080).
_LOWEST_SPARE_PORT = 10_000


def ephemeral_ports() -> range:
    """The kernel's ephemeral range: where it picks the local port of an outgoing connection
    (and of a bind to port 0). Linux's default when it cannot be read."""
    try:
        low, high = map(int, _EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def spare_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` different ports outside the kernel's ephemeral range, free when asked.

    For the servers that cannot be handed a bound socket (a Kafka JVM's listeners and controller
    quorum, PostgreSQL) and for those that bind the same port again after a restart (the chaos
    suite's): the kernel never gives these ports to another process's outgoing connection or
    port-0 bind, so between this check and the server's bind only another server choosing the
    same port can take one. The caller tells that from the server's failure to bind ("Address
    already in use") and starts it again on new ports (``deploy/broker.py``, ``tests/postgres.py``).
    Chosen at random among the spare ports, so that concurrent test sessions rarely collide.
    """
    ephemeral = ephemeral_ports()
    candidates = [
        *range(_LOWEST_SPARE_PORT, max(_LOWEST_SPARE_PORT, ephemeral.start)),
        *range(max(_LOWEST_SPARE_PORT, ephemeral.stop), 65536),
    ]
    chosen: list[int] = []
    for _ in range(100 * count if candidates else 0):
        port = random.choice(candidates)  # noqa: S311 - spreading, not secrecy
        if port not in chosen and _bindable(host, port):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise OSError(f"no {count} free ports outside the ephemeral range {ephemeral}")


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


ORPHANED_EXIT_CODE = 70  # a child whose parent died before it could ask to die with it
# Loaded here, not in the child: after a fork, only the prctl call itself should run.
_LIBC = ctypes.CDLL("libc.so.6", use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent(signum: int = signal.SIGTERM, *, parent: int | None = None) -> None:
    """In a child (before exec, or first thing after): the kernel sends ``signum`` when the parent
    dies (Linux only).

    The request is made once the child runs, so a parent that died before it would never send the
    signal: given ``parent`` (the pid the child was started by, passed down), a child whose parent
    is already someone else exits at once. The signal comes when the parent *thread* that started
    the child ends: start children from a thread that lives as long as the process.
    """
    if _LIBC is not None:
        _LIBC.prctl(1, signum)  # PR_SET_PDEATHSIG
    if parent is not None and os.getppid() != parent:
        os._exit(ORPHANED_EXIT_CODE)


@contextlib.contextmanager
def stderr_to(path: Path) -> Iterator[None]:
    """File descriptor 2 goes to ``path`` in the block, so children started in it inherit that."""
    sys.stderr.flush()
    saved = os.dup(2)
    with path.open("ab") as out:
        os.dup2(out.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
