"""What the connection deadlines cost a request: uvicorn's httptools protocol against Inlet's.

``python bench/connections_bench.py [--requests N] [--rounds R]`` (seconds; not part of
``make bench``). One kept-alive connection through a fake transport, on uvloop, to an app that
answers at once: the protocol's own work per request (parsing, the ASGI task, timers) and nothing
else. Rounds alternate between the two classes; the table gives each one's median CPU µs per
request (process time: other work on the machine delays it but is not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import uvloop
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from deploy._connections import ConnectionLimits, DeadlineProtocol

REQUEST = (
    b"POST /v1/ingest/inlet_ingest_x HTTP/1.1\r\nHost: gateway\r\n"
    b"Content-Type: application/json\r\nContent-Length: 13\r\n\r\n"
    b'{"id": "o-1"}'
)


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.answered: asyncio.Future[None] | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if bytes(data).endswith(b"ok") and self.answered is not None:
            self.answered.set_result(None)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


async def _app(scope: Any, receive: Any, send: Any) -> None:
    while (await receive()).get("more_body"):
        pass
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


async def _round(protocol_class: type[HttpToolsProtocol], requests: int) -> float:
    """µs per request for ``requests`` requests on one connection."""
    config = Config(
        _app,
        http=protocol_class,
        lifespan="off",
        server_header=False,
        access_log=False,
        log_config=None,
    )
    config.connection_limits = ConnectionLimits(  # type: ignore[attr-defined]
        head_s=10, body_s=10, body_min_rate=32768, max_connections=1024, max_head_bytes=65536
    )
    config.load()
    protocol = protocol_class(config, ServerState(), {})
    transport = _Transport()
    protocol.connection_made(transport)
    loop = asyncio.get_running_loop()
    started = time.process_time()
    for _ in range(requests):
        transport.answered = loop.create_future()
        protocol.data_received(REQUEST)
        await transport.answered
    elapsed = time.process_time() - started
    protocol.connection_lost(None)
    return elapsed / requests * 1e6


async def _main(requests: int, rounds: int) -> None:
    results: dict[str, list[float]] = {"uvicorn HttpToolsProtocol": [], "DeadlineProtocol": []}
    for _ in range(rounds):
        results["uvicorn HttpToolsProtocol"].append(await _round(HttpToolsProtocol, requests))
        results["DeadlineProtocol"].append(await _round(DeadlineProtocol, requests))
    print(f"{'protocol':<28} {'median CPU µs/request':>22} {'min':>8} {'max':>8}")
    for name, values in results.items():
        print(
            f"{name:<28} {statistics.median(values):>22.2f} {min(values):>8.2f} {max(values):>8.2f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    uvloop.run(_main(args.requests, args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
