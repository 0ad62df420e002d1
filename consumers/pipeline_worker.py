"""The pipeline feeds of one process: ``run_pipelines`` follows the pipelines' log and runs them.

It folds ``_inlet_connectors``, ``_inlet_pipelines``, ``_inlet_pipeline_status`` and, unless
schemas are in an external registry (``inlet/schema_lookup.py``), ``_schemas``, like the
registry does; runs a ``Feed`` (``consumers/_feed.py``) for every pipeline that is not paused, and
stops or restarts feeds as pipelines are paused, resumed, changed or deleted. Each feed is a
member of its pipeline's consumer group, so running this in several processes spreads every
pipeline's partitions over them.

Every two seconds it publishes what its feeds report (records delivered, dead-lettered, lag, last
error; one record per pipeline partition) to ``_inlet_pipeline_status``, which the admin API shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

from consumers._feed import Feed, FeedContext
from consumers.metrics import ConsumerMetrics
from inlet.codec.wire import Headers
from inlet.errors import KafkaUnavailable
from inlet.kafka import AsyncProducer, OutgoingRecord, ProduceFailed, producer_config
from inlet.model.connectors import ConnectorState, utc_now
from inlet.model.pipelines import (
    PIPELINE_PARTITION,
    PartitionStatus,
    Pipeline,
    PipelineState,
    PipelineStatusState,
    status_key,
    status_value,
)
from inlet.model.schemas import SchemaState
from inlet.schema_lookup import SchemaRef, schema_lookup, schema_topics
from inlet.sealing import secret_box
from inlet.settings import Settings
from inlet.sink_rules import SinkRules
from inlet.statelog.fold import StateFold
from inlet.statelog.kafka import LogReader, ensure_state_topics
from inlet.topics import (
    CONNECTORS_TOPIC,
    PIPELINE_STATUS_TOPIC,
    PIPELINES_TOPIC,
)

log = logging.getLogger("inlet.consumers.pipelines")

RECONCILE_INTERVAL_S = 0.5
STATUS_INTERVAL_S = 2.0
STOP_TIMEOUT_S = 60.0
_BLOCKING_CALL_TIMEOUT_S = 60.0
_Produced = tuple[bytes | None, bytes | None, Headers]  # key, value, headers


async def run_pipelines(
    settings: Settings, stop: asyncio.Event, metrics: ConsumerMetrics | None = None
) -> None:
    """Run the feeds of every active pipeline until ``stop`` is set, then stop them cleanly.

    Raises ``KafkaUnavailable`` if the state log cannot be read (the caller restarts the process).
    """
    await _Supervisor(settings, metrics or ConsumerMetrics()).run(stop)


class PipelinesWorker:
    """``run_pipelines`` in the shape of ``consumers.main.Worker``."""

    name = "pipelines"

    def __init__(self, settings: Settings, metrics: ConsumerMetrics | None = None) -> None:
        self._settings = settings
        self._metrics = metrics

    async def run(self, stop: asyncio.Event) -> None:
        await run_pipelines(self._settings, stop, self._metrics)


class _Supervisor:
    def __init__(self, settings: Settings, metrics: ConsumerMetrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self.schemas = SchemaState()
        self.connectors = ConnectorState()
        self.pipelines = PipelineState(secret_box(settings))
        self.statuses = PipelineStatusState()
        fold = StateFold(self.schemas, self.connectors, self.pipelines, self.statuses)
        self._topics = [
            *schema_topics(settings),
            CONNECTORS_TOPIC,
            PIPELINES_TOPIC,
            PIPELINE_STATUS_TOPIC,
        ]
        self._reader = LogReader(settings, fold, self._topics, name="pipelines")
        self._schema_lookup = schema_lookup(settings, self.schemas, self._reader.sync)
        self._worker = f"{socket.gethostname()}:{os.getpid()}"
        self._feeds: dict[str, Feed] = {}
        self._retiring: list[Feed] = []
        self._orphans: dict[str, PartitionStatus] = {}  # pipelines whose connector is gone
        self._producer: AsyncProducer | None = None

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.to_thread(ensure_state_topics, self._settings, self._topics)
        # Uncompressed (status records are small); the log readers (aiokafka[lz4]) read every codec.
        config = producer_config(
            self._settings, client_id="inlet-pipelines", **{"compression.type": "none"}
        )
        loop = asyncio.get_running_loop()
        watching: asyncio.Task[None] | None = None
        try:
            await self._reader.start()
            watching = self._metrics.state_readers.watch(self._reader)
            self._producer = AsyncProducer(config)
            context = self._context(loop)
            next_status = 0.0
            while not stop.is_set():
                if self._reader.failed is not None:
                    raise KafkaUnavailable("the state log reader failed") from self._reader.failed
                self._reconcile(context)
                if loop.time() >= next_status:
                    await self._publish()
                    next_status = loop.time() + STATUS_INTERVAL_S
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RECONCILE_INTERVAL_S)
        finally:
            if watching is not None:
                watching.cancel()
            await self._shutdown()

    def _context(self, loop: asyncio.AbstractEventLoop) -> FeedContext:
        def load_schema(schema_id: int) -> None:
            loading = self._schema_lookup.load([SchemaRef(schema_id)])
            future = asyncio.run_coroutine_threadsafe(loading, loop)
            future.result(_BLOCKING_CALL_TIMEOUT_S)

        def produce_all(topic: str, records: list[_Produced]) -> None:
            future = asyncio.run_coroutine_threadsafe(self._produce_all(topic, records), loop)
            future.result(_BLOCKING_CALL_TIMEOUT_S)

        def last_report(pipeline_id: str, partition: int) -> PartitionStatus | None:
            reports = self.statuses.reports(pipeline_id)
            return next((r for r in reports if r.partition == partition), None)

        return FeedContext(
            settings=self._settings,
            rules=SinkRules.from_settings(self._settings),
            worker=self._worker,
            schema_text=self._schema_lookup.schema_text,
            load_schema=load_schema,
            produce_all=produce_all,
            last_report=last_report,
        )

    async def _produce_all(self, topic: str, records: list[_Produced]) -> None:
        assert self._producer is not None
        await self._producer.produce_batch(
            OutgoingRecord(topic, value, key, list(headers)) for key, value, headers in records
        )

    # --- Feeds follow the pipelines. ---

    def _reconcile(self, context: FeedContext) -> None:
        wanted = {p.id: p for p in self.pipelines.all() if not p.paused}
        for pipeline_id, feed in list(self._feeds.items()):
            connector = self.connectors.get(feed.pipeline.connector_id)
            if (
                wanted.get(pipeline_id) != feed.pipeline
                or connector is None
                # The sink's table gains (or stops filling) its key column in a new session.
                or (connector.dedup is not None) != feed.connector_keyed
            ):
                log.info("stopping pipeline feed", extra={"pipeline": pipeline_id})
                feed.stop()
                self._retiring.append(self._feeds.pop(pipeline_id))
        self._retiring = [feed for feed in self._retiring if feed.alive()]
        retiring = {feed.pipeline.id for feed in self._retiring}
        self._orphans = {k: v for k, v in self._orphans.items() if k in wanted}
        for pipeline_id, pipeline in wanted.items():
            # A feed being stopped may still hold the sink's partitions: wait for it to end.
            if pipeline_id in self._feeds or pipeline_id in retiring:
                continue
            connector = self.connectors.get(pipeline.connector_id)
            if connector is None:
                self._orphan(pipeline)
                continue
            self._orphans.pop(pipeline_id, None)
            log.info("starting pipeline feed", extra={"pipeline": pipeline_id})
            feed = Feed(context, pipeline, connector)
            feed.start()
            self._feeds[pipeline_id] = feed

    def _orphan(self, pipeline: Pipeline) -> None:
        if pipeline.id not in self._orphans:
            now = utc_now()
            self._orphans[pipeline.id] = PartitionStatus(
                pipeline_id=pipeline.id,
                partition=PIPELINE_PARTITION,
                last_error=f"connector {pipeline.connector_id!r} does not exist",
                last_error_at=now,
                failure="permanent",
                worker=self._worker,
                updated_at=now,
            )

    async def _publish(self) -> None:
        if self._producer is None:
            return
        reports = [r for feed in self._feeds.values() for r in feed.reports()]
        reports += self._orphans.values()
        # A pipeline deleted since is not reported on again (its reports were tombstoned).
        live = [r for r in reports if self.pipelines.get(r.pipeline_id) is not None]
        statuses = [
            OutgoingRecord(
                PIPELINE_STATUS_TOPIC, status_value(r), status_key(r.pipeline_id, r.partition)
            )
            for r in live
        ]
        self._metrics.pipelines.publish(live)
        try:
            await self._producer.produce_batch(statuses)
        except ProduceFailed as exc:
            log.warning("could not publish pipeline status", extra={"error": str(exc)})

    async def _shutdown(self) -> None:
        feeds = [*self._feeds.values(), *self._retiring]
        for feed in feeds:
            feed.stop()

        def join_all() -> None:
            for feed in feeds:
                feed.join(STOP_TIMEOUT_S)

        await asyncio.to_thread(join_all)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._publish(), 10)
        self._feeds.clear()
        if self._producer is not None:
            await asyncio.to_thread(self._producer.close)
        await self._reader.stop()
        await self._schema_lookup.close()
