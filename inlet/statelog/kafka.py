"""The state log on Kafka: compacted single-partition topics, folded in order by every instance.

Reading: ``LogReader`` assigns partition 0 of each state topic, folds every committed record and
lets callers await "caught up with everything committed so far" (the log's last stable offsets).
It asks for those offsets on a connection of their own: on the folding consumer's, the request
would queue behind its long-poll fetch (a broker answers one connection's requests in order), and
every ``sync`` would cost up to ``fetch_max_wait_ms`` (500 ms) on an idle log.

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
import time
from collections.abc import Callable
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from inlet.errors import KafkaUnavailable, StateUnavailable, StoreTimeout
from inlet.kafka import ConfigValue, OutgoingRecord, aiokafka_config, client_config
from inlet.settings import Settings
from inlet.statelog.fold import CorruptRecord, Folder, ReaderStatus, Record
from inlet.transactions import Fenced, TransactionalProducer

T = TypeVar("T")
log = logging.getLogger(__name__)

WRITER_TRANSACTIONAL_ID = "inlet-registry-writer"
_STATE_TOPIC_CONFIG = {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"}
_MAX_ATTEMPTS = 5
# A reader is caught up when a fetch at most this long ago found nothing newer than its fold.
CAUGHT_UP_WITHIN_S = 10.0
_RESTART_MIN_S, _RESTART_MAX_S = 0.5, 30.0
_FOLDED_TIMEOUT_S = 10.0
_WRITER_CONFIG: dict[str, ConfigValue] = {
    "transactional.id": WRITER_TRANSACTIONAL_ID,
    "enable.idempotence": True,
    "acks": "all",
    "transaction.timeout.ms": 30000,
    # A state write is one small transaction, committed at once: nothing to wait and batch with.
    "linger.ms": 0,
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
    """Folds the state topics into ``folder`` in the background, and says how fresh the fold is.

    A fold is never silently stale: a reader whose consumer fails is restarted with backoff from
    where it stopped (``status()`` says it is not caught up meanwhile, and ``sync`` raises
    ``StateUnavailable``); a record no fold can read is counted and skipped with a warning, or
    stops the reader for good under ``strict_state`` (``failed``).
    """

    def __init__(
        self,
        settings: Settings,
        folder: Folder,
        topics: list[str],
        *,
        name: str,
        caught_up_within_s: float = CAUGHT_UP_WITHIN_S,
        partitions: int = 1,
        fetch_max_wait_ms: int = 500,
    ) -> None:
        """``partitions``: of each topic, folded each in its own order (state topics have one;
        the dedup topic several, its keys spread by digest). ``fetch_max_wait_ms``: how long the
        broker may hold a fetch that finds nothing new (a reader that requests await wants it
        short)."""
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self.name = name
        self.folder = folder
        self._partitions = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        self._consumer_config = aiokafka_config(settings, client_id=f"inlet-{name}-reader")
        self._strict = settings.strict_state
        self._caught_up_within_s = caught_up_within_s
        self._consumer: AIOKafkaConsumer | None = None
        # Only asks for end offsets (assigned nothing, it never fetches): see the module's doc.
        self._ends_consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        # Callers awaiting offsets (``wait_for``): each woken once, when the fold reaches them.
        self._waiters: list[tuple[dict[TopicPartition, int], asyncio.Future[None]]] = []
        # The next offset to fold per partition: where a restarted consumer resumes.
        self._positions: dict[TopicPartition, int] = {}
        self._caught_up_as_of: float | None = None  # wall time of the fetch that showed it
        self._backoff_s = _RESTART_MIN_S  # the wait before the next restart (doubles, to a cap)
        self._lag: int | None = None
        self._ends_next: asyncio.Future[dict[TopicPartition, int]] | None = None
        self._ends_task: asyncio.Task[None] | None = None
        self.failed: BaseException | None = None  # stopped for good (a corrupt record, strict)
        self.error: BaseException | None = None  # the failure it is restarting from
        self.restarts = 0
        self.corrupt_records = 0
        self.folded = 0  # records folded so far: moves whenever the state may have changed

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("the log reader is not started")
        return self._consumer

    async def start(self, timeout_s: float = 30.0) -> None:
        await self.open()
        await self.sync(timeout_s)

    async def open(self) -> None:
        """Start folding, without waiting to catch up (``wait_for`` and ``sync`` wait)."""
        await self._open()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        for task in (self._task, self._ends_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self._close()

    def _new_consumer(self) -> AIOKafkaConsumer:
        # aiokafka binds to the running loop, so consumers are made when opened, not in __init__.
        return AIOKafkaConsumer(
            # An aborted (fenced) write never reaches the fold, and end offsets are the last
            # stable ones (ListOffsets asks with the consumer's isolation level).
            isolation_level="read_committed",
            enable_auto_commit=False,
            group_id=None,
            # Where a position turns out to be out of range: a fold must never skip records, so
            # from the beginning again (folds are last-value-per-key: folding twice is harmless).
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self._fetch_max_wait_ms,
            **self._consumer_config,
        )

    async def _open(self) -> None:
        ends = self._new_consumer()
        self._ends_consumer = ends
        await ends.start()
        consumer = self._new_consumer()
        self._consumer = consumer
        await consumer.start()
        consumer.assign(self._partitions)
        fresh = [tp for tp in self._partitions if tp not in self._positions]
        for tp in self._partitions:
            if tp in self._positions:
                consumer.seek(tp, self._positions[tp])
        if fresh:
            await consumer.seek_to_beginning(*fresh)

    async def _close(self) -> None:
        consumers = (self._ends_consumer, self._consumer)
        self._consumer = self._ends_consumer = None
        for consumer in consumers:
            if consumer is not None:
                await _stop_consumer(consumer)

    async def _run(self) -> None:
        self._backoff_s = _RESTART_MIN_S
        while True:
            try:
                if self._consumer is None:
                    await self._open()
                await self._fold_forever()
            except asyncio.CancelledError:
                raise
            except _Stopped:
                self._notify()
                return
            except Exception as exc:  # noqa: BLE001 - any failure: log, back off, restart
                self.error = exc
                self.restarts += 1
                log.error(  # noqa: TRY400 - one line per failure; the error says what it was
                    "state log reader failed; restarting",
                    extra={
                        "reader": self.name,
                        "error": f"{type(exc).__name__}: {exc}",
                        "restarts": self.restarts,
                        "retry_in_s": self._backoff_s,
                    },
                )
                self._notify()
                await self._close()
                await asyncio.sleep(self._backoff_s)
                self._backoff_s = min(self._backoff_s * 2, _RESTART_MAX_S)
            else:  # pragma: no cover - _fold_forever returns only by raising
                return

    async def _fold_forever(self) -> None:
        consumer = self.consumer
        while True:
            batches = await consumer.getmany(*self._partitions, timeout_ms=200)
            _raise_if_not_fetching(consumer)
            for tp in self._partitions:
                for record in batches.get(tp, []):
                    self._fold(tp, record.offset, record.key, record.value)
                # Also past control records (transaction markers), which carry no record.
                self._positions[tp] = await consumer.position(tp)
            if self.error is not None:
                log.warning(
                    "state log reader recovered",
                    extra={"reader": self.name, "restarts": self.restarts},
                )
                self.error = None
                # A reader that recovered starts again from the shortest wait at its next
                # failure: transient faults spread over days must not add up to 30-s restarts.
                self._backoff_s = _RESTART_MIN_S
            self._note_lag(consumer)
            self._notify()

    def _fold(
        self, tp: TopicPartition, offset: int, key: bytes | None, value: bytes | None
    ) -> None:
        try:
            self.folder.apply(tp.topic, key or b"", value)
        except Exception as exc:
            self.corrupt_records += 1
            where = {"reader": self.name, "topic": tp.topic, "offset": offset, "error": str(exc)}
            if self._strict:
                self.failed = exc
                log.exception("corrupt state record; the reader stops (strict_state)", extra=where)
                raise _Stopped from exc
            log.warning(
                "skipping a corrupt state record",
                extra={**where, "corrupt_records": self.corrupt_records},
                # A CorruptRecord is the fold saying so; anything else is a bug in the fold.
                exc_info=not isinstance(exc, CorruptRecord),
            )
        self.folded += 1

    def _note_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Record how far behind the log's last stable offsets the last fetch responses were."""
        lag, as_of = 0, None
        for tp in self._partitions:
            end = consumer.last_stable_offset(tp)
            if end is None or end < 0:
                end = consumer.highwater(tp)
            fetched_ms = consumer.last_poll_timestamp(tp)
            if end is None or fetched_ms is None:
                return  # not fetched yet: nothing known
            lag += max(0, end - self._positions[tp])
            as_of = fetched_ms / 1000 if as_of is None else min(as_of, fetched_ms / 1000)
        self._lag = lag
        if lag == 0:
            self._caught_up_as_of = as_of

    def _notify(self) -> None:
        """Wake the waiters the fold has now reached, or every one when the reader is down.

        A waiter is checked here (a few comparisons) and woken once: the dedup reader has as
        many waiters as requests in flight, and waking each on every fetch to check for itself
        cost more than the fold (bench/gateway_bench.py --dedup --profile)."""
        if not self._waiters:
            return
        waiters, self._waiters = self._waiters, []
        up = self._down() is None
        for offsets, waiter in waiters:
            if waiter.done():  # its caller gave up
                continue
            if not up:
                waiter.set_exception(self._down() or StateUnavailable(self.name))
            elif self._reached(offsets):
                waiter.set_result(None)
            else:
                self._waiters.append((offsets, waiter))

    def _reached(self, offsets: dict[TopicPartition, int]) -> bool:
        positions = self._positions
        return all(positions.get(tp, -1) >= end for tp, end in offsets.items())

    def status(self) -> ReaderStatus:
        """Alive, and caught up with the log as of a fetch at most ``caught_up_within_s`` ago."""
        running = self._task is not None and not self._task.done()
        alive = running and self.failed is None and self.error is None
        as_of = self._caught_up_as_of
        age = None if as_of is None else max(0.0, time.time() - as_of)
        problem = self.failed or self.error
        return ReaderStatus(
            name=self.name,
            alive=alive,
            caught_up=alive and age is not None and age <= self._caught_up_within_s,
            lag=self._lag,
            caught_up_s_ago=None if age is None else round(age, 3),
            restarts=self.restarts,
            corrupt_records=self.corrupt_records,
            error=None if problem is None else f"{type(problem).__name__}: {problem}",
        )

    def lag(self) -> dict[str, int]:
        """Per topic, the committed records not folded yet, as of the last fetch (no request)."""
        consumer = self._consumer
        if consumer is None:
            return {}
        lags: dict[str, int] = {}
        for tp in self._partitions:
            end = consumer.last_stable_offset(tp)
            if end is None or end < 0:  # nothing fetched yet
                continue
            lags[tp.topic] = lags.get(tp.topic, 0) + max(0, end - self._positions.get(tp, 0))
        return lags

    async def sync(self, timeout_s: float = 10.0) -> None:
        """Return once everything committed before this call has been folded.

        Raises ``StateUnavailable`` when that cannot be done within ``timeout_s`` (the reader is
        behind, restarting or stopped, or Kafka does not answer).
        """
        try:
            async with asyncio.timeout(timeout_s):
                await self.wait_for(await self._end_offsets())
        except TimeoutError as exc:
            raise StateUnavailable(
                f"the {self.name} state did not catch up with the log in {timeout_s:g} s"
            ) from exc

    async def _end_offsets(self) -> dict[TopicPartition, int]:
        """The log's end offsets, asked for after this call began.

        Concurrent callers share requests: at most one is in flight, and callers that arrive
        meanwhile share the next one (which starts after they arrived, so it is fresh enough for
        each of them). A flood of lookups makes one request per round trip, not one each.
        """
        self._raise_if_down()
        if self._ends_next is None:
            self._ends_next = asyncio.get_running_loop().create_future()
            self._ends_next.add_done_callback(_retrieve)
            if self._ends_task is None or self._ends_task.done():
                self._ends_task = asyncio.get_running_loop().create_task(self._ask_ends())
        return await asyncio.shield(self._ends_next)

    async def _ask_ends(self) -> None:
        while self._ends_next is not None:
            waiting, self._ends_next = self._ends_next, None
            try:
                ends: dict[TopicPartition, int] = await self._ends().end_offsets(self._partitions)
            except Exception as exc:  # noqa: BLE001 - handed to every caller waiting on it
                waiting.set_exception(
                    StateUnavailable(f"the {self.name} state log's end is unknown: {exc}")
                )
            else:
                waiting.set_result(ends)

    def _ends(self) -> AIOKafkaConsumer:
        if self._ends_consumer is None:
            raise RuntimeError("the log reader is not started")
        return self._ends_consumer

    def _raise_if_down(self) -> None:
        down = self._down()
        if down is not None:
            raise down

    def _down(self) -> StateUnavailable | None:
        """The error to answer while the reader is stopped or restarting; None while it runs."""
        if self.failed is not None:
            down = StateUnavailable(f"the {self.name} state log reader stopped")
            down.__cause__ = self.failed
            return down
        if self.error is not None or self._consumer is None:
            down = StateUnavailable(
                f"the {self.name} state log reader is restarting", retry_after_s=2.0
            )
            down.__cause__ = self.error
            return down
        return None

    async def wait_for(self, offsets: dict[TopicPartition, int]) -> None:
        """Return once the fold is at or past ``offsets`` (the next offset to fold, per partition).

        A partition this reader does not read would never get there: that is a caller's bug,
        raised at once rather than waited out as a timeout.
        """
        unread = set(offsets) - set(self._partitions)
        if unread:
            raise ValueError(f"the {self.name} reader does not read {sorted(map(str, unread))}")

        self._raise_if_down()
        if self._reached(offsets):
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((offsets, waiter))
        await waiter


