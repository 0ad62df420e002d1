"""The gateway's Litestar app: the private ingest URL.

``POST /v1/ingest/{token}`` (or ``POST /v1/ingest`` with ``Authorization: Bearer <token>``).
Connectors come from this process's own fold of ``_inlet_connectors``, so an edit or a delete
reaches the gateway within the reader's poll interval (well under a second).

The app is plain Litestar; in front of it, ``_fast_path.IngestDispatcher`` answers plain ingest
requests itself (the hot path, measured in ``bench/``) and hands everything else to Litestar, whose
handlers here answer the same requests the same way. ``INLET_GATEWAY_FAST_PATH=false`` leaves the
dispatcher out, for comparison.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any, Literal

from litestar import Litestar, Request, Response, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException, InternalServerException
from litestar.params import FromPath, QueryParameter
from litestar.types import ASGIApp

from gateway._fast_path import INGEST_PATH, FastIngest, IngestDispatcher
from gateway._http_errors import EXCEPTION_HANDLERS, status_of
from gateway._openapi import complete as complete_openapi
from gateway._produce_lanes import laned_producer
from gateway.connector_lookup import ConnectorLookup
from gateway.dedup import Deduplicator
from gateway.dedup_demand import DedupDemand
from gateway.envelopes import (
    FIREHOSE_ACCESS_KEY,
    FirehoseAnswer,
    firehose_answer,
    firehose_request_id,
)
from gateway.errors import ClientDisconnected, FirehoseRefused, UnknownToken
from gateway.ingest import Ingest, IngestResult
from gateway.metrics import GatewayMetrics, metrics_endpoint
from gateway.ratelimit import RateLimiter, table_path
from gateway.request_headers import copied_header, new_request_id, request_id_of
from gateway.state_readers import StateReaders
from inlet.codec._avro_writer import NATIVE
from inlet.errors import InletError
from inlet.health import HEALTH_ROUTES
from inlet.http_allow import allow_every_method
from inlet.kafka import (
    ConfigValue,
    KafkaHealth,
    TrackedProducer,
    producer_config,
)
from inlet.logs import silence_server_access_log
from inlet.model.connectors import Connector, ConnectorState
from inlet.openapi import openapi_config
from inlet.sealing import secret_box
from inlet.security_headers import add_security_headers
from inlet.settings import Settings, load_settings
from inlet.statelog.fold import StateFold
from inlet.statelog.kafka import LogReader, ensure_state_topics
from inlet.tokens import presented_token
from inlet.topics import CONNECTORS_TOPIC
from inlet.transactions import GroupCommitProducer

log = logging.getLogger("inlet.gateway")
_access_log = logging.getLogger("inlet.gateway.access")


async def _ingest(
    token: str | None,
    read_body: Callable[[], Awaitable[bytes]],
    headers: Mapping[str, str],
    mode: str | None,
    *,
    ingest: Ingest,
    metrics: GatewayMetrics,
) -> tuple[IngestResult | FirehoseAnswer, str]:
    """One ingest request, for both ways in (``_fast_path`` and the Litestar handlers)."""
    started = time.perf_counter()
    request_id = request_id_of(headers.get("x-request-id"))
    status, connector = 500, None
    # Firehose sends its credential in its own header: the token of a ``firehose`` connector.
    access_key = headers.get(FIREHOSE_ACCESS_KEY) if token is None else None
    try:
        connector = await ingest.connector_for(token or access_key)
        if access_key is not None:
            _require_firehose(connector)
        body = await read_body()
        if connector.verify is not None:  # before anything reads the body
            ingest.verify(connector, headers, body)
        result = await ingest.ingest(
            connector,
            body,
            content_type=copied_header(headers, "content-type"),
            content_encoding=copied_header(headers, "content-encoding"),
            atomic=None if mode is None else mode == "atomic",
            request_id=request_id,
            headers_in=headers,
        )
    except Exception as exc:
        if isinstance(exc, InletError):
            status = status_of(exc)
        elif isinstance(exc, HTTPException):  # the body over Litestar's (or the fast path's) cap
            status = exc.status_code
        if connector is not None and connector.envelope == "firehose":
            raise FirehoseRefused(exc, firehose_request_id(headers)) from exc
        raise
    else:
        status = 200
        if connector.envelope == "firehose":
            now_ms = time.time_ns() // 1_000_000
            return firehose_answer(firehose_request_id(headers), now_ms), request_id
        return result, request_id
    finally:
        # The token never reaches the log: the path is logged without it.
        connector_id = None if connector is None else connector.id
        _access_log.info(
            "ingest",
            extra={
                "request_id": request_id,
                "connector": connector_id,
                "status": status,
                "ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        metrics.count_request(connector_id or "-", status)


def _require_firehose(connector: Connector) -> None:
    """A token in Firehose's header opens only a ``firehose`` connector."""
    if connector.envelope != "firehose":
        raise UnknownToken


