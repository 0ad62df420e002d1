"""Idempotency across gateway processes and instances: claims arbitrated by ``_inlet_dedup``'s
partition order.

Every gateway process that has a connector with ``dedup`` folds the whole dedup topic
(``DedupFold``: every partition, from the beginning when the first such connector appears;
``/health/ready`` says 503 until caught up) and follows it; one with none reads nothing of it
(``Deduplicator``). A request with keys it does not find accepted:

1. writes a ``claim`` per key (this process's id, an attempt number, a lease) to the key's
   partition (by digest), and awaits Kafka's acknowledgement;
2. waits until its own fold has read past its claims' offsets: the fold then says, the same on
   every process, who holds each key: the first live claim in log order, or an acceptance;
3. a key accepted meanwhile is a duplicate; a key another attempt holds is ``in_progress`` (409,
   ``Retry-After``: the caller's claims are released first); a key it holds, it writes;
4. after Kafka acknowledged the records it writes ``accepted`` (where each landed) and awaits
   that too before answering 200; a refusal or failure writes ``released`` instead, so a retry is
   processed afresh. A process that dies holding a key leaves its lease to lapse.

Never two writes of a key answered ``duplicate``: only the holder writes, and a holder must be
done within its lease (``lease_ms``: the claim's and both produces' deadlines, with room), after
which another attempt may win. What is not covered: records of an attempt answered 503 that Kafka
writes after all (``DELIVERY_TIMEOUT_MS``), and a process that dies after its records and before
its acceptance were acknowledged (its sender got no 200 either): a retry writes them again.

The topic: ``DEDUP_PARTITIONS`` partitions, ``cleanup.policy=compact,delete``, retention the
longest window plus a day, claims compacted only once their leases are long over. Memory per
process: the ``DedupIndex`` of accepted keys within their windows (one entry per record of a
request key) and the claims in flight.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import secrets
import time
from collections.abc import Iterable, Sequence
from typing import Final, NamedTuple

from aiokafka import TopicPartition
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from gateway.dedup_fold import Accepted, Claim, DedupFold, Entry, Released, encode_entry, entry_key
from inlet.errors import KafkaUnavailable, StateUnavailable
from inlet.kafka import (
    AsyncProducer,
    Delivery,
    OutgoingRecord,
    ProduceFailed,
    client_config,
    producer_config,
)
from inlet.model.dedup import MAX_WINDOW_S
from inlet.settings import Settings
from inlet.statelog.kafka import LogReader
from inlet.topics import DEDUP_TOPIC

log = logging.getLogger("inlet.gateway.dedup")

DEDUP_PARTITIONS: Final = 6
_DAY_MS: Final = 86_400_000
# Claims are compacted only this long after they were written: far beyond any lease.
_COMPACTION_LAG_MS: Final = 600_000
_TOPIC_CONFIG: Final = {
    "cleanup.policy": "compact,delete",
    "retention.ms": str(MAX_WINDOW_S * 1000 + _DAY_MS),
    "min.compaction.lag.ms": str(_COMPACTION_LAG_MS),
}
_PRUNE_EVERY_S: Final = 60.0
# Every claim waits for the reader to fetch it back: a short long-poll keeps that wait short
# (at the cost of up to this many idle fetches a second per process: 1000 / it).
_FETCH_MAX_WAIT_MS: Final = 20
# A reader that does not start (Kafka down) is tried again after this long, doubling up to max.
_START_RETRY_MIN_S, _START_RETRY_MAX_S = 0.5, 30.0
# How long a caller that lost a key to an attempt in flight is told to wait.
IN_PROGRESS_RETRY_S: Final = 1.0


def ensure_dedup_topic(settings: Settings, timeout_s: float = 30.0) -> int:
    """Create ``_inlet_dedup`` if missing (blocking: off the loop); its partition count."""
    admin = AdminClient(client_config(settings, client_id="inlet-gateway-admin"))
    metadata = admin.list_topics(timeout=timeout_s)
    existing = metadata.topics.get(DEDUP_TOPIC)
    if existing is not None and existing.error is None and existing.partitions:
        return len(existing.partitions)
    if existing is None or existing.error is not None:
        replication = min(3, len(metadata.brokers))
        topic = NewTopic(DEDUP_TOPIC, DEDUP_PARTITIONS, replication, config=_TOPIC_CONFIG)
        future = admin.create_topics([topic], operation_timeout=timeout_s)[DEDUP_TOPIC]
        try:
            future.result(timeout_s)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    # A topic just made (here or by another process) can be listed by a broker that has not
    # learnt its partitions yet: zero of them would put every claim nowhere.
    deadline = time.monotonic() + timeout_s
    while True:
        listed = admin.list_topics(DEDUP_TOPIC, timeout=timeout_s).topics[DEDUP_TOPIC]
        if listed.error is None and listed.partitions:
            return len(listed.partitions)
        if time.monotonic() > deadline:
            raise KafkaUnavailable(f"{DEDUP_TOPIC} has no partitions listed after {timeout_s:g} s")
        time.sleep(0.1)


class Claimed(NamedTuple):
    """A claim's outcome per key: ``won`` (this attempt writes them), ``duplicates`` (accepted:
    digest → the index's value), ``in_progress`` (held by another attempt)."""

    owner: str
    won: list[bytes]
    duplicates: dict[bytes, int]
    in_progress: list[bytes]


