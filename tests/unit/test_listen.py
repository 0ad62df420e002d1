"""The socket a server is handed by file descriptor (deploy/_listen.py)."""

from __future__ import annotations

import os
import socket

import pytest

from deploy._listen import inherited_socket
from inlet.settings import SettingsError


def _inherit(sock: socket.socket, port: int) -> socket.socket:
    return inherited_socket(
        sock.fileno(), variable="INLET_GATEWAY_LISTEN_FD", port=port, port_variable="P"
    )


@pytest.mark.parametrize(
    ("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]
)
def test_the_family_is_the_sockets_own(family: socket.AddressFamily, host: str) -> None:
    with socket.socket(family, socket.SOCK_STREAM) as bound:
        bound.bind((host, 0))
        inherited = _inherit(bound, bound.getsockname()[1])
        assert inherited.family == family  # uvicorn's fd= would have taken it for AF_UNIX
        assert inherited.getsockname() == bound.getsockname()
        inherited.detach()  # the same descriptor: closed once, by `bound`


def test_a_socket_bound_elsewhere_than_the_port_setting_is_refused() -> None:
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        with pytest.raises(SettingsError, match=f"bound to port {port}"):
            _inherit(bound, port + 1)
        assert bound.getsockname()[1] == port  # left open, as it was


def test_a_descriptor_that_is_no_tcp_socket_is_refused() -> None:
    read, write = os.pipe()
    try:
        with pytest.raises(SettingsError, match="not an open socket"):
            inherited_socket(read, variable="V", port=1, port_variable="P")
    finally:
        os.close(read)
        os.close(write)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        with pytest.raises(SettingsError, match="not a TCP socket"):
            _inherit(udp, udp.getsockname()[1])
