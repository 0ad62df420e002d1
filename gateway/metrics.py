"""The gateway's Prometheus metrics, served at ``/metrics``.

Each gateway process has its own registry, so several apps in one test process stay apart.
"""

from __future__ import annotations

from litestar import Response, get
from litestar.datastructures import State
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "inlet_ingest_requests",
            "Ingest requests by connector and HTTP status",
            ["connector", "status"],
            registry=self.registry,
        )
        self.accepted = Counter(
            "inlet_records_accepted",
            "Records written to the connector topic",
            ["connector"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "inlet_records_rejected",
            "Invalid records (written to the rejected topic unless the request was atomic)",
            ["connector"],
            registry=self.registry,
        )
        self.produce_seconds = Histogram(
            "inlet_produce_latency_seconds",
            "From handing a request's records to the producer to Kafka acknowledging all of them",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "inlet_records_in_flight",
            "Records handed to the producer and not yet acknowledged",
            registry=self.registry,
        )
        self._requests_by_label: dict[tuple[str, int], Counter] = {}

    def count_request(self, connector: str, status: int) -> None:
        """Count one ingest request; each labelled child is looked up once, then reused."""
        key = (connector, status)
        child = self._requests_by_label.get(key)
        if child is None:
            child = self._requests_by_label[key] = self.requests.labels(connector, str(status))
        child.inc()


@get("/metrics", sync_to_thread=False, include_in_schema=False)
def metrics_endpoint(state: State) -> Response[bytes]:
    body = generate_latest(state.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
