"""Serve the gateway app under a chosen ASGI server, for the benchmark's server comparison.

``python bench/_serve_gateway.py {uvicorn,granian} --port P [--workers N]``. The app is
``gateway.app:create_app`` unchanged; ``create_app`` here only sets up Inlet's JSON logging first
(as ``inlet gateway`` does), in every worker process, so each server pays for the same access log.
Settings come from the environment, as for ``inlet gateway``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from litestar.types import ASGIApp

from gateway.app import create_app as create_gateway
from inlet.logs import setup_logging, silence_server_access_log
from inlet.settings import load_settings

_HERE = Path(__file__).resolve().parent


def create_app() -> ASGIApp:
    settings = load_settings()
    setup_logging(settings.log_level, service="gateway")
    silence_server_access_log()
    return create_gateway(settings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("server", choices=["uvicorn", "granian"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    target = f"{Path(__file__).stem}:create_app"
    if args.server == "uvicorn":
        import uvicorn  # noqa: PLC0415 - one server or the other

        uvicorn.run(
            target,
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            loop="uvloop",
            http="httptools",
            log_config=None,
            access_log=False,
            lifespan="on",
            app_dir=str(_HERE),
        )
        return 0
    # Optional (not a dependency of Inlet unless chosen): imported by name, typed loosely.
    granian: Any = importlib.import_module("granian")
    constants: Any = importlib.import_module("granian.constants")
    sys.path.insert(0, str(_HERE))
    granian.Granian(
        target,
        address=args.host,
        port=args.port,
        interface=constants.Interfaces.ASGI,
        workers=args.workers,
        loop=constants.Loops.uvloop,
        websockets=False,
        factory=True,
        log_access=False,
        working_dir=_HERE,
    ).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
