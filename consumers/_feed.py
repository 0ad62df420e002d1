"""One pipeline's feed: a consumer in the pipeline's group feeding its sink, in its own thread.

The thread runs sessions: open the sink, join the group (``inlet-pipeline-<id>``), and on every
assignment seek each partition to where *the sink* says it resumes. Any failure (the sink is down,
a fenced commit, Kafka errors) ends the session; the next one starts the same way after a backoff,
so recovery is the same path as a restart. Blocking work (librdkafka, psycopg, file I/O, fsync)
runs here, never on the event loop; dead letters go through the process's one producer on the
loop, awaited before the sink commits past them.

Offsets are also committed to the group after each sink commit, only so that Kafka's lag tools
show the feed's progress; the feed itself never starts from them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import psycopg
from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from psycopg.conninfo import conninfo_to_dict

from consumers._failures import describe
from consumers.sinks import Batch, DeadLetter, FeedRecord, Position, Sink
from consumers.sinks.files import FilesSink
from consumers.sinks.postgres import PostgresSink
from inlet.codec.wire import (
    Headers,
    UndecodableRecord,
    UnknownSchema,
    WireDecoder,
    feed_header_values,
)
from inlet.errors import Problem
from inlet.kafka import ConfigValue, client_config
from inlet.model.connectors import Connector
from inlet.model.pipeline_sinks import dsn_secrets, scrub
from inlet.model.pipelines import PIPELINE_PARTITION, FailureKind, PartitionStatus, Pipeline
from inlet.model.pipelines import FilesSink as FilesSinkConfig
from inlet.model.pipelines import PostgresSink as PostgresSinkConfig
from inlet.sealing import SealBroken, is_sealed
from inlet.settings import Settings
from inlet.sink_layout.columns import record_columns
from inlet.sink_rules import DSN_FIELD, SinkRefused, SinkRules
from inlet.topics import pipeline_group

log = logging.getLogger("inlet.consumers.feed")

BATCH_RECORDS = 5000
POLL_S = 0.2
MEASURE_INTERVAL_S = 2.0
MIN_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
# This many records in a row sent to the dead-letter topic, none taken: the sink refuses them all
# (a constraint or a column type that no record fits), and the pipeline says it is failing.
FAILING_AFTER_REFUSED = 50
HEADER_DLQ_REASON = "inlet-dlq-reason"
HEADER_DLQ_SOURCE = "inlet-dlq-source"  # <topic>/<partition>/<offset>
HEADER_DLQ_PIPELINE = "inlet-dlq-pipeline"
# Kafka errors on a consumed message that end the session (anything else is logged and skipped).
_FATAL_CODES = {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.TOPIC_AUTHORIZATION_FAILED}

ProduceAll = Callable[[str, list[tuple[bytes | None, bytes | None, Headers]]], None]


@dataclass(frozen=True)
class FeedContext:
    """What feeds share in one process: settings, the folded log, schemas, the producer."""

    settings: Settings
    rules: SinkRules  # where sinks may deliver (checked again here, before a sink opens)
    worker: str
    schema_text: Callable[[int], str | None]  # the schemas at hand (``inlet/schema_lookup.py``)
    load_schema: Callable[[int], None]  # returns once the schema is at hand, if it exists
    produce_all: ProduceAll  # returns once Kafka acknowledged every record
    last_report: Callable[[str, int], PartitionStatus | None]


@dataclass
class _Report:
    """A partition's ``PartitionStatus`` as the feed keeps it up to date (the same names)."""

    next_offset: int | None = None
    end_offset: int | None = None
    delivered: int = 0
    dead_lettered: int = 0
    duplicates_skipped: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    failure: FailureKind | None = None


@dataclass
class _Session:
    sink: Sink
    sink_ok: bool = True
    owned: set[int] = field(default_factory=set)


