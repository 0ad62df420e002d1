"""The sample worker: follows every connector's topics and keeps ``_inlet_samples`` current.

Start-up, in this order (``consumers/README.md`` says why it is exact):

1. a transactional producer with the one ``transactional.id`` of sample writers: starting it fences
   any previous worker (its open transaction is aborted, its next commit fails);
2. the state it left: ``_inlet_samples`` folded to its end (committed records only);
3. a fold of ``_inlet_connectors`` (to forget deleted ones) and, unless schemas are in an external
   registry (``inlet/schema_lookup.py``), of ``_schemas`` (to decode records);
4. the consumer, subscribed by pattern to every connector topic and rejected topic in group
   ``inlet-samples``; on each assignment it starts every partition at the stored position.

Then: consume, advance the ``Sampler``, and write the changed states in one transaction, at most
every ``sample_interval_s`` when samples were added, else every ``counts_interval_s``.

Connector topics are read with confluent-kafka (librdkafka is the faster reader); its blocking
calls run in a worker thread, one at a time. The state topics are read with the shared
``LogReader`` (aiokafka) and written by the shared ``TransactionalProducer``
(``inlet/transactions.py``), its blocking calls in a worker thread too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import Any, NamedTuple

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from consumers.metrics import ConsumerMetrics
from consumers.sampler import Sampler, version_in_subject
from inlet.codec.wire import WireDecoder
from inlet.errors import InletError
from inlet.kafka import ConfigValue, OutgoingRecord, client_config
from inlet.model.samples import SampleState
from inlet.model.schemas import SchemaState
from inlet.schema_lookup import SchemaRef, schema_lookup, schema_topics
from inlet.settings import Settings
from inlet.statelog.fold import StateFold, text_key
from inlet.statelog.kafka import LogReader, ensure_state_topics
from inlet.topics import (
    CONNECTOR_TOPICS_PATTERN,
    CONNECTORS_TOPIC,
    SAMPLES_TOPIC,
    connector_subject,
    parse_connector_topic,
)
from inlet.transactions import Fenced, TransactionalProducer

log = logging.getLogger("inlet.consumers.samples")

SAMPLES_GROUP = "inlet-samples"
SAMPLES_TRANSACTIONAL_ID = "inlet-samples-writer"
BATCH_RECORDS = 2000
POLL_S = 0.1
SCHEMA_RETRY_S = 1.0
# A consumed record's error that only means "this topic is gone" (a connector was deleted).
_QUIET_ERRORS = {KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART}
_WRITER_CONFIG: dict[str, ConfigValue] = {
    "transactional.id": SAMPLES_TRANSACTIONAL_ID,
    "enable.idempotence": True,
    "acks": "all",
    "compression.type": "gzip",  # JSON compresses well
    "transaction.timeout.ms": 30000,
}


class SampleWorkerFenced(Exception):
    """Another sample worker started and took over writing ``_inlet_samples``; this one stops."""


class _Consumed(NamedTuple):
    """A consumed record as the sampler reads it (``consumers.sampler.KafkaMessage``)."""

    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, str | bytes | None]] | None


class _Deletions:
    """Collects the ids of connectors deleted on the log, for the sampler to forget."""

    def __init__(self) -> None:
        self._pending: list[str] = []

    def apply(self, topic: str, key: bytes, value: bytes | None) -> None:
        if topic == CONNECTORS_TOPIC and value is None:
            self._pending.append(text_key(topic, key))

    def take(self) -> list[str]:
        taken, self._pending = self._pending, []
        return taken


class SampleWorker:
    name = "samples"

    def __init__(
        self,
        settings: Settings,
        *,
        sample_interval_s: float = 0.25,
        counts_interval_s: float = 1.0,
        metadata_refresh_ms: int = 1000,
        metrics: ConsumerMetrics | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics or ConsumerMetrics()
        self._sample_interval_s = sample_interval_s
        self._counts_interval_s = counts_interval_s
        self._metadata_refresh_ms = metadata_refresh_ms
        self._deletions = _Deletions()
        folded = SchemaState()
        self._reader = LogReader(
            settings,
            StateFold(folded, self._deletions),
            [*schema_topics(settings), CONNECTORS_TOPIC],
            name="samples",
        )
        self.schemas = schema_lookup(settings, folded, self._reader.sync)
        self.sampler = Sampler(
            WireDecoder(self.schemas.schema_text),
            functools.partial(version_in_subject, self.schemas),
        )
        self._writer = TransactionalProducer(
            client_config(settings, client_id="inlet-samples-writer", **_WRITER_CONFIG)
        )
        self._polling: asyncio.Future[list[Message]] | None = None  # the consume() in flight
        self.ready = asyncio.Event()  # set once subscribed (for tests and health)
        self.assigned: frozenset[str] = frozenset()  # the topics this worker reads now

    async def run(self, stop: asyncio.Event) -> None:
        """Sample until ``stop`` is set; write what is pending; close every client."""
        settings = self._settings
        topics = [*schema_topics(settings), CONNECTORS_TOPIC, SAMPLES_TOPIC]
        await asyncio.to_thread(ensure_state_topics, settings, topics)
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(self.schemas.close)
            stack.push_async_callback(self._close_producer)
            await self._open_producer()  # first: it fences any older worker before we read
            await self._load()
            stack.push_async_callback(self._reader.stop)
            await self._reader.start()
            stack.callback(self._metrics.state_readers.watch(self._reader).cancel)
            consumer = Consumer(self._consumer_config())
            stack.push_async_callback(self._close_consumer, consumer)
            consumer.subscribe([CONNECTOR_TOPICS_PATTERN], on_assign=self._on_assign)
            self.ready.set()
            log.info("sample worker started")
            try:
                await self._consume(stop, consumer)
            finally:
                self.ready.clear()
            await self._flush()
        log.info("sample worker stopped")

    async def _close_consumer(self, consumer: Consumer) -> None:
        if self._polling is not None:
            await asyncio.wait([self._polling])
        await asyncio.to_thread(consumer.close)  # leaves the group: a restart rejoins at once

    def _consumer_config(self) -> dict[str, Any]:
        overrides: dict[str, ConfigValue] = {
            "group.id": SAMPLES_GROUP,
            # After a crash, the group hands the partitions on once this session times out.
            "session.timeout.ms": 10000,
            "isolation.level": "read_committed",
            # Positions live in the sample state; the group's offsets are never used.
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            # Eager rebalancing: on_assign gets the whole assignment and assigns it.
            "partition.assignment.strategy": "roundrobin",
            # How soon a new connector's topics are matched by the pattern.
            "topic.metadata.refresh.interval.ms": self._metadata_refresh_ms,
            "fetch.wait.max.ms": 100,
        }
        return client_config(self._settings, client_id="inlet-samples", **overrides)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Runs inside consume(), in its thread, while the worker awaits that call: nothing changes
        # the sampler meanwhile, so reading positions here is safe.
        for tp in partitions:
            parsed = parse_connector_topic(tp.topic)
            position = None
            if parsed is not None:
                connector_id, rejected = parsed
                position = self.sampler.position(
                    connector_id, rejected=rejected, partition=tp.partition
                )
            tp.offset = OFFSET_BEGINNING if position is None else position
        consumer.assign(partitions)
        self.assigned = frozenset(tp.topic for tp in partitions)
        connectors = {p[0] for t in self.assigned if (p := parse_connector_topic(t)) is not None}
        self._metrics.followed.set(len(connectors))

    async def _load(self) -> None:
        """Fold ``_inlet_samples`` once, to its end: the state the previous worker committed."""
        state = SampleState()
        loader = LogReader(self._settings, state, [SAMPLES_TOPIC], name="samples-loader")
        await loader.start()
        await loader.stop()
        loaded = [s for cid in state.connector_ids() if (s := state.get(cid)) is not None]
        self.sampler.load(loaded)
        log.info("sample state loaded", extra={"connectors": len(loaded)})

    async def _consume(self, stop: asyncio.Event, consumer: Consumer) -> None:
        loop = asyncio.get_running_loop()
        last_write = loop.time()
        while not stop.is_set():
            if self._reader.failed is not None:
                raise RuntimeError("the state log reader failed") from self._reader.failed
            for connector_id in self._deletions.take():
                self.sampler.forget(connector_id)
            # Shielded: if this task is cancelled, the call still ends in its thread, and
            # _close_consumer waits for it (librdkafka's consumer is used by one call at a time).
            self._polling = asyncio.ensure_future(
                asyncio.to_thread(consumer.consume, BATCH_RECORDS, POLL_S)
            )
            messages = await asyncio.shield(self._polling)
            if messages:
                await self._process(messages, stop)
            waited = loop.time() - last_write
            if (self.sampler.has_new_samples and waited >= self._sample_interval_s) or (
                self.sampler.has_changes and waited >= self._counts_interval_s
            ):
                await self._flush()
                last_write = loop.time()

    async def _process(self, messages: list[Message], stop: asyncio.Event) -> None:
        batch = [item for message in messages if (item := _consumed(message)) is not None]
        sampler = self.sampler
        wanted = {
            SchemaRef(schema_id, connector_subject(connector_id))
            for (connector_id, rejected), record in batch
            if not rejected
            and (schema_id := sampler.missing_schema(connector_id, record)) is not None
        }
        if wanted:
            await self._load_schemas(wanted, stop)
        valid = rejected_read = 0
        for (connector_id, rejected), record in batch:
            if rejected:
                rejected_read += sampler.add_rejected(connector_id, record)
            else:
                valid += sampler.add_valid(connector_id, record)
        self._metrics.sampled_valid.inc(valid)
        self._metrics.sampled_rejected.inc(rejected_read)

    async def _load_schemas(self, wanted: set[SchemaRef], stop: asyncio.Event) -> None:
        # The gateway registered the schema before writing; our fold (or cache) is just behind.
        # Until the schemas are at hand nothing moves on: a record sampled without its schema
        # would be lost as a sample for good.
        while not stop.is_set():
            try:
                await self.schemas.load(wanted)
            except InletError as exc:
                if not exc.retryable:
                    raise
                log.warning("schemas are not at hand yet; retrying", extra={"error": str(exc)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), SCHEMA_RETRY_S)
            else:
                return

    # --- Writing. ---

    async def _open_producer(self) -> None:
        if self._writer.is_open:
            return
        try:
            await asyncio.to_thread(self._writer.open)
        except Fenced as exc:
            raise SampleWorkerFenced("another sample worker took over _inlet_samples") from exc

    async def _close_producer(self) -> None:
        await asyncio.to_thread(self._writer.close)

    async def _flush(self) -> None:
        """Write every changed state in one transaction; on failure keep them for the next try."""
        snapshot = self.sampler.snapshot()
        if not snapshot.values:
            return
        records = [
            OutgoingRecord(SAMPLES_TOPIC, value, connector_id.encode(), partition=0)
            for connector_id, value in snapshot.values
        ]
        try:
            await self._open_producer()
            await asyncio.to_thread(self._writer.write, records)
        except Fenced as exc:
            raise SampleWorkerFenced("another sample worker took over _inlet_samples") from exc
        except KafkaException as exc:
            # Every state is a whole, self-consistent snapshot, so writing it again later is
            # always right.
            log.warning("writing sample state failed; retrying", extra={"error": str(exc)})
            return
        self.sampler.written(snapshot)


# Per message, so remembered per topic name (a few per connector).
_parse_topic = functools.lru_cache(maxsize=4096)(parse_connector_topic)


def _consumed(message: Message) -> tuple[tuple[str, bool], _Consumed] | None:
    """Where a consumed message belongs (connector id, rejected?) and the record; None to skip."""
    error = message.error()
    if error is not None:
        if error.fatal() or error.code() == KafkaError._FATAL:
            raise KafkaException(error)
        if error.code() not in _QUIET_ERRORS:
            log.warning("consume error", extra={"error": error.str()})
        return None
    topic = message.topic()
    parsed = None if topic is None else _parse_topic(topic)
    partition, offset = message.partition(), message.offset()
    if parsed is None or partition is None or offset is None:
        return None
    headers = message.headers()  # a list (or None) on consumed records; a dict only on produce
    record = _Consumed(
        partition,
        offset,
        message.timestamp()[1],
        message.key(),
        message.value(),
        headers if isinstance(headers, list) else None,
    )
    return parsed, record