def _raise_if_not_fetching(consumer: AIOKafkaConsumer) -> None:
    """Raise ``FetchEnded`` if the consumer's background fetch task has ended.

    It ends when cancelled (aiokafka's fetch loop takes a cancellation for a normal end) or
    when it fails; ``getmany`` then answers nothing, forever, without an error (aiokafka #983),
    and the fold would look alive while it sits still. aiokafka has no public signal for it:
    its fetcher's ``error_future`` (the fetch task itself) is the one there is.
    """
    task = consumer._fetcher.error_future
    if not task.done():
        return
    if task.cancelled():
        raise FetchEnded("the consumer's fetch task was cancelled")
    failure = task.exception()
    if failure is None:
        raise FetchEnded("the consumer's fetch task ended")
    raise FetchEnded(f"the consumer's fetch task failed: {failure}") from failure


async def _stop_consumer(consumer: AIOKafkaConsumer) -> None:
    """Stop ``consumer`` to the end, out of reach of a cancellation of the caller.

    aiokafka's ``stop`` cancels its background tasks (the coordinator's, the fetcher's, the
    client's) and awaits each; a cancellation of whoever awaits ``stop`` is passed on to the task
    awaited at that moment, which takes a cancellation for its normal end and returns: the
    cancellation is lost (a reader told to stop while it restarted went on restarting, and its
    ``stop`` waited forever), or it cuts ``stop`` short with the sockets open. So the stop runs
    in a task of its own; a cancellation that comes meanwhile waits for it, then goes on.
    """
    stopping = asyncio.get_running_loop().create_task(_stop_quietly(consumer))
    try:
        await asyncio.wait([stopping])
    except asyncio.CancelledError:
        await asyncio.wait([stopping])  # closed, sockets and all, before the caller goes
        raise


