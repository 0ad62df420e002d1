"""The state log on Kafka: compacted single-partition topics, folded in order by every instance.

Reading: ``LogReader`` assigns partition 0 of each state topic, folds every committed record and
lets callers await "caught up with everything committed so far" (the log's last stable offsets).

Writing: ``KafkaStateLog.transact`` gives the registry's writes compare-and-set semantics across
instances. All instances share one ``transactional.id``; initialising a producer with it fences
every older producer (Kafka bumps the epoch). A write is: catch up -> decide on that state ->
produce in a transaction -> commit. A commit succeeds only if no other instance initialised a
producer since ours did, and any instance that did so catches up *after* its initialisation, so
it sees our commit. Hence no two instances ever decide on the same state: one id is never given
to two schemas, and no version is lost. A fenced writer starts a new producer and retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from inlet.errors import KafkaUnavailable, StoreTimeout
from inlet.kafka import ConfigValue, OutgoingRecord, aiokafka_config, client_config
from inlet.settings import Settings
from inlet.statelog.fold import Folder, Record
from inlet.transactions import Fenced, TransactionalProducer

T = TypeVar("T")
log = logging.getLogger(__name__)

WRITER_TRANSACTIONAL_ID = "inlet-registry-writer"
_STATE_TOPIC_CONFIG = {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"}
_MAX_ATTEMPTS = 5
_WRITER_CONFIG: dict[str, ConfigValue] = {
    "transactional.id": WRITER_TRANSACTIONAL_ID,
    "enable.idempotence": True,
    "acks": "all",
    "transaction.timeout.ms": 30000,
}


def ensure_state_topics(settings: Settings, topics: list[str], timeout_s: float = 30.0) -> None:
    """Create the compacted state topics if they do not exist (blocking; call off the loop)."""
    admin = AdminClient(client_config(settings, client_id="inlet-registry-admin"))
    metadata = admin.list_topics(timeout=timeout_s)
    replication = min(3, len(metadata.brokers))
    missing = [t for t in topics if t not in metadata.topics]
    if not missing:
        return
    futures = admin.create_topics(
        [NewTopic(t, 1, replication, config=_STATE_TOPIC_CONFIG) for t in missing],
        operation_timeout=timeout_s,
    )
    for future in futures.values():
        try:
            future.result(timeout_s)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise


class LogReader:
    """Folds the state topics into ``folder`` in the background."""

    def __init__(self, settings: Settings, folder: Folder, topics: list[str], *, name: str) -> None:
        self.name = name
        self.folder = folder
        self._partitions = [TopicPartition(t, 0) for t in topics]
        self._consumer_config = aiokafka_config(settings, client_id=f"inlet-{name}-reader")
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._progress = asyncio.Condition()
        self.failed: BaseException | None = None

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("the log reader is not started")
        return self._consumer

    async def start(self, timeout_s: float = 30.0) -> None:
        # aiokafka binds to the running loop, so the consumer is made here, not in __init__.
        self._consumer = AIOKafkaConsumer(
            isolation_level="read_committed",  # an aborted (fenced) write never reaches the fold
            enable_auto_commit=False,
            group_id=None,
            **self._consumer_config,
        )
        await self._consumer.start()
        self.consumer.assign(self._partitions)
        await self.consumer.seek_to_beginning(*self._partitions)
        self._task = asyncio.get_running_loop().create_task(self._run())
        await self.sync(timeout_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        try:
            while True:
                batches = await self.consumer.getmany(timeout_ms=200)
                for partition in self._partitions:
                    for record in batches.get(partition, []):
                        self.folder.apply(partition.topic, record.key or b"", record.value)
                async with self._progress:
                    self._progress.notify_all()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failed = exc
            log.exception("state log reader stopped")
            raise

    async def _positions_now(self) -> dict[TopicPartition, int]:
        return {tp: await self.consumer.position(tp) for tp in self._partitions}

    async def sync(self, timeout_s: float = 10.0) -> None:
        """Return once everything committed before this call has been folded."""
        try:
            async with asyncio.timeout(timeout_s):
                ends: dict[TopicPartition, int] = await self.consumer.end_offsets(self._partitions)
                await self.wait_for(ends)
        except TimeoutError as exc:
            raise StoreTimeout("the state log did not catch up in time") from exc

    async def wait_for(self, offsets: dict[TopicPartition, int]) -> None:
        async with self._progress:
            while True:
                if self.failed is not None:
                    raise KafkaUnavailable("the state log reader failed") from self.failed
                positions = await self._positions_now()
                if all(positions[tp] >= end for tp, end in offsets.items()):
                    return
                await self._progress.wait()

    async def lag(self) -> dict[str, int]:
        """Per topic, the committed records not folded yet, as of the last fetch (no request)."""
        lags: dict[str, int] = {}
        for tp in self._partitions:
            end = self.consumer.last_stable_offset(tp)
            if end is None or end < 0:  # nothing fetched yet
                continue
            lags[tp.topic] = max(0, end - await self.consumer.position(tp))
        return lags


class KafkaStateLog:
    """``StateLog`` on Kafka: a ``LogReader`` plus the fenced transactional writer."""

    def __init__(self, settings: Settings, folder: Folder, topics: list[str]) -> None:
        self._settings = settings
        self.reader = LogReader(settings, folder, topics, name="registry")
        self._topics = topics
        self._writer = TransactionalProducer(
            client_config(
                settings,
                client_id="inlet-registry-writer",
                **_WRITER_CONFIG,
            )
        )
        self._write_lock = asyncio.Lock()

    async def start(self) -> None:
        await asyncio.to_thread(ensure_state_topics, self._settings, self._topics)
        await self.reader.start()

    async def stop(self) -> None:
        await self.reader.stop()
        await asyncio.to_thread(self._writer.close)

    async def sync(self) -> None:
        await self.reader.sync()

    async def transact(self, decide: Callable[[], tuple[list[Record], T]]) -> T:
        async with self._write_lock:
            for attempt in range(1, _MAX_ATTEMPTS + 1):
                try:
                    if not self._writer.is_open:
                        await asyncio.to_thread(self._writer.open)
                    await self.reader.sync()
                    records, result = decide()
                    if not records:
                        return result
                    outgoing = [
                        OutgoingRecord(r.topic, r.value, r.key, partition=0) for r in records
                    ]
                    await asyncio.to_thread(self._writer.write, outgoing)
                except (Fenced, KafkaException) as exc:
                    # Fenced: another instance wrote; the next attempt fences it back, catches
                    # up with what it wrote and decides again.
                    await self._retry_after(exc, attempt)
                    continue
                await self.reader.sync()
                return result
        raise KafkaUnavailable("the state log write did not go through")

    async def _retry_after(self, error: Exception, attempt: int) -> None:
        log.warning(
            "state log write failed; retrying", extra={"error": str(error), "attempt": attempt}
        )
        if attempt == _MAX_ATTEMPTS:
            raise KafkaUnavailable(f"the state log write failed: {error}")
        await asyncio.sleep(0.05 * attempt)
