"""The consumers process's Prometheus metrics, served on their own port (``/metrics``).

The process has no HTTP API, so prometheus_client's small threaded server answers scrapes on
``INLET_CONSUMERS_METRICS_PORT`` (0: a port the system picks, logged). A port already taken is
logged as an error and the workers run on without metrics: the pipelines matter more.

Pipelines are reported from what the pipelines worker last published (every two seconds, the same
reports the admin API shows), so a deleted pipeline's series go with its reports, and a partition
reported by another process after a rebalance is that process's series.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from inlet.metrics import StateReaderMetrics
from inlet.model.pipelines import PartitionStatus

log = logging.getLogger("inlet.consumers")

# A pipeline with an error this recent, or whose connector is gone, counts as failing.
FAILING_WINDOW_S = 300.0


class PipelineReports(Collector):
    """The pipelines' last published reports, as metrics at scrape time (on the server's thread)."""

    def __init__(self) -> None:
        self._reports: Sequence[PartitionStatus] = ()

    def publish(self, reports: Sequence[PartitionStatus]) -> None:
        self._reports = tuple(reports)  # replaced whole: a scrape reads one or the other

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        reports = self._reports
        labels = ["pipeline", "partition"]
        delivered = CounterMetricFamily(
            "inlet_pipeline_delivered", "Records the pipeline's sink holds", labels=labels
        )
        dead = CounterMetricFamily(
            "inlet_pipeline_dead_lettered",
            "Records sent to the pipeline's dead-letter topic",
            labels=labels,
        )
        skipped = CounterMetricFamily(
            "inlet_pipeline_duplicates_skipped",
            "Records the sink skipped: their idempotency key was already in it",
            labels=labels,
        )
        lag = GaugeMetricFamily(
            "inlet_pipeline_lag_records",
            "Records of the connector topic not yet delivered (as of the last measurement)",
            labels=labels,
        )
        last_error = GaugeMetricFamily(
            "inlet_pipeline_last_error_timestamp_seconds",
            "When the pipeline partition last reported an error",
            labels=labels,
        )
        failing = GaugeMetricFamily(
            "inlet_pipeline_failing",
            f"1 if the pipeline reported an error in the last {FAILING_WINDOW_S:.0f} s",
            labels=["pipeline"],
        )
        now = time.time()
        failing_by_pipeline: dict[str, int] = {}
        for report in reports:
            values = [report.pipeline_id, str(report.partition)]
            delivered.add_metric(values, report.delivered)
            dead.add_metric(values, report.dead_lettered)
            skipped.add_metric(values, report.duplicates_skipped)
            if report.lag is not None:
                lag.add_metric(values, report.lag)
            recent = False
            if report.last_error_at is not None:
                at = report.last_error_at.timestamp()
                last_error.add_metric(values, at)
                recent = now - at < FAILING_WINDOW_S
            # Partition -1 speaks for the whole pipeline: failing while its failure lasts (its
            # connector is gone, its sink refuses it...).
            recent = recent or report.failure is not None
            failing_by_pipeline[report.pipeline_id] = max(
                failing_by_pipeline.get(report.pipeline_id, 0), int(recent)
            )
        for pipeline, value in failing_by_pipeline.items():
            failing.add_metric([pipeline], value)
        yield from (delivered, dead, skipped, lag, last_error, failing)


class ConsumerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.state_readers = StateReaderMetrics(self.registry)
        self.sampled = Counter(
            "inlet_samples_records",
            "Records the sample worker read from connector topics, by topic (valid or rejected)",
            ["topic"],
            registry=self.registry,
        )
        self.sampled_valid = self.sampled.labels("valid")
        self.sampled_rejected = self.sampled.labels("rejected")
        self.followed = Gauge(
            "inlet_samples_connectors_followed",
            "Connectors whose topics the sample worker reads",
            registry=self.registry,
        )
        self.pipelines = PipelineReports()
        self.registry.register(self.pipelines)


def serve_metrics(metrics: ConsumerMetrics, host: str, port: int) -> WSGIServer | None:
    """Answer scrapes in a thread until ``shutdown()``; None if the port cannot be had."""
    try:
        server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        log.error(  # noqa: TRY400 - the reason is the message
            "the consumers' metrics server could not start",
            extra={"host": host, "port": port, "error": str(exc)},
        )
        return None
    log.info("metrics served", extra={"host": host, "port": server.server_port})
    return server