class Deduplicator:
    """This process's view of the dedup topic and its writes to it.

    Its reader and producer run only while this worker's connectors need them (``want``, told
    by ``DedupDemand``): a gateway with no dedup connector folds nothing of the topic and polls
    nothing (``follow`` runs the switch). They start when the first connector with ``dedup``
    appears, and stop one lease after the last one went (deleted, or ``dedup`` turned off):
    by then no attempt of this process can still hold a key (a holder is done within its
    lease), and a connector set again meanwhile finds them running. Stopped, the fold is
    dropped, its memory with it: the next start reads the topic again from the beginning, as a
    process does at its start.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.fold = DedupFold()
        self._process = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._attempts = itertools.count(1)
        # Claim, produce the records, write the acceptance: all within the lease, with room.
        self.lease_ms = int((3 * settings.produce_timeout_s + 10) * 1000)
        self._timeout_s = settings.produce_timeout_s
        self._idle_stop_s = self.lease_ms / 1000
        self.partitions = DEDUP_PARTITIONS
        self.reader: LogReader | None = None  # while running (or starting): /health/ready
        self._producer: AsyncProducer | None = None
        self._pruning: asyncio.Task[None] | None = None
        self._wanted = False
        self._changed = asyncio.Event()
        self._up = asyncio.Event()  # the reader folds and the producer is open
        self._switch: asyncio.Task[None] | None = None
        # Writes waiting for this turn of the loop to end (``_write``), and those in flight.
        self._batch: list[tuple[list[OutgoingRecord], asyncio.Future[list[tuple[int, int]]]]] = []
        self._flushing: set[asyncio.Task[None]] = set()

    def want(self, wanted: bool) -> None:
        """Whether any of this worker's connectors has ``dedup`` on (``DedupDemand``)."""
        if wanted != self._wanted:
            self._wanted = wanted
            self._changed.set()

    def follow(self) -> None:
        """Start and stop the reader as ``want`` says, until ``stop``."""
        self._switch = asyncio.get_running_loop().create_task(self._follow())

    async def stop(self) -> None:
        if self._switch is not None:
            self._switch.cancel()
            await asyncio.gather(self._switch, return_exceptions=True)
            self._switch = None
        await self._close()

    async def ready(self) -> None:
        """Return once the reader folds (not necessarily caught up: a claim waits for its own
        entries); ``StateUnavailable`` if it is not up within the produce timeout, as a claim
        the reader does not fold back in time."""
        if self._up.is_set():
            return
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._up.wait()
        except TimeoutError as exc:
            raise StateUnavailable(
                "the dedup state reader is still starting", retry_after_s=2.0
            ) from exc

    async def settled(self, timeout_s: float) -> None:
        """Once the reader has caught up, if one is wanted: a worker that starts with dedup
        connectors serves their requests from the first, as before the reader was lazy (a
        warning after ``timeout_s``; ``/health/ready`` says 503 until then)."""
        if not self._wanted:
            return
        try:
            async with asyncio.timeout(timeout_s):
                await self._up.wait()
                assert self.reader is not None
                await self.reader.sync(timeout_s)
        except (TimeoutError, StateUnavailable) as exc:
            log.warning("the dedup reader has not caught up yet", extra={"error": str(exc)})

    async def _follow(self) -> None:
        while True:
            await self._until(wanted=True)
            if not await self._open():
                continue
            while True:
                await self._until(wanted=False)
                try:  # unwanted for a whole lease: stop; wanted again meanwhile: keep running
                    async with asyncio.timeout(self._idle_stop_s):
                        await self._until(wanted=True)
                except TimeoutError:
                    break
            log.info("no connector has dedup any more: the dedup reader stops")
            await self._close()

    async def _until(self, *, wanted: bool) -> None:
        while self._wanted != wanted:
            self._changed.clear()
            await self._changed.wait()

    async def _open(self) -> bool:
        """Start the reader and the producer, retrying with backoff while they are wanted;
        whether they run."""
        backoff_s = _START_RETRY_MIN_S
        while self._wanted:
            try:
                self.partitions = await asyncio.to_thread(ensure_dedup_topic, self._settings)
                self.fold = DedupFold()
                self.reader = LogReader(
                    self._settings,
                    self.fold,
                    [DEDUP_TOPIC],
                    name="dedup",
                    partitions=self.partitions,
                    fetch_max_wait_ms=_FETCH_MAX_WAIT_MS,
                )
                # Small entries, each awaited: sent at once rather than lingering for company.
                config = producer_config(
                    self._settings, client_id="inlet-gateway-dedup", **{"linger.ms": 0}
                )
                self._producer = AsyncProducer(config)
                await self.reader.open()
            except Exception as exc:  # noqa: BLE001 - any failure: log, back off, try again
                log.error(  # noqa: TRY400 - one line per failure; the error says what it was
                    "the dedup reader did not start; retrying",
                    extra={"error": f"{type(exc).__name__}: {exc}", "retry_in_s": backoff_s},
                )
                await self._close()
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, _START_RETRY_MAX_S)
                continue
            self._pruning = asyncio.get_running_loop().create_task(self._prune())
            self._up.set()
            log.info("a connector has dedup: the dedup reader started")
            return True
        return False

    async def _close(self) -> None:
        self._up.clear()
        if self._pruning is not None:
            self._pruning.cancel()
            await asyncio.gather(self._pruning, return_exceptions=True)
            self._pruning = None
        if self._flushing:
            await asyncio.gather(*self._flushing, return_exceptions=True)
        reader, producer, self.reader, self._producer = self.reader, self._producer, None, None
        if reader is not None:
            await reader.stop()
        if producer is not None:
            await asyncio.to_thread(producer.close)
        self.fold = DedupFold()  # what a stopped reader folded is forgotten, its memory freed

    async def _prune(self) -> None:
        while True:
            await asyncio.sleep(_PRUNE_EVERY_S)
            self.fold.prune(time.time_ns() // 1_000_000)

    def known(self, digest: bytes) -> int | None:
        """The value of ``digest`` if this process's fold has it accepted within its window."""
        return self.fold.accepted.get(digest, int(time.time()))

    def partition_of(self, digest: bytes) -> int:
        return int.from_bytes(digest[:4], "big") % self.partitions

    async def claim(self, digests: Sequence[bytes]) -> Claimed:
        """Claim every one of ``digests`` for a new attempt; the outcome once the log decided."""
        await self.ready()
        owner = f"{self._process}:{next(self._attempts)}"
        claim = Claim(owner=owner, at_ms=time.time_ns() // 1_000_000, lease_ms=self.lease_ms)
        landings = await self._write((digest, claim) for digest in digests)
        past: dict[TopicPartition, int] = {}
        for partition, offset in landings:
            tp = TopicPartition(DEDUP_TOPIC, partition)
            past[tp] = max(past.get(tp, 0), offset + 1)
        reader = self._reader()
        try:
            async with asyncio.timeout(self._timeout_s):
                await reader.wait_for(past)
        except TimeoutError as exc:
            await self.release(owner, digests)
            raise StateUnavailable(
                "the dedup state did not catch up with this request's claims in time",
                retry_after_s=2.0,
            ) from exc
        now_s = int(time.time())
        won, in_progress, duplicates = [], [], {}
        for digest in digests:
            value = self.fold.accepted.get(digest, now_s)
            holder = self.fold.holder(digest)
            if value is not None:
                duplicates[digest] = value
            elif holder is not None and holder.owner == owner:
                won.append(digest)
            else:
                in_progress.append(digest)
        return Claimed(owner, won, duplicates, in_progress)

    def acceptance(
        self,
        owner: str,
        digest: bytes,
        *,
        window_s: int,
        landings: list[tuple[int, int]] | None,
        request: bool,
    ) -> tuple[bytes, Entry]:
        count = 1 if landings is None and not request else len(landings or ())
        known = None if landings is None or any(p < 0 for p, _ in landings) else landings
        entry = Accepted(
            owner=owner,
            at_ms=time.time_ns() // 1_000_000,
            window_s=window_s,
            count=count,
            request=request,
            landings=known,
        )
        return digest, entry

    async def accept(self, entries: Iterable[tuple[bytes, Entry]]) -> None:
        await self._write(entries)

    async def release(self, owner: str, digests: Iterable[bytes]) -> None:
        """Give the keys up (best effort: a release that fails leaves the lease to lapse)."""
        released = Released(owner=owner, at_ms=time.time_ns() // 1_000_000)
        try:
            await self._write((digest, released) for digest in digests)
        except (KafkaUnavailable, StateUnavailable):
            log.warning("a dedup release was not written; its lease lapses", extra={"owner": owner})

    async def _write(self, entries: Iterable[tuple[bytes, Entry]]) -> list[tuple[int, int]]:
        """Write ``entries`` to their keys' partitions; where each landed, once acknowledged.

        The writes of requests that get here in the same turn of the event loop go to Kafka
        together (``_flush``): one hand-over and one wake-up for all of them, where each had its
        own, without waiting for company."""
        records = [
            OutgoingRecord(
                DEDUP_TOPIC,
                encode_entry(entry),
                entry_key(digest, entry),
                partition=self.partition_of(digest),
            )
            for digest, entry in entries
        ]
        if not records:
            return []
        if self._producer is None:  # stopped under a request: no connector has dedup now
            raise StateUnavailable("the dedup state reader is not running", retry_after_s=2.0)
        loop = asyncio.get_running_loop()
        written: asyncio.Future[list[tuple[int, int]]] = loop.create_future()
        if not self._batch:
            loop.call_soon(self._flush)
        self._batch.append((records, written))
        try:
            async with asyncio.timeout(self._timeout_s):
                return await written
        except TimeoutError as exc:
            raise KafkaUnavailable(
                f"the dedup state was not written: {exc}", retry_after_s=2.0
            ) from exc

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        task = asyncio.get_running_loop().create_task(self._produce(batch))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _produce(
        self, batch: list[tuple[list[OutgoingRecord], asyncio.Future[list[tuple[int, int]]]]]
    ) -> None:
        producer = self._producer
        if producer is None:  # stopped since the writes were asked for
            for _entries, written in batch:
                if not written.done():
                    written.set_exception(
                        StateUnavailable("the dedup state reader stopped", retry_after_s=2.0)
                    )
            return
        records = [record for entries, _written in batch for record in entries]
        delivery = Delivery.on_running_loop()
        delivery.track_landings(len(records))
        try:
            # The callers wait on their own deadlines; this one only bounds the wait on Kafka.
            async with asyncio.timeout(self._timeout_s):
                for _ in producer.produce_steps(records, delivery):
                    await asyncio.sleep(0)
                await delivery.future
        except (ProduceFailed, TimeoutError) as exc:
            delivery.future.cancel()
            for _entries, written in batch:
                if not written.done():
                    written.set_exception(
                        KafkaUnavailable(
                            f"the dedup state was not written: {exc}", retry_after_s=2.0
                        )
                    )
            return
        landings, start = delivery.landings or [], 0
        for entries, written in batch:
            if not written.done():  # else its caller gave up waiting
                written.set_result(landings[start : start + len(entries)])
            start += len(entries)

    def _reader(self) -> LogReader:
        if self.reader is None:
            raise StateUnavailable("the dedup state reader is not running", retry_after_s=2.0)
        return self.reader
