"""Process helpers for every Inlet process tree: children that die with their parent, free ports,
children whose stderr goes to a file."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path


def free_ports(count: int) -> list[int]:
    """Ports the OS assigns now (bound together so they differ), released for the broker to take."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


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