class Feed:
    def __init__(self, context: FeedContext, pipeline: Pipeline, connector: Connector) -> None:
        self.pipeline = pipeline
        self._context = context
        self._topic = connector.topic
        self._initial_schema_id = connector.schema_id
        # Whether the connector keys its records (``dedup``) as this feed started: the sink
        # enforces the keys by it, and the supervisor restarts the feed when it changes.
        self.connector_keyed = connector.dedup is not None
        # A files sink stores UUIDs as text: the C reader makes it, not a UUID object to turn into
        # text again (str(UUID) was the Parquet table's largest cost a record).
        files = isinstance(pipeline.sink, FilesSinkConfig)
        self._decoder = WireDecoder(context.schema_text, uuid_text=files)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"feed-{pipeline.id}", daemon=True)
        self._lock = threading.Lock()
        self._reports: dict[int, _Report] = {}
        self._measured_at = 0.0
        # Per partition, the offset after the last record the consumer returned (all handed to
        # the sink); only the feed's thread uses it.
        self._consumed: dict[int, int] = {}
        # What libraries' messages about this pipeline's sink must never carry into a log line.
        sink = pipeline.sink
        self._secrets = dsn_secrets(sink.dsn) if isinstance(sink, PostgresSinkConfig) else []
        self._dead_letters = 0  # sent by this feed
        self._last_refusal = ""
        self._refused_run = 0  # records in a row the sink refused (dead-lettered), none taken

    # --- Control, from the supervisor's (event loop) thread. ---

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)

    def reports(self) -> list[PartitionStatus]:
        now = datetime.now(UTC)
        with self._lock:
            return [
                PartitionStatus(
                    pipeline_id=self.pipeline.id,
                    partition=partition,
                    worker=self._context.worker,
                    updated_at=now,
                    **dataclasses.asdict(report),
                )
                for partition, report in sorted(self._reports.items())
            ]

    # --- The feed's thread. ---

    def _main(self) -> None:
        backoff = MIN_BACKOFF_S
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                self._session()
            except Exception as exc:  # noqa: BLE001 - described, logged, retried
                failure = describe(exc)
                message = scrub(failure.message, self._secrets)
                extra = {
                    "pipeline": self.pipeline.id,
                    "error": message,
                    "failure": failure.kind,
                    # What the library said, for the operator: a log line, never the API.
                    "detail": scrub(f"{type(exc).__name__}: {exc}", self._secrets)[:2000],
                }
                if not failure.expected:
                    text = "".join(traceback.format_exception(exc))
                    extra["traceback"] = scrub(text, self._secrets)
                log.warning("pipeline feed failed; starting over", extra=extra)
                self._error(PIPELINE_PARTITION, message, failure.kind)
                if time.monotonic() - started > 60:
                    backoff = MIN_BACKOFF_S  # it ran a while: a new failure, not the same one
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _new_sink(self) -> Sink:
        config = self.pipeline.sink
        rules = self._context.rules
        if isinstance(config, PostgresSinkConfig):
            if is_sealed(config.dsn):  # the registry sealed it with a key this worker lacks
                raise SealBroken("the DSN is sealed with another secret key: set INLET_SECRET_KEY")
            try:
                params = {k: str(v) for k, v in conninfo_to_dict(config.dsn).items()}
            except psycopg.ProgrammingError:
                # Not chained: psycopg's message quotes the DSN, which may hold a password.
                reason = "not a PostgreSQL connection string"
                raise SinkRefused(Problem(field=DSN_FIELD, reason=reason)) from None
            rules.check_hosts(params)
            keyed = config.dedup and self.connector_keyed
            return PostgresSink(
                self.pipeline.id, self._topic, config, self._decoder.schema, keyed=keyed
            )
        # Relative to this host's files root (a pipeline stored before the root existed may be
        # absolute: then it must lie inside it).
        directory = rules.directory(config.directory)
        config = msgspec.structs.replace(config, directory=str(directory))
        return FilesSink(config, self._decoder.schema)

    def _new_consumer(self) -> Consumer:
        overrides: dict[str, ConfigValue] = {
            "group.id": pipeline_group(self.pipeline.id),
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            # A worker that died (SIGKILL, a lost host) holds its partitions until the group
            # notices; librdkafka's 45 s default is a long stall for a feed.
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 1000,
        }
        client_id = f"inlet-feed-{self.pipeline.id}"
        return Consumer(client_config(self._context.settings, client_id=client_id, **overrides))

    def _session(self) -> None:
        session = _Session(self._new_sink())
        consumer: Consumer | None = None
        failed = True
        try:
            self._context.load_schema(self._initial_schema_id)
            session.sink.start(record_columns(self._decoder.schema(self._initial_schema_id)))
            consumer = self._new_consumer()
            self._subscribe(consumer, session)
            self._recovered()
            while not self._stopping.is_set():
                self._consume(consumer, session)
                self._advanced(consumer, session.sink.tick())
                self._measure(consumer, session.owned)
            # A clean stop: finish open files. The final reports stay for the last publish.
            self._advanced(consumer, session.sink.release(sorted(session.owned)))
            failed = False
        finally:
            session.sink_ok = False  # the revoke callback of close() must not use the sink
            session.sink.close()
            if consumer is not None:
                consumer.close()
            if failed:
                with self._lock:
                    for partition in session.owned:
                        self._reports.pop(partition, None)

    def _consume(self, consumer: Consumer, session: _Session) -> None:
        """Consume a batch and deliver it to the sink."""
        messages = consumer.consume(BATCH_RECORDS, POLL_S)
        if not messages:
            return
        # The collector is paused from the batch's making until it is freed, as the C reader
        # pauses it for its call: the batch's tens of thousands of containers (records, headers,
        # decoded dicts) are all reachable until the sink has them, none garbage, and set off
        # collections that walk the batch again and again (a third of the reading thread's CPU,
        # bench/feed_stages_bench.py). Freed by their counts before the collector resumes, no
        # collection meets them (pausing only while the batch is made left 1.2 µs a record).
        with collector_paused():
            batch = self._batch(messages)
            sent = self._dead_letters
            positions = session.sink.write(batch, self._dead_letter)
            total = len(batch.records) + len(batch.undecodable)
            self._refusals(total, self._dead_letters - sent)
            self._advanced(consumer, positions)
            self._consumed.update(batch.ends)
            del batch, messages

    def _subscribe(self, consumer: Consumer, session: _Session) -> None:
        def on_assign(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            numbers = [tp.partition for tp in partitions]
            positions = session.sink.positions(numbers)
            for tp in partitions:
                resume = positions[tp.partition].next_offset
                tp.offset = OFFSET_BEGINNING if resume is None else resume
            consumer.assign(partitions)
            session.owned.update(numbers)
            self._own(positions)
            resumes = {p: positions[p].next_offset for p in numbers}
            log.info(
                "pipeline partitions assigned",
                extra={"pipeline": self.pipeline.id, "positions": resumes},
            )

        def on_revoke(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            numbers = [tp.partition for tp in partitions]
            for partition in numbers:
                self._consumed.pop(partition, None)
            if session.sink_ok:
                self._advanced(consumer, session.sink.release(numbers))
                session.owned.difference_update(numbers)
                with self._lock:
                    for partition in numbers:
                        self._reports.pop(partition, None)  # the next owner reports them
            consumer.unassign()

        consumer.subscribe(
            [self._topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_revoke
        )

    # --- Records. ---

    def _batch(self, messages: list[Message]) -> Batch:
        records: list[FeedRecord] = []
        undecodable: list[DeadLetter] = []
        ends: dict[int, int] = {}
        kept: list[Message] = []
        values: list[bytes | None] = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal() or error.code() in _FATAL_CODES:
                    raise KafkaException(error)
                extra = {"pipeline": self.pipeline.id, "error": str(error)}
                log.warning("consumer error", extra=extra)
                continue
            kept.append(message)
            values.append(message.value())
        append = records.append
        # Each accessor of a message is called once: each call makes a Python object.
        for message, raw, decoded in zip(kept, values, self._decode(values), strict=True):
            partition, offset = message.partition(), message.offset()
            assert partition is not None
            assert offset is not None
            ends[partition] = offset + 1
            headers = _headers(message)
            if isinstance(decoded, Exception):
                undecodable.append(
                    DeadLetter(partition, offset, message.key(), raw, headers, str(decoded))
                )
                continue
            received_at_ms, request_id, key = feed_header_values(headers)
            if received_at_ms is None:
                kind, timestamp = message.timestamp()
                received_at_ms = None if kind == TIMESTAMP_NOT_AVAILABLE else timestamp
            schema_id, value = decoded
            append(
                FeedRecord(
                    partition,
                    offset,
                    message.key(),
                    headers,
                    raw,
                    received_at_ms,
                    request_id,
                    schema_id,
                    value,
                    key,
                )
            )
        return Batch(records, undecodable, ends)

    def _decode(
        self, values: list[bytes | None]
    ) -> list[tuple[int, dict[str, Any]] | UnknownSchema | UndecodableRecord]:
        """The batch's values decoded together (``WireDecoder.decode_typed_batch``)."""
        decoded = self._decoder.decode_typed_batch(values)
        missing = {result.schema_id for result in decoded if isinstance(result, UnknownSchema)}
        if missing:
            # The registry writes a schema before any record uses it; it may not be at hand yet.
            for schema_id in missing:
                self._context.load_schema(schema_id)
            unknown = [i for i, result in enumerate(decoded) if isinstance(result, UnknownSchema)]
            again = self._decoder.decode_typed_batch([values[i] for i in unknown])
            for index, result in zip(unknown, again, strict=True):
                decoded[index] = result
        return decoded

    def _dead_letter(self, letters: list[DeadLetter]) -> None:
        source = self._topic
        records = [
            (
                letter.key,
                letter.value,
                [
                    *letter.headers,
                    (HEADER_DLQ_REASON, letter.reason.encode()),
                    (HEADER_DLQ_SOURCE, f"{source}/{letter.partition}/{letter.offset}".encode()),
                    (HEADER_DLQ_PIPELINE, self.pipeline.id.encode()),
                ],
            )
            for letter in letters
        ]
        self._context.produce_all(self.pipeline.dlq_topic, records)
        extra = {"pipeline": self.pipeline.id, "count": len(letters)}
        log.warning("records sent to the dead-letter topic", extra=extra)
        now = datetime.now(UTC)
        with self._lock:
            for letter in letters:
                report = self._reports.setdefault(letter.partition, _Report())
                report.dead_lettered += 1
                report.last_error = f"offset {letter.offset}: {letter.reason}"
                report.last_error_at = now
            self._dead_letters += len(letters)
            if letters:
                self._last_refusal = letters[-1].reason

    def _refusals(self, total: int, refused: int) -> None:
        """Count records refused in a row: past ``FAILING_AFTER_REFUSED``, the pipeline fails."""
        if total == 0:
            return
        if refused < total:
            self._refused_run = 0
            self._recovered()
            return
        self._refused_run += refused
        if self._refused_run >= FAILING_AFTER_REFUSED:
            message = (
                f"the sink refused each of the last {self._refused_run} records (all sent to the "
                f"dead-letter topic); the latest: {self._last_refusal}"
            )
            self._error(PIPELINE_PARTITION, message, "permanent")

    def _recovered(self) -> None:
        """The sink works again: the pipeline-level failure, if any, is over."""
        if self._refused_run >= FAILING_AFTER_REFUSED:
            return  # the sink opens, but still refuses every record
        with self._lock:
            report = self._reports.get(PIPELINE_PARTITION)
            if report is None:
                # A failure another process (or this one, before a restart) reported.
                before = self._context.last_report(self.pipeline.id, PIPELINE_PARTITION)
                if before is None or before.failure is None:
                    return
                report = _Report(last_error=before.last_error, last_error_at=before.last_error_at)
                self._reports[PIPELINE_PARTITION] = report
            report.failure = None

    # --- Progress and status. ---

    def _own(self, positions: dict[int, Position]) -> None:
        with self._lock:
            for partition, position in positions.items():
                before = self._context.last_report(self.pipeline.id, partition)
                report = _Report(
                    next_offset=position.next_offset,
                    delivered=position.delivered,
                    duplicates_skipped=position.skipped,
                )
                if before is not None:
                    # Dead letters are counted by reports only; carry the count forward.
                    report.dead_lettered = before.dead_lettered
                    report.last_error = before.last_error
                    report.last_error_at = before.last_error_at
                self._reports[partition] = report

    def _advanced(self, consumer: Consumer, positions: dict[int, Position]) -> None:
        if not positions:
            return
        with self._lock:
            for partition, position in positions.items():
                report = self._reports.setdefault(partition, _Report())
                report.next_offset = position.next_offset
                report.delivered = position.delivered
                report.duplicates_skipped = position.skipped
        offsets = [
            TopicPartition(self._topic, partition, position.next_offset)
            for partition, position in positions.items()
            if position.next_offset is not None
        ]
        if offsets:
            try:
                consumer.commit(offsets=offsets, asynchronous=True)
            except KafkaException as exc:
                # Only monitoring reads the group's offsets: never worth failing a feed for.
                log.debug("offset commit failed", extra={"error": str(exc)})

    def _measure(self, consumer: Consumer, owned: set[int]) -> None:
        now = time.monotonic()
        if now - self._measured_at < MEASURE_INTERVAL_S or not owned:
            return
        self._measured_at = now
        # Where the consumer stands (local, no request): past transaction markers and aborted
        # records too, which take offsets but are no records to deliver.
        read = consumer.position([TopicPartition(self._topic, p) for p in sorted(owned)])
        for position in read:
            partition = position.partition
            # Cached: the high watermark of the last fetch response, no request to the broker
            # (asking the broker costs a round trip per partition on the feed's thread).
            _, high = consumer.get_watermark_offsets(
                TopicPartition(self._topic, partition), cached=True
            )
            with self._lock:
                report = self._reports.setdefault(partition, _Report())
                if high >= 0:  # -1001: not fetched yet
                    report.end_offset = high
                # The sink has every record the consumer returned: what lies between its next
                # offset and the consumer's position is markers, so a partition whose last
                # transaction's marker is read shows no lag.
                delivered_to = report.next_offset or 0
                if position.offset > delivered_to >= self._consumed.get(partition, 0):
                    report.next_offset = position.offset

    def _error(self, partition: int, message: str, failure: FailureKind) -> None:
        with self._lock:
            report = self._reports.setdefault(partition, _Report())
            report.last_error = message[:1000]
            report.last_error_at = datetime.now(UTC)
            report.failure = failure


def _headers(message: Message) -> Headers:
    # A consumed message's headers are a list of (str, bytes | None) pairs (librdkafka's
    # consumer never gives str values): kept as they are, no copy per record.
    found = message.headers()
    return [] if found is None else found  # type: ignore[return-value]


_pause_lock = threading.Lock()
_pausing = 0  # feeds (threads) inside collector_paused() now
_resume = False  # whether the collector ran when the first of them entered
_paused_at = 0.0  # when the collector last started waiting (or collected, below)
# Feeds that overlap may keep the collector paused for long: past this, the feed that leaves
# collects what waited (the process's other threads make garbage too).
MAX_PAUSE_S = 1.0


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The garbage collector paused while the block runs, resumed when the last feed of the
    process leaves its block (the collector is the process's: feeds run in threads), and only
    if it ran when the first one entered; while feeds keep it paused, the one that leaves
    collects, at most every ``MAX_PAUSE_S``."""
    global _pausing, _resume, _paused_at  # noqa: PLW0603 - the process's one collector
    with _pause_lock:
        if _pausing == 0:
            _resume = gc.isenabled()
            _paused_at = time.monotonic()
            gc.disable()
        _pausing += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pausing -= 1
            if _pausing == 0:
                if _resume:
                    gc.enable()
            elif _resume and time.monotonic() - _paused_at > MAX_PAUSE_S:
                gc.collect()
                _paused_at = time.monotonic()
