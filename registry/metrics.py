"""The registry's Prometheus metrics, served at ``/metrics`` (without the admin token).

Requests are counted and timed by route template (``/v1/connectors/{connector_id}``), never by raw
path: ids and subjects must not become label values. Unrouted requests (404, 405) count as
``unmatched``. The state reader's lag and liveness come from ``inlet/metrics.py``.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Litestar, Response, get
from litestar.datastructures import State
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from inlet.metrics import StateReaderMetrics

UNMATCHED = "unmatched"


class RegistryMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()  # per app: several apps in one test process
        labels = ["method", "route", "status"]
        self.requests = Counter(
            "inlet_registry_requests", "Registry HTTP requests", labels, registry=self.registry
        )
        self.seconds = Histogram(
            "inlet_registry_request_duration_seconds",
            "From a registry request's arrival to the start of its answer's body",
            labels,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.state_readers = StateReaderMetrics(self.registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = (method, route, str(status))
        self.requests.labels(*labels).inc()
        self.seconds.labels(*labels).observe(seconds)


class MeasuredLitestar(Litestar):
    """A Litestar app that counts and times every HTTP request, routed or not."""

    metrics: RegistryMetrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless an answer starts

        async def measured_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await super().__call__(scope, receive, measured_send)
        finally:
            # The router writes the matched route's template into this same scope.
            route = scope.get("path_template") or UNMATCHED
            self.metrics.observe(scope["method"], route, status, time.perf_counter() - started)


@get("/metrics", sync_to_thread=False, include_in_schema=False)
def metrics_endpoint(state: State) -> Response[bytes]:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
