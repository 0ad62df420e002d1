"""The listening socket a server is handed by file descriptor (``INLET_*_LISTEN_FD``).

Whoever starts the server (a test, a supervisor, ``inlet up``) binds the port and passes the
socket on: a port the server picked and bound itself could be taken between the pick and the bind.
The socket is built with ``socket.socket(fileno=fd)``, which reads its family from the kernel
(uvicorn's own ``fd=`` takes every descriptor for a Unix socket), and given to uvicorn, whose
worker processes inherit it.
"""

from __future__ import annotations

import socket

from inlet.settings import SettingsError


def inherited_socket(fd: int, *, variable: str, port: int, port_variable: str) -> socket.socket:
    """The TCP socket open at ``fd``, checked to be bound to ``port``; ``SettingsError`` if not."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise SettingsError(f"{variable}={fd}: not an open socket ({exc.strerror})") from exc
    problem = _problem(sock, port)
    if problem is not None:
        sock.detach()  # not ours to close: the error is reported, the descriptor left as found
        raise SettingsError(f"{variable}={fd}: {problem} ({port_variable}={port})")
    return sock


def _problem(sock: socket.socket, port: int) -> str | None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
        return "not a TCP socket"
    bound = sock.getsockname()[1]
    if bound != port:
        # The URLs handed out (ingest URLs, the banner) are built from the port setting.
        return f"bound to port {bound}, not to the port setting: give both the same port"
    return None
