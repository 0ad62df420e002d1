"""The gateway's Litestar app: the private ingest URL.

``POST /v1/ingest/{token}`` (or ``POST /v1/ingest`` with ``Authorization: Bearer <token>``).
Connectors come from this process's own fold of ``_inlet_connectors``, so an edit or a delete
reaches the gateway within the reader's poll interval (well under a second).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from litestar import Litestar, Request, Response, post
from litestar.datastructures import State
from litestar.params import FromPath, QueryParameter

from gateway._http_errors import EXCEPTION_HANDLERS, STATUS
from gateway.errors import GatewayError
from gateway.ingest import Ingest
from gateway.metrics import GatewayMetrics, metrics_endpoint
from inlet.health import health
from inlet.kafka import AsyncProducer, KafkaHealth, producer_config
from inlet.logs import silence_server_access_log
from inlet.settings import Settings, load_settings
from inlet.topics import CONNECTORS_TOPIC
from registry.auth import presented_token
from registry.connectors import ConnectorState
from registry.kafka_log import LogReader, ensure_state_topics

_access_log = logging.getLogger("inlet.gateway.access")


async def _ingest(
    request: Request[Any, Any, State], token: str | None, mode: str | None
) -> Response[Any]:
    ingest: Ingest = request.app.state.ingest
    started = time.perf_counter()
    request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
    status, connector_id = 500, None
    try:
        connector = ingest.connector_for(token)
        connector_id = connector.id
        result = await ingest.ingest(
            connector,
            await request.body(),
            content_type=request.headers.get("content-type"),
            content_encoding=request.headers.get("content-encoding"),
            atomic=None if mode is None else mode == "atomic",
            request_id=request_id,
        )
        status = 200
        return Response(result, status_code=200, headers={"X-Request-Id": request_id})
    except GatewayError as exc:
        status = STATUS[exc.code]
        raise
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
        request.app.state.metrics.requests.labels(connector_id or "-", str(status)).inc()


ModeParam = Annotated[Literal["atomic", "partial"] | None, QueryParameter(name="mode")]


@post("/v1/ingest/{token:str}", status_code=200)
async def ingest_by_url(
    request: Request[Any, Any, State], token: FromPath[str], mode: ModeParam = None
) -> Response[Any]:
    return await _ingest(request, token, mode)


@post("/v1/ingest", status_code=200)
async def ingest_by_header(
    request: Request[Any, Any, State], mode: ModeParam = None
) -> Response[Any]:
    return await _ingest(request, presented_token(request.headers.get("authorization")), mode)


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()
    silence_server_access_log()
    connectors = ConnectorState()
    metrics = GatewayMetrics()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        kafka_health = KafkaHealth(settings)
        await kafka_health.start_checked()
        app.state.kafka_health = kafka_health
        await asyncio.to_thread(ensure_state_topics, settings, [CONNECTORS_TOPIC])
        reader = LogReader(settings, connectors, [CONNECTORS_TOPIC], name="gateway")
        await reader.start()
        producer = AsyncProducer(producer_config(settings, client_id="inlet-gateway"))
        app.state.ingest = Ingest(settings, connectors, producer, metrics)
        try:
            yield
        finally:
            await asyncio.to_thread(producer.close)
            await reader.stop()
            await kafka_health.stop()

    app = Litestar(
        route_handlers=[health, metrics_endpoint, ingest_by_url, ingest_by_header],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        logging_config=None,  # Inlet's JSON logging is set up once, by the CLI
        # Litestar's own cap on the (compressed) body; the decompressed size is capped in bodies.
        request_max_body_size=settings.max_body_bytes,
        openapi_config=None,
    )
    app.state.metrics = metrics
    return app
