"""Run an Inlet ASGI app on a real port in a background thread, for tests that use real clients."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import msgspec
import uvicorn
from litestar.types import ASGIApp

from inlet.process import listening_socket
from inlet.settings import Settings


@contextmanager
def serve(app: ASGIApp, timeout_s: float = 60.0) -> Iterator[str]:
    """Serve ``app`` (lifespan included) until the block ends; yields its base URL.

    The server gets a socket bound here, never a port number: a port picked, closed and bound again
    can be taken by another process in between.
    """
    listening = listening_socket()
    port = listening.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve(sockets=[listening])), daemon=True
    )
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server stopped during startup")
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start in time")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        listening.close()


@contextmanager
def serve_inlet(settings: Settings) -> Iterator[tuple[str, str, Settings]]:
    """The gateway and the registry on real ports, the registry handing out the gateway's URL.

    Yields (registry URL, gateway URL, the settings the registry runs with).
    """
    from gateway.app import create_app as create_gateway
    from registry.app import create_app as create_registry

    with serve(create_gateway(settings)) as gateway:
        settings = msgspec.structs.replace(settings, public_gateway_url=gateway)
        with serve(create_registry(settings)) as registry:
            yield registry, gateway, settings
