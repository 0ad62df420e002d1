"""Process helpers for every Inlet process tree: children that die with their parent, free ports."""

from __future__ import annotations

import ctypes
import signal
import socket
import sys


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


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """In a child, before exec: the kernel sends ``signum`` when the parent dies (Linux only)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signum)  # PR_SET_PDEATHSIG
