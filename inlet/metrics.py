"""Metrics every service exports: its state readers' lag and liveness.

The gauges are sampled once a second by ``StateReaderMetrics.watch`` (nothing on the fold's path).
Their multiprocess modes say how a gateway's workers add up: the largest lag, the lowest ``up``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Gauge

from inlet.statelog.kafka import LogReader

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 1.0


class StateReaderMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.lag = Gauge(
            "inlet_state_reader_lag_records",
            "Committed state records the reader has not folded yet (as of its last fetch)",
            ["reader", "topic"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.up = Gauge(
            "inlet_state_reader_up",
            "1 while the state reader folds the log, 0 while it is restarting or stopped",
            ["reader"],
            registry=registry,
            multiprocess_mode="livemin",
        )
        self.restarts = Gauge(
            "inlet_state_reader_restarts",
            "Times the state reader failed and was restarted, since its process started",
            ["reader"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.corrupt = Gauge(
            "inlet_state_reader_corrupt_records",
            "State records no fold could read (skipped), since the process started",
            ["reader"],
            registry=registry,
            multiprocess_mode="livesum",
        )

    def sample(self, reader: LogReader, lags: dict[str, int]) -> None:
        status = reader.status()
        self.up.labels(reader.name).set(1 if status.alive else 0)
        self.restarts.labels(reader.name).set(status.restarts)
        self.corrupt.labels(reader.name).set(status.corrupt_records)
        for topic, lag in lags.items():
            self.lag.labels(reader.name, topic).set(lag)

    def watch(
        self, *readers: LogReader, interval_s: float = WATCH_INTERVAL_S
    ) -> asyncio.Task[None]:
        """Sample ``readers`` every ``interval_s`` until the task is cancelled (started readers)."""
        return self.watch_each(readers, interval_s=interval_s)

    def watch_each(
        self, readers: Iterable[LogReader], *, interval_s: float = WATCH_INTERVAL_S
    ) -> asyncio.Task[None]:
        """``watch``, iterating ``readers`` anew each time: readers that come and go."""
        return asyncio.get_running_loop().create_task(self._watch(readers, interval_s))

    async def _watch(self, readers: Iterable[LogReader], interval_s: float) -> None:
        while True:
            for reader in readers:
                try:
                    lags = reader.lag()
                except Exception as exc:  # noqa: BLE001 - a metric must not stop the service
                    log.debug("state reader lag unknown", extra={"error": str(exc)})
                    lags = {}
                self.sample(reader, lags)
            await asyncio.sleep(interval_s)
