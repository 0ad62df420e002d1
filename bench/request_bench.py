"""CPU per single-record request inside one gateway worker: the HTTP server, the fast path, the
ingest, with neither sockets nor Kafka, stage by stage.

``python bench/request_bench.py [--requests N] [--rounds R] [--connections C]``

Each request's bytes (as ``bench/loadgen`` sends them) go into the protocol the gateway's workers
serve with (``deploy/_serve.py``'s configuration: uvicorn's httptools protocol with Inlet's
deadlines, on uvloop) through an in-memory transport, ``C`` connections at a time, and the answer
is written back to it; the producer takes each record at once and its ack wakes the loop as the
poll thread's does. What it reports, in CPU µs per request of the whole process (the log writer's
thread included), read every 500 requests (the lower quartile of those slices, and their median):

- ``server``: the protocol with an app that answers with the gateway's headers and doing nothing
  else (the HTTP server and ASGI);
- ``+ dispatch``: the gateway's dispatcher and ``FastIngest`` in front of an ingest call that
  answers at once (scope reading, the answer's encoding and headers);
- ``gateway``: the whole gateway app as ``create_app`` builds it, minus Kafka: token lookup, body,
  decode + validate, Avro, headers, the producer's hand-over and ack, metrics, the access log.

The stages' costs are the differences. Kafka's share (librdkafka's ``produce``, the delivery
report on the poll thread) and the socket's (the system calls) are not here: the end-to-end
``gateway_bench.py`` has them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from typing import Any

import msgspec
import uvloop
from gateway_bench import FIELDS, record
from litestar import Litestar

from deploy._serve import server_config
from gateway.app import build_app
from gateway.connector_lookup import ConnectorLookup
from gateway.ingest import Ingest, IngestResult
from gateway.metrics import GatewayMetrics
from inlet.codec.steps import WaitingSteps
from inlet.kafka import Delivery, RecordFields
from inlet.logs import setup_logging
from inlet.model.connectors import Connector, ConnectorState, connector_record_value
from inlet.model.fields import FieldSpec
from inlet.security_headers import SECURITY_HEADERS
from inlet.settings import Settings
from inlet.statelog.fold import CompleteState
from inlet.tokens import token_hash
from inlet.topics import CONNECTORS_TOPIC

TOKEN = "inlet_ingest_request-bench"
AT = datetime(2026, 1, 1, tzinfo=UTC)
CONNECTOR = Connector(
    id="con_0123456789abcdef",
    name="bench",
    fields=msgspec.convert(FIELDS, list[FieldSpec]),
    key_field="id",
    topic="bench",
    rejected_topic="bench.rejected",
    subject="bench-value",
    record_name="Bench",
    schema_id=1,
    schema_version=1,
    token_hash=token_hash(TOKEN),
    created_at=AT,
    updated_at=AT,
)


class AckingProducer:
    """Takes every record at once; the acks come on the next turn of the loop, as the poll
    thread's ``call_soon_threadsafe`` brings them."""

    def __init__(self) -> None:
        self.records = 0

    def produce_steps(
        self, records: Sequence[RecordFields], delivery: Delivery
    ) -> WaitingSteps[None]:
        yield from ()
        count = len(records)
        self.records += count
        delivery.expect(count)
        for _ in range(count):
            delivery.on_delivery(None, None)  # type: ignore[arg-type]

    def close(self, timeout: float = 5.0) -> None:
        pass


def gateway_app(settings: Settings) -> Any:
    """The gateway app as ``create_app`` builds it, with its lifespan's Kafka parts replaced."""
    connectors = ConnectorState()
    connectors.apply(CONNECTORS_TOPIC, CONNECTOR.id.encode(), connector_record_value(CONNECTOR))
    metrics = GatewayMetrics()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        lookup = ConnectorLookup(connectors, CompleteState())
        app.state.ingest = Ingest(settings, lookup, AckingProducer(), metrics)
        yield

    return build_app(settings, metrics, lifespan, connectors)


_ANSWER = msgspec.json.encode(IngestResult(accepted=1, rejected=0, schema_id=1, schema_version=1))


async def answering_app(scope: Any, receive: Any, send: Any) -> None:
    """What the server costs: the gateway's answer, nothing done for it."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    while (await receive()).get("more_body"):
        pass
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"x-request-id", b"0" * 32),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_ANSWER)).encode()),
                *SECURITY_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": _ANSWER, "more_body": False})


def dispatch_app(settings: Settings) -> Any:
    """The gateway's dispatcher and fast path, in front of an ingest that answers at once."""
    from gateway._fast_path import FastIngest, IngestDispatcher  # noqa: PLC0415

    answer = IngestResult(accepted=1, rejected=0, schema_id=1, schema_version=1)

    async def call(
        _token: str | None, read_body: Callable[[], Any], _headers: Any, _mode: str | None
    ) -> tuple[IngestResult, str]:
        await read_body()
        return answer, "0" * 32

    return IngestDispatcher(answering_app, FastIngest(call, settings.max_body_bytes))


