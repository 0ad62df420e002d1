"""The gateway's Litestar app: the private ingest URL.

``POST /v1/ingest/{token}`` (or ``POST /v1/ingest`` with ``Authorization: Bearer <token>``).
Connectors come from this process's own fold of ``_inlet_connectors``, so an edit or a delete
reaches the gateway within the reader's poll interval (well under a second).

Both ingest routes are served by ``_asgi_ingest`` (plain ASGI: the hot path, measured in
``bench/``); the Litestar handlers here answer what it hands on (other methods, query strings).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from litestar import Litestar, Request, Response, asgi, post
from litestar.datastructures import State
from litestar.handlers import ASGIRouteHandler
from litestar.params import FromPath, QueryParameter

from gateway._asgi_ingest import MOUNT_PATH, AsgiIngest, GatewayApp
from gateway._http_errors import EXCEPTION_HANDLERS, status_of
from gateway.connector_lookup import ConnectorLookup
from gateway.ingest import Ingest, IngestResult
from gateway.metrics import GatewayMetrics, metrics_endpoint
from gateway.ratelimit import RateLimiter, table_path
from inlet.codec._avro_writer import NATIVE
from inlet.errors import InletError
from inlet.health import HEALTH_ROUTES
from inlet.kafka import AsyncProducer, KafkaHealth, producer_config
from inlet.logs import silence_server_access_log
from inlet.model.connectors import ConnectorState
from inlet.settings import Settings, load_settings
from inlet.statelog.kafka import LogReader, ensure_state_topics
from inlet.tokens import presented_token
from inlet.topics import CONNECTORS_TOPIC

log = logging.getLogger("inlet.gateway")
_access_log = logging.getLogger("inlet.gateway.access")
# uuid4's version and variant bits: a request id has ``uuid4().hex``'s form (32 hex digits).
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (4 << 76) | (0x8000 << 48)


def _new_request_id() -> str:
    """``uuid.uuid4().hex``, without building a ``UUID`` object per request (~2 µs → ~1 µs)."""
    bits = int.from_bytes(os.urandom(16))
    return f"{bits & _UUID4_CLEAR | _UUID4_SET:032x}"


async def _ingest(
    state: State,
    token: str | None,
    read_body: Callable[[], Awaitable[bytes]],
    headers: Mapping[str, str],
    mode: str | None,
) -> tuple[IngestResult, str]:
    """One ingest request, for both ways in (``_asgi_ingest`` and the Litestar handlers)."""
    ingest: Ingest = state.ingest
    started = time.perf_counter()
    request_id = headers.get("x-request-id") or _new_request_id()
    status, connector_id = 500, None
    try:
        connector = await ingest.connector_for(token)
        connector_id = connector.id
        result = await ingest.ingest(
            connector,
            await read_body(),
            content_type=headers.get("content-type"),
            content_encoding=headers.get("content-encoding"),
            atomic=None if mode is None else mode == "atomic",
            request_id=request_id,
        )
    except InletError as exc:
        status = status_of(exc)
        raise
    else:
        status = 200
        return result, request_id
    finally:
        # The token never reaches the log: the path is logged without it.
        _access_log.info(
            "ingest",
            extra={
                "request_id": request_id,
                "connector": connector_id,
                "status": status,
                "ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        state.metrics.count_request(connector_id or "-", status)


ModeParam = Annotated[Literal["atomic", "partial"] | None, QueryParameter(name="mode")]


async def _respond(
    request: Request[Any, Any, State], token: str | None, mode: str | None
) -> Response[Any]:
    result, request_id = await _ingest(
        request.app.state, token, request.body, request.headers, mode
    )
    return Response(result, status_code=200, headers={"X-Request-Id": request_id})


# The Litestar handlers serve what the ASGI fast path hands on (other methods, query strings).
@post("/v1/ingest/{token:str}", status_code=200)
async def ingest_by_url(
    request: Request[Any, Any, State], token: FromPath[str], mode: ModeParam = None
) -> Response[Any]:
    return await _respond(request, token, mode)


@post("/v1/ingest", status_code=200)
async def ingest_by_header(
    request: Request[Any, Any, State], mode: ModeParam = None
) -> Response[Any]:
    return await _respond(request, presented_token(request.headers.get("authorization")), mode)


def _fast_route(app: GatewayApp, settings: Settings) -> ASGIRouteHandler:
    fallback = Litestar(
        route_handlers=[ingest_by_url, ingest_by_header],
        exception_handlers=EXCEPTION_HANDLERS,
        logging_config=None,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=None,
    )
    fallback.state = app.state

    async def call(
        token: str | None,
        read_body: Callable[[], Awaitable[bytes]],
        headers: dict[str, str],
        mode: str | None,
    ) -> tuple[IngestResult, str]:
        return await _ingest(app.state, token, read_body, headers, mode)

    ingest = app.fast_ingest = AsgiIngest(call, fallback, settings.max_body_bytes)
    return asgi(MOUNT_PATH, is_mount=True, copy_scope=True)(ingest.__call__)


def create_app(settings: Settings | None = None) -> Litestar:
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
        reader = LogReader(settings, connectors, [CONNECTORS_TOPIC], name="gateway")
        await reader.start()
        app.state.state_readers = [reader]
        producer = AsyncProducer(producer_config(settings, client_id="inlet-gateway"))
        limiter = RateLimiter(table_path(settings))
        lookup = ConnectorLookup(connectors, reader)
        app.state.ingest = Ingest(settings, lookup, producer, metrics, limiter)
        try:
            yield
        finally:
            await asyncio.to_thread(producer.close)
            await reader.stop()
            await kafka_health.stop()
            limiter.close()

    app = GatewayApp(
        route_handlers=[*HEALTH_ROUTES, metrics_endpoint],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        logging_config=None,  # Inlet's JSON logging is set up once, by the CLI
        # Litestar's own cap on the (compressed) body; the decompressed size is capped in bodies.
        request_max_body_size=settings.max_body_bytes,
        openapi_config=None,
    )
    app.state.metrics = metrics
    app.register(_fast_route(app, settings))
    return app
