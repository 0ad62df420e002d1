"""The gateway's Prometheus metrics, served at ``/metrics``.

With several worker processes (``inlet gateway``), a scrape is answered by one of them but reports
the sum over all: prometheus_client's multiprocess mode, chosen by ``PROMETHEUS_MULTIPROC_DIR``
(set by ``deploy/cli.py`` before the workers start, a directory per gateway instance), with the
bookkeeping in ``_metrics_files.py``. The library's answer rather than a collector process: no
extra process to supervise, nothing sent per request, and a worker's counts survive its death (its
files stay until merged). Without the variable (an app built in a test process), each app keeps
its values in its own registry, so several apps in one process stay apart.

Labelled children are looked up once and reused: ``labels()`` costs more than the increment.
Connectors unknown to this worker's fold (deleted) are left out of scrapes and their children
removed; counts merged from dead workers are dropped only for connectors seen deleted (a connector
created a moment ago may not be folded here yet, and its counts must not be lost).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from litestar import Response, get
from litestar.datastructures import State
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)

from gateway._metrics_files import MetricFiles
from inlet.metrics import StateReaderMetrics
from inlet.model.connectors import ConnectorState
from inlet.topics import CONNECTORS_TOPIC

UNKNOWN_CONNECTOR = "-"  # the label app.py counts requests under when no connector was found


def _files() -> MetricFiles | None:
    """The metric files of this gateway instance, when its workers share them."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return None
    if not getattr(values.ValueClass, "_multiprocess", False):
        # The value class is chosen when prometheus_client is imported: too early, the counts
        # would stay in this process and every scrape would read one worker's.
        raise RuntimeError("PROMETHEUS_MULTIPROC_DIR was set after prometheus_client was imported")
    return MetricFiles(Path(path))


class DeletedConnectors:
    """A fold of ``_inlet_connectors`` that keeps the ids of deleted connectors."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    def apply(self, topic: str, key: bytes, value: bytes | None) -> None:
        if topic == CONNECTORS_TOPIC and value is None:
            self.ids.add(key.decode(errors="replace"))


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._files = _files()
        if self._files is not None:
            self._files.claim(os.getpid())
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
        self.signature_failures = Counter(
            "inlet_signature_failures",
            "Ingest requests refused by signature verification, by connector and reason (code)",
            ["connector", "code"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "inlet_dedup_duplicates",
            "Records answered as duplicates of a key accepted before (dedup): not written again",
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
            multiprocess_mode="livesum",
        )
        self.state_readers = StateReaderMetrics(self.registry)
        self.deleted = DeletedConnectors()  # folded beside the connectors (app.py)
        self._requests_by_label: dict[tuple[str, int], Counter] = {}
        self._accepted_by_connector: dict[str, tuple[Counter, Counter]] = {}
        self._failures_by_label: dict[tuple[str, str], Counter] = {}
        self._duplicates_by_connector: dict[str, Counter] = {}

    def count_request(self, connector: str, status: int) -> None:
        """Count one ingest request."""
        key = (connector, status)
        child = self._requests_by_label.get(key)
        if child is None:
            child = self._requests_by_label[key] = self.requests.labels(connector, str(status))
        child.inc()

    def count_signature_failure(self, connector: str, code: str) -> None:
        """Count one request refused by signature verification (401)."""
        key = (connector, code)
        child = self._failures_by_label.get(key)
        if child is None:
            child = self._failures_by_label[key] = self.signature_failures.labels(connector, code)
        child.inc()

    def count_records(self, connector: str, accepted: int, rejected: int) -> None:
        """Count one answered request's records."""
        children = self._accepted_by_connector.get(connector)
        if children is None:
            children = self._accepted_by_connector[connector] = (
                self.accepted.labels(connector),
                self.rejected.labels(connector),
            )
        children[0].inc(accepted)
        if rejected:  # a write saved in the common case (a file write per value in workers)
            children[1].inc(rejected)

    def count_duplicates(self, connector: str, records: int) -> None:
        """Count the records of one request answered as duplicates."""
        child = self._duplicates_by_connector.get(connector)
        if child is None:
            child = self._duplicates_by_connector[connector] = self.duplicates.labels(connector)
        child.inc(records)

    def render(self, connectors: ConnectorState) -> bytes:
        """The exposition: this gateway's (every worker's) values, deleted connectors left out."""

        def keep(connector: str) -> bool:
            return connector == UNKNOWN_CONNECTOR or connectors.get(connector) is not None

        self._forget(keep)
        if self._files is not None:
            deleted = self.deleted.ids
            return self._files.render(keep, archive=lambda c: c not in deleted)
        return generate_latest(self.registry)

    def _forget(self, keep: Callable[[str], bool]) -> None:
        for connector, status in [k for k in self._requests_by_label if not keep(k[0])]:
            del self._requests_by_label[connector, status]
            self.requests.remove(connector, str(status))
        for connector, code in [k for k in self._failures_by_label if not keep(k[0])]:
            del self._failures_by_label[connector, code]
            self.signature_failures.remove(connector, code)
        for connector in [c for c in self._accepted_by_connector if not keep(c)]:
            del self._accepted_by_connector[connector]
            self.accepted.remove(connector)
            self.rejected.remove(connector)
        for connector in [c for c in self._duplicates_by_connector if not keep(c)]:
            del self._duplicates_by_connector[connector]
            self.duplicates.remove(connector)


@get("/metrics", sync_to_thread=False, include_in_schema=False)
def metrics_endpoint(state: State) -> Response[bytes]:
    body = state.metrics.render(state.connectors)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