ModeParam = Annotated[Literal["atomic", "partial"] | None, QueryParameter(name="mode")]


async def _respond(
    request: Request[Any, Any, State], token: str | None, mode: str | None
) -> Response[Any]:
    async def read_body() -> bytes:
        try:
            return await request.body()
        except InternalServerException as exc:  # Litestar's word for a disconnect, the first read
            raise ClientDisconnected from exc

    state = request.app.state
    result, request_id = await _ingest(
        token, read_body, request.headers, mode, ingest=state.ingest, metrics=state.metrics
    )
    return Response(result, status_code=200, headers={"X-Request-Id": request_id})


# The routes as Litestar serves them: what the fast path hands on, or everything with it off.
@post(INGEST_PATH + "/{token:str}", status_code=200)
async def ingest_by_url(
    request: Request[Any, Any, State], token: FromPath[str], mode: ModeParam = None
) -> Response[IngestResult]:
    return await _respond(request, token, mode)


@post(INGEST_PATH, status_code=200)
async def ingest_by_header(
    request: Request[Any, Any, State], mode: ModeParam = None
) -> Response[IngestResult]:
    return await _respond(request, presented_token(request.headers.get("authorization")), mode)


Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]

# How long the loop thread may keep the GIL from a thread that asks for it (CPython's default is
# 5 ms). The producer's poll thread needs the GIL for every delivery report; while a large body
# is parsed and encoded the loop never blocks, only gives itself a turn between two steps, and
# each turn drops and retakes the GIL (the selector's zero-timeout poll). CPython asks a holder
# to hand the GIL over only when an interval passed with no switch at all, so a turn every few
# milliseconds kept the poll thread waiting for as long as the body took: a single record's ack
# beside a 10 MiB body waited up to ~100-300 ms on a quiet machine (bench/hostile_bench.py).
# Steps run 0.5-6 ms, so 0.5 ms lets the poll thread in within about a step.
SWITCH_INTERVAL_S = 0.0005

# How long a gateway worker's transaction may stay open: a worker that dies inside one holds back
# read_committed readers of its partitions until the coordinator aborts it, this long at most.
_TRANSACTION_TIMEOUT_MS = 15_000


def gateway_producer(settings: Settings) -> TrackedProducer:
    """This worker's one producer: idempotent, or transactional (``gateway_transactions``)."""
    if not settings.gateway_transactions:
        return laned_producer(settings, client_id="inlet-gateway")
    # One transactional.id per worker process: each writes its own transactions, none fences
    # another. (A new one per start: a restarted worker cannot abort its predecessor's open
    # transaction, which the timeout above bounds instead.)
    transactional: dict[str, ConfigValue] = {
        "transactional.id": f"inlet-gateway-{new_request_id()[:16]}",
        "transaction.timeout.ms": _TRANSACTION_TIMEOUT_MS,
    }
    config = producer_config(settings, client_id="inlet-gateway", **transactional)
    return GroupCommitProducer(config, timeout_s=settings.produce_timeout_s)