async def _stop_quietly(consumer: AIOKafkaConsumer) -> None:
    try:
        await consumer.stop()
    # Nothing cancels this task: a CancelledError is one of aiokafka's own tasks that its stop
    # cancelled and awaited (a fetch in flight).
    except (Exception, asyncio.CancelledError):
        log.debug("closing a state reader's consumer", exc_info=True)
        # A failed fetch task's error comes out of stop() before stop() closes the connections.
        try:
            await consumer._client.close()
        except (Exception, asyncio.CancelledError):
            log.debug("closing a state reader's connections", exc_info=True)


def _retrieve(future: asyncio.Future[dict[TopicPartition, int]]) -> None:
    """Mark a shared future's exception as seen: every caller may have given up waiting on it."""
    if not future.cancelled():
        future.exception()


class _Stopped(Exception):
    """The reader stops for good (``failed`` says why)."""


class FetchEnded(Exception):
    """The folding consumer's fetch task ended: the reader restarts it (a new consumer)."""


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

    async def sync(self, timeout_s: float = 10.0) -> None:
        await self.reader.sync(timeout_s)

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
                    written = await asyncio.to_thread(self._writer.write, outgoing)
                except (Fenced, KafkaException) as exc:
                    # Fenced: another instance wrote; the next attempt fences it back, catches
                    # up with what it wrote and decides again.
                    await self._retry_after(exc, attempt)
                    continue
                await self._await_folded(written)
                return result
        raise KafkaUnavailable("the state log write did not go through")

    async def _await_folded(self, written: dict[tuple[str, int], int]) -> None:
        """Read your writes: until this process's fold is past the records just committed.

        By their offsets, not by the log's end offset: asked right after the commit, that can
        still be short of them (the broker writes the commit markers after it answers).
        """
        past = {TopicPartition(t, p): offset + 1 for (t, p), offset in written.items()}
        try:
            async with asyncio.timeout(_FOLDED_TIMEOUT_S):
                await self.reader.wait_for(past)
        except (TimeoutError, StateUnavailable) as exc:
            # Committed, not yet seen here: the caller must not take it as "not written".
            raise StoreTimeout("the write is committed but not yet folded here") from exc

    async def _retry_after(self, error: Exception, attempt: int) -> None:
        log.warning(
            "state log write failed; retrying", extra={"error": str(error), "attempt": attempt}
        )
        if attempt == _MAX_ATTEMPTS:
            raise KafkaUnavailable(f"the state log write failed: {error}")
        await asyncio.sleep(0.05 * attempt)