class MemoryTransport(asyncio.Transport):
    """A connection's other end: keeps nothing of what is written, counts the answers."""

    def __init__(self) -> None:
        super().__init__()
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default
        )


def request_bytes(body: bytes) -> bytes:
    """A single-record POST as ``bench/loadgen`` sends it."""
    head = (
        f"POST /v1/ingest/{TOKEN} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "User-Agent: inlet-loadgen\r\nAccept: */*\r\n\r\n"
    )
    return head.encode() + body


async def _lifespan(app: Any) -> Callable[[], Any]:
    """Runs the app's start-up; the coroutine function that shuts it down."""
    events: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    done: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await events.put({"type": "lifespan.startup"})
    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, events.get, done.put)
    )
    started = await done.get()
    assert started["type"] == "lifespan.startup.complete", started

    async def shutdown() -> None:
        await events.put({"type": "lifespan.shutdown"})
        await done.get()
        await task

    return shutdown


# Requests per measured slice: CPU time is read between slices, and the quiet slices kept.
SLICE = 500


async def measure(app: Any, settings: Settings, requests: int, connections: int) -> list[float]:
    """CPU µs of this process per request, slice by slice (``SLICE`` requests each),
    ``connections`` of them in flight at once."""
    config = server_config(app, service="bench", settings=settings)
    config.load()
    protocol_class: Any = config.http_protocol_class
    from uvicorn.server import ServerState  # noqa: PLC0415

    state = ServerState()
    state.default_headers = [(b"date", formatdate(usegmt=True).encode())]
    loop = asyncio.get_running_loop()
    payload = request_bytes(msgspec.json.encode(record(0)))
    shutdown = await _lifespan(config.loaded_app)
    per_connection = requests // connections

    slices: list[float] = []
    clock = [0.0]

    async def client(answered: list[int]) -> None:
        transport = MemoryTransport()
        protocol = protocol_class(config, state, {}, loop)
        protocol.connection_made(transport)
        answer_complete = protocol.on_response_complete
        waiter: asyncio.Future[None] = loop.create_future()

        def complete() -> None:
            answer_complete()
            waiter.set_result(None)

        protocol.on_response_complete = complete
        for _ in range(per_connection):
            waiter = loop.create_future()
            protocol.data_received(payload)
            await waiter
            answered[0] += 1
            if answered[0] % SLICE == 0:
                now = time.process_time()
                slices.append((now - clock[0]) / SLICE * 1e6)
                clock[0] = now
        protocol.connection_lost(None)

    answered = [0]
    await asyncio.gather(*(client(answered) for _ in range(connections)))  # warm
    answered[0], slices[:] = 0, []
    clock[0] = time.process_time()
    await asyncio.gather(*(client(answered) for _ in range(connections)))
    await shutdown()
    return slices


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=20_000, help="per stage and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32, help="in flight at once")
    parser.add_argument("--only", help="comma-separated stages: server,dispatch,gateway")
    args = parser.parse_args()
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the metrics in this process's memory
    sys.stderr.flush()
    # The access log is formatted and written by its thread as in a worker, to nowhere.
    devnull = Path(os.devnull).open("w")  # noqa: SIM115 - for the whole run
    sys.stderr = devnull
    setup_logging("INFO", service="gateway", log_format="json")
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1")
    stages: dict[str, Callable[[], Any]] = {
        "server": lambda: answering_app,
        "+ dispatch": lambda: dispatch_app(settings),
        "gateway": lambda: gateway_app(settings),
    }
    if args.only:
        chosen = {f"+ {name}" if name == "dispatch" else name for name in args.only.split(",")}
        stages = {name: make for name, make in stages.items() if name in chosen}
    results: dict[str, list[float]] = {name: [] for name in stages}
    for _ in range(args.rounds):
        for name, make in stages.items():
            app = make()
            results[name] += uvloop.run(measure(app, settings, args.requests, args.connections))
    sys.stderr = sys.__stderr__
    # Other processes on the machine only ever add to a slice's CPU time (caches, a shared
    # core): the lower quartile of the slices is the figure to compare, the median beside it.
    print(f"{'stage':12s} {'p25':>7s} {'median':>7s}  µs/request ({SLICE}-request slices)")
    previous = 0.0
    for name, costs in results.items():
        quartiles = statistics.quantiles(costs, n=4)
        low, median = quartiles[0], quartiles[1]
        print(f"{name:12s} {low:7.1f} {median:7.1f}  (+{low - previous:.1f})")
        previous = low
    return 0


if __name__ == "__main__":
    sys.exit(main())