def create_app(settings: Settings | None = None) -> ASGIApp:
    """The gateway as ``inlet gateway`` serves it (``deploy.cli:gateway_app``), Kafka included."""
    settings = settings or load_settings()
    silence_server_access_log()
    connectors = ConnectorState()
    metrics = GatewayMetrics()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if not NATIVE:  # works, slower: the cost is in inlet/codec/_avro_writer.py
            log.warning("the C Avro writer is not built: encoding records with fastavro")
        kafka_health = KafkaHealth(settings)
        await kafka_health.start_checked()
        app.state.kafka_health = kafka_health
        await asyncio.to_thread(ensure_state_topics, settings, [CONNECTORS_TOPIC])
        # The dedup reader runs only while a connector of this fold has dedup on.
        dedup = Deduplicator(settings)
        fold = StateFold(connectors, metrics.deleted, DedupDemand(connectors, dedup.want))
        reader = LogReader(settings, fold, [CONNECTORS_TOPIC], name="gateway")
        dedup.follow()
        await reader.start()
        await dedup.settled(timeout_s=60.0)
        readers = StateReaders(reader, dedup)
        watching = metrics.state_readers.watch_each(readers)
        app.state.state_readers = readers
        producer = gateway_producer(settings)
        limiter = RateLimiter(table_path(settings))
        lookup = ConnectorLookup(connectors, reader)
        # Opens connectors' signature secrets; made when the first one is needed.
        box = functools.cache(functools.partial(secret_box, settings))
        app.state.ingest = Ingest(
            settings, lookup, producer, metrics, limiter, box=box, dedup=dedup
        )
        # What start-up built lives as long as the process: out of the collector's sight, so
        # that a full collection (which a large request's allocations set off) walks only what
        # requests made. Measured in bench/hostile_bench.py.
        gc.freeze()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        try:
            yield
        finally:
            watching.cancel()
            await asyncio.to_thread(producer.close)
            await dedup.stop()
            await reader.stop()
            await kafka_health.stop()
            limiter.close()

    return build_app(settings, metrics, lifespan, connectors)


def build_app(
    settings: Settings,
    metrics: GatewayMetrics,
    lifespan: Lifespan,
    connectors: ConnectorState | None = None,
) -> ASGIApp:
    """The routes, and the fast path in front unless ``settings`` turn it off.

    ``lifespan`` puts ``state.ingest`` (and, for ``/health``, ``state.kafka_health``) in place:
    Kafka's, or a test's fakes.
    """

    async def ingest_from_state(*args: Any) -> tuple[IngestResult | FirehoseAnswer, str]:
        return await _ingest(*args, ingest=app.state.ingest, metrics=app.state.metrics)

    fast = FastIngest(ingest_from_state, settings.max_body_bytes)

    @asynccontextmanager
    async def bind_fast_path(app: Litestar) -> AsyncIterator[None]:
        # Once ``lifespan`` put them in place: the parts looked up once per start, not per
        # request (Litestar's State answers an attribute through ``__getattr__``).
        ingest = app.state.get("ingest")  # (a test's lifespan may set none)
        if ingest is not None:
            fast.call = functools.partial(_ingest, ingest=ingest, metrics=app.state.metrics)
        try:
            yield
        finally:
            fast.call = ingest_from_state

    app = Litestar(
        route_handlers=[ingest_by_url, ingest_by_header, *HEALTH_ROUTES, metrics_endpoint],
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[add_security_headers, allow_every_method],
        lifespan=[lifespan, bind_fast_path],
        logging_config=None,  # Inlet's JSON logging is set up once, by the CLI
        # Litestar's own cap on the (compressed) body; the decompressed size is capped in bodies.
        request_max_body_size=settings.max_body_bytes,
        openapi_config=openapi_config("Inlet gateway: the ingest URL", "1", complete_openapi),
    )
    app.state.metrics = metrics
    # /metrics leaves out connectors this fold does not know (deleted ones)
    app.state.connectors = connectors if connectors is not None else ConnectorState()
    if not settings.gateway_fast_path:
        return app
    return IngestDispatcher(app, fast)
