"""Replaying a connector's rejected records after a schema fix, exactly once.

``POST /v1/connectors/{id}/rejected/replay`` reads the connector's rejected topic from where the
last replay stopped (the consumer group ``inlet-replay-<connector id>``; the first replay starts at
the oldest record kept) to its end, at most ``limit`` records, and checks each against the
connector's current schema (``registry/replay_plan.py``). Then, in one Kafka transaction:

* the records that pass go to the connector topic (Avro, the current schema id, keyed as the
  gateway keys them, with the original request id and received-at, and ``inlet-replay-of``);
* the ones that still fail are kept again on the rejected topic with their new reasons
  (``replay_of`` names the record they were), so a later fix can replay them too;
* the group's position moves past everything read.

A crash or a failure before the commit leaves nothing behind (readers are ``read_committed``) and
the same records are read again next time; a commit makes all of it visible at once. Replays of
one connector share a ``transactional.id`` whose initialisation fences any earlier one, and read
their starting position only after it: two concurrent replays never write a record twice (the
fenced one answers 409). ``dry_run`` reads and checks, and writes nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

import msgspec
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from inlet.codec.record_codec import RecordCodec
from inlet.errors import KafkaUnavailable
from inlet.kafka import ConfigValue, OutgoingRecord, client_config, producer_config
from inlet.model.connectors import Connector, ConnectorState
from inlet.records import HEADER_RECEIVED_AT, HEADER_REPLAY_OF, HEADER_REQUEST_ID
from inlet.settings import Settings
from inlet.statelog.fold import StateLog
from inlet.topic_reads import read_from
from inlet.transactions import Fenced, TransactionalProducer
from registry.errors import ReplayConflict
from registry.replay_plan import KeptRecord, ReplayPlan, StillRejected, plan_replay

DEFAULT_LIMIT = 10_000
MAX_LIMIT = 100_000
MAX_LISTED = 100  # still-rejected records listed in an answer (all are counted)
_KAFKA_TIMEOUT_S = 30.0
_COORDINATOR_NOT_READY = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
}
_encoder = msgspec.json.Encoder()


class ReplayResult(msgspec.Struct, frozen=True, kw_only=True):
    dry_run: bool
    read: int  # kept records read
    accepted: int  # now valid: written to the connector topic (or would be, in a dry run)
    rejected: int  # still invalid: kept again with their new reasons
    unreadable: int  # not kept records at all (left where they are)
    more: bool  # the limit stopped the read before the topic's end: replay again for the rest
    schema_id: int
    schema_version: int
    still_rejected: list[StillRejected]  # the first MAX_LISTED
    still_rejected_total: int


def replay_group(connector_id: str) -> str:
    return f"inlet-replay-{connector_id}"


class RejectedReplayer:
    """Replays for one registry instance; one replay per connector at a time here (others, on
    other instances, are fenced by the transactional id)."""

    def __init__(self, settings: Settings, connectors: ConnectorState, log: StateLog) -> None:
        self._settings = settings
        self._connectors = connectors
        self._log = log  # to confirm an unknown connector on caught-up state
        self._running: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def replay(self, connector_id: str, *, dry_run: bool, limit: int) -> ReplayResult:
        connector = await self._connectors.confirmed(connector_id, self._log)
        lock = self._running[connector.id]
        if lock.locked():
            raise ReplayConflict(f"a replay of connector {connector.id!r} is running")
        async with lock:
            try:
                return await asyncio.to_thread(self._replay, connector, dry_run, limit)
            except Fenced as exc:
                raise ReplayConflict(
                    f"another replay of connector {connector.id!r} took over"
                ) from exc
            except KafkaException as exc:
                raise KafkaUnavailable(f"the replay did not complete: {exc}") from exc

    def _replay(self, connector: Connector, dry_run: bool, limit: int) -> ReplayResult:
        """Blocking (librdkafka): runs in a worker thread."""
        codec = RecordCodec.of_connector(connector)
        producer = None if dry_run else self._transactional_producer(connector)
        if producer is not None:
            producer.open()  # fences any earlier replay of this connector
        consumer = Consumer(
            client_config(
                self._settings,
                client_id="inlet-replay",
                **_consumer_config(replay_group(connector.id)),
            )
        )
        try:
            # Only now, after the producer fenced any earlier replay, read where to start.
            kept, positions, more = _read(consumer, connector.rejected_topic, limit)
            plan = plan_replay(kept, codec, connector.id)
            if producer is not None and positions:
                offsets = (positions, consumer.consumer_group_metadata())
                producer.write(_replayed(connector, plan), offsets=offsets)
        finally:
            consumer.close()
            if producer is not None:
                producer.close()
        still = [answer for answer, _again in plan.rejected]
        return ReplayResult(
            dry_run=dry_run,
            read=len(kept),
            accepted=len(plan.accepted),
            rejected=len(plan.rejected),
            unreadable=len(plan.unreadable),
            more=more,
            schema_id=codec.schema_id,
            schema_version=codec.schema_version,
            still_rejected=still[:MAX_LISTED],
            still_rejected_total=len(still),
        )

    def _transactional_producer(self, connector: Connector) -> TransactionalProducer:
        transactional: dict[str, ConfigValue] = {
            "transactional.id": replay_group(connector.id),
            "transaction.timeout.ms": 60_000,
        }
        return TransactionalProducer(
            producer_config(self._settings, client_id="inlet-replay", **transactional),
            timeout_s=_KAFKA_TIMEOUT_S,
        )


def _consumer_config(group: str) -> dict[str, ConfigValue]:
    return {
        "group.id": group,  # its committed offsets are the replay's position; never joined
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
    }


def _read(
    consumer: Consumer, topic: str, limit: int
) -> tuple[list[KeptRecord], list[TopicPartition], bool]:
    """Up to ``limit`` kept records from the group's position on; the positions after them;
    whether records were left for another replay."""
    partitions = consumer.list_topics(topic, timeout=_KAFKA_TIMEOUT_S).topics.get(topic)
    if partitions is None or partitions.error is not None:
        raise KafkaException(partitions.error if partitions else f"no topic {topic}")
    committed = _committed(consumer, [TopicPartition(topic, p) for p in partitions.partitions])
    start = {tp.partition: tp.offset for tp in committed if tp.offset >= 0}
    messages, positions, finished = read_from(consumer, topic, start, limit, _KAFKA_TIMEOUT_S)
    kept = [KeptRecord(m.partition() or 0, m.offset() or 0, m.value()) for m in messages]
    moved = [TopicPartition(topic, p, offset) for p, offset in positions.items()]
    return kept, moved, not finished


def _committed(consumer: Consumer, partitions: list[TopicPartition]) -> list[TopicPartition]:
    """The group's positions, waiting out a coordinator that is not ready yet (a new group's
    coordinator may answer NOT_COORDINATOR or LOAD_IN_PROGRESS for a moment)."""
    deadline = time.monotonic() + _KAFKA_TIMEOUT_S
    while True:
        try:
            return consumer.committed(partitions, timeout=_KAFKA_TIMEOUT_S)
        except KafkaException as exc:
            error = exc.args[0]
            transient = isinstance(error, KafkaError) and (
                error.retriable() or error.code() in _COORDINATOR_NOT_READY
            )
            if not transient or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _replayed(connector: Connector, plan: ReplayPlan) -> list[OutgoingRecord]:
    """What a replay writes: records that now pass, and those kept again with new reasons."""
    records = [
        OutgoingRecord(
            connector.topic,
            replayed.value,
            replayed.key,
            headers=[
                (HEADER_REQUEST_ID, replayed.request_id),
                (HEADER_RECEIVED_AT, str(replayed.received_at_ms)),
                (HEADER_REPLAY_OF, replayed.source.at),
            ],
        )
        for replayed in plan.accepted
    ]
    records += [
        OutgoingRecord(
            connector.rejected_topic,
            _encoder.encode(again),
            headers=[(HEADER_REPLAY_OF, again.replay_of)],
        )
        for _answer, again in plan.rejected
    ]
    return records
