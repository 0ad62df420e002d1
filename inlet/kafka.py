"""Kafka clients: the one function that builds client settings, and an asyncio-friendly producer.

Every Kafka client in Inlet gets its settings from ``client_config`` so that security, timeouts and
identity are decided in one place; aiokafka's clients get the same settings translated by
``aiokafka_config``. Delivery reports are handed to asyncio futures from librdkafka's
poll thread: nothing blocks the event loop, and nothing calls ``flush()`` on it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any, Literal, NamedTuple, Protocol

from aiokafka.helpers import create_ssl_context
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient

from inlet.codec.steps import STEP_RECORDS, WaitingSteps, run
from inlet.kafka_errors import is_transient
from inlet.settings import Settings

log = logging.getLogger("inlet.kafka")

ConfigValue = str | int | float | bool
Headers = list[tuple[str, str | bytes | None]]


class OutgoingRecord(NamedTuple):
    """One record for ``AsyncProducer.produce_batch``; partition -1 lets the partitioner choose."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: Headers | None = None
    partition: int = -1


# What the producers take: an ``OutgoingRecord``, or the same fields as a plain tuple, which a
# caller making one per record (the gateway) makes in a third of the time (the named tuple's
# ``__new__`` is a Python function: ~0.3 µs a record of a 500-record request).
RecordFields = tuple[str, bytes | None, bytes | None, Headers | None, int]


# librdkafka's own log lines go through Python logging, so they come out as structured lines too.
_rdkafka_log = logging.getLogger("inlet.rdkafka")


class KafkaNotConfigured(RuntimeError):
    pass


def _security_config(settings: Settings) -> dict[str, ConfigValue]:
    """How a client reaches the cluster (TLS, SASL), in librdkafka's names; part of every config.

    ``Settings`` has checked the combination; only what is set is passed on.
    """
    config: dict[str, ConfigValue] = {"security.protocol": settings.kafka_security_protocol}
    given = {
        "sasl.mechanism": settings.kafka_sasl_mechanism,
        "sasl.username": settings.kafka_sasl_username,
        "sasl.password": settings.kafka_sasl_password,
        "ssl.ca.location": settings.kafka_ssl_ca_location,
        "ssl.certificate.location": settings.kafka_ssl_certificate_location,
        "ssl.key.location": settings.kafka_ssl_key_location,
        "ssl.key.password": settings.kafka_ssl_key_password,
    }
    config.update({key: value for key, value in given.items() if value is not None})
    return config


# Keys that only _security_config decides: an override of one is refused.
_SECURITY_PREFIXES = ("security.", "sasl.", "ssl.")
# What a secret's key says (sasl.password, ssl.key.password, sasl.oauthbearer.client.secret).
_SECRET_WORDS = ("password", "secret")


def client_config(
    settings: Settings, *, client_id: str, **overrides: ConfigValue
) -> dict[str, Any]:
    """librdkafka settings for any Inlet client (producer, consumer, admin)."""
    if not settings.kafka_bootstrap_servers:
        raise KafkaNotConfigured("KAFKA_BOOTSTRAP_SERVERS is not set and no local broker runs")
    overridden = [key for key in overrides if key.startswith(_SECURITY_PREFIXES)]
    if overridden:
        # Security comes from Settings alone, so no client can quietly connect differently.
        raise ValueError(f"client settings may not override {overridden}")
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "client.id": client_id,
        **_security_config(settings),
        # Loopback clusters answer fast; fail a dead connection quickly instead of hanging.
        "socket.connection.setup.timeout.ms": 5000,
        "reconnect.backoff.max.ms": 1000,
        "logger": _rdkafka_log,
    }
    config.update(overrides)
    return config


def printable_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` as logs and reports may show it: passwords masked, the logger object left out."""
    return {
        key: "***" if any(word in key for word in _SECRET_WORDS) else value
        for key, value in config.items()
        if key != "logger"
    }


# client_config's keys in aiokafka's spelling. aiokafka calls the SASL credentials
# sasl_plain_* whatever the mechanism (its SCRAM authenticator reads them too).
_AIOKAFKA_NAMES = {
    "bootstrap.servers": "bootstrap_servers",
    "client.id": "client_id",
    "security.protocol": "security_protocol",
    "sasl.mechanism": "sasl_mechanism",
    "sasl.username": "sasl_plain_username",
    "sasl.password": "sasl_plain_password",
}
# aiokafka takes TLS as one SSLContext, built from these (aiokafka.helpers.create_ssl_context).
_SSL_CONTEXT_ARGS = {
    "ssl.ca.location": "cafile",
    "ssl.certificate.location": "certfile",
    "ssl.key.location": "keyfile",
    "ssl.key.password": "password",
}
# librdkafka's connection tuning and logging; aiokafka keeps its own defaults for these.
_LIBRDKAFKA_ONLY = frozenset(
    {"socket.connection.setup.timeout.ms", "reconnect.backoff.max.ms", "logger"}
)


def aiokafka_config(settings: Settings, *, client_id: str) -> dict[str, Any]:
    """The same settings, spelled for aiokafka (which the state log readers use).

    Translated from ``client_config``'s output, key by key: a key that has no translation is an
    error here rather than a setting aiokafka's clients silently go without.
    """
    kwargs: dict[str, Any] = {}
    ssl_args: dict[str, Any] = {}
    for key, value in client_config(settings, client_id=client_id).items():
        if key in _AIOKAFKA_NAMES:
            kwargs[_AIOKAFKA_NAMES[key]] = value
        elif key in _SSL_CONTEXT_ARGS:
            ssl_args[_SSL_CONTEXT_ARGS[key]] = value
        elif key not in _LIBRDKAFKA_ONLY:
            raise RuntimeError(f"client_config sets {key!r}, which aiokafka_config cannot spell")
    if kwargs["security_protocol"] in ("SSL", "SASL_SSL"):
        try:
            kwargs["ssl_context"] = create_ssl_context(**ssl_args)
        except OSError as exc:  # ssl.SSLError is one: a bad PEM, a wrong key password
            raise KafkaNotConfigured(
                f"the INLET_KAFKA_SSL_* files could not be loaded: {exc}"
            ) from exc
    return kwargs


# How long librdkafka keeps trying to deliver a record: far longer than any answer deadline, on
# purpose. A record that times out while in flight makes the idempotent producer bump its epoch and
# restart its sequence numbers, and then resend batches the partition leader may already have
# written: the same record twice, at two offsets, even in a request answered 200. Left to retry,
# the producer writes a record at most once. The HTTP answer has its own, shorter deadline
# (``Settings.produce_timeout_s``, ``gateway/ingest.py``): after a 503 the records may still arrive.
DELIVERY_TIMEOUT_MS = 300_000
# The local queue that the long retries fill during an outage: bounded, so memory stays bounded
# (64 MB per producer) and a full queue is refused at once (``produce_waiting``), never waited out
# on an event loop. Its record count holds several of the largest requests (``QUEUE_REQUESTS``
# times ``Settings.max_records_per_request``, at least ``QUEUE_MAX_MESSAGES``): a count equal to
# the cap let one maximal request fill the queue, and it and every request beside it were refused
# 503 ``overloaded`` while Kafka was perfectly well.
QUEUE_MAX_MESSAGES = 100_000
QUEUE_REQUESTS = 4
QUEUE_MAX_KBYTES = 64 * 1024
# A deadline long past, for ``produce_waiting``: refuse a full queue at once.
NO_WAIT = float("-inf")
# How far a large request runs ahead of Kafka: before handing over its next slice it waits until
# all but this many of its records were reported (``AsyncProducer.produce_steps``). librdkafka
# sends a partition's records in the order they were queued, so a record of another request (a
# single webhook) waits behind at most this many of a large request's, not behind all 100,000: it
# waited 110-130 ms at p50 with over 10,000 ahead (``bench/hostile_bench.py``). 4,096 records
# are several batches in flight, what the broker acknowledges in a linger and a round trip, so the
# large request itself is hardly slower (1.7 s for 100,000 valid records, before and after).
PRODUCE_WINDOW = 4 * STEP_RECORDS
# A large call's slice: ~2.3 ms of ``produce`` calls, what another request waits at most for one.
# A call of up to ``STEP_RECORDS`` is handed over in one go, without a step.
PRODUCE_SLICE = STEP_RECORDS // 2


def producer_config(
    settings: Settings, *, client_id: str, **overrides: ConfigValue
) -> dict[str, Any]:
    """A durable producer: idempotent, acks from every in-sync replica, retrying for minutes.

    A transactional producer's records time out with its transaction (librdkafka derives
    ``message.timeout.ms`` from ``transaction.timeout.ms`` and refuses a longer one).
    ``message.max.bytes`` is the maximum the topics Inlet creates share (``inlet/record_size.py``).
    """
    delivery: dict[str, ConfigValue] = (
        {} if "transactional.id" in overrides else {"delivery.timeout.ms": DELIVERY_TIMEOUT_MS}
    )
    return client_config(
        settings,
        client_id=client_id,
        **{
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": "lz4",
            "linger.ms": 5,
            "message.max.bytes": settings.max_message_bytes,
            **delivery,
            "queue.buffering.max.messages": max(
                QUEUE_MAX_MESSAGES, QUEUE_REQUESTS * settings.max_records_per_request
            ),
            "queue.buffering.max.kbytes": QUEUE_MAX_KBYTES,
            **overrides,
        },
    )


def produce_waiting(
    producer: Producer,
    topic: str,
    value: bytes | None,
    key: bytes | None = None,
    *,
    deadline: float,
    headers: Headers | None = None,
    partition: int = -1,
    on_delivery: Any = None,
) -> None:
    """``producer.produce``, waiting out a full local queue until ``deadline`` (a
    ``time.monotonic()`` time): the one place that handles it.

    librdkafka refuses a record with ``BufferError`` while ``queue.buffering.max.messages`` (or
    ``.kbytes``) are waiting for delivery; polling serves delivery reports (in whichever thread
    polls), which frees room. Past the deadline (at once with ``NO_WAIT``, as an event loop must)
    it raises ``KafkaException`` with ``_QUEUE_FULL``: retriable, and aborting the transaction is
    enough.
    ``KafkaException`` (an unknown topic, a record too large...) is the caller's either way.
    """
    while True:
        try:
            producer.produce(
                topic, value, key, partition=partition, headers=headers, on_delivery=on_delivery
            )
        except BufferError:
            now = time.monotonic()
            if now >= deadline:
                raise KafkaException(_queue_full()) from None
            producer.poll(min(0.05, deadline - now))
            continue
        return


def _queue_full() -> KafkaError:
    return KafkaError(
        KafkaError._QUEUE_FULL,
        "the producer's local queue is full: Kafka takes records slower than they come",
        retriable=True,
        txn_requires_abort=True,
    )


TransactionOutcome = Literal["aborted", "undecided"]


class ProduceFailed(Exception):
    """Kafka did not take a record; ``retryable`` when it may succeed later (``kafka_errors``).

    Raised by ``produce_batch`` itself when librdkafka refused to queue a record: ``queued``
    records of the call were queued before it, and may still be written (nobody waits for their
    delivery reports). Set on the batch's future once every record was reported: ``written`` of
    them were written, the others were not. ``transaction``: the call's records were in a Kafka
    transaction that was ``aborted`` (``read_committed`` readers see none of them, though the
    log may hold them) or whose commit is ``undecided`` (it may still commit, all of them).
    """

    def __init__(
        self,
        error: KafkaError,
        *,
        queued: int = 0,
        written: int | None = None,
        of: int = 0,
        transaction: TransactionOutcome | None = None,
    ) -> None:
        super().__init__(error.str())
        self.error = error
        self.queued = queued
        self.written = written
        self.of = of
        self.transaction = transaction
        self.retryable = is_transient(error)

    @property
    def queue_full(self) -> bool:
        """The local queue was full: Kafka is slower than the records coming in."""
        return self.error.code() == KafkaError._QUEUE_FULL


class TrackedProducer(Protocol):
    """What the gateway produces with: ``AsyncProducer`` or ``GroupCommitProducer``."""

    def produce_steps(
        self, records: Sequence[RecordFields], delivery: Delivery
    ) -> WaitingSteps[None]:
        """Hand ``records`` over in steps (``inlet/codec/steps.py``), counting them in ``delivery``
        (its ``queued`` is right at every step), and settle ``delivery`` once all are reported.

        A step boundary only ever comes between two slices: records that fit one slice are handed
        over without a step (a caller driving them with ``run_yielding`` awaits nothing).
        """
        ...

    def close(self, timeout: float = 5.0) -> None: ...


class AsyncProducer:
    """One confluent-kafka producer per process, with a poll thread resolving asyncio futures."""

    def __init__(self, config: Mapping[str, ConfigValue]) -> None:
        self._producer = Producer(dict(config))
        self._closing = threading.Event()
        self._poller = threading.Thread(target=self._poll_loop, name="kafka-poll", daemon=True)
        self._poller.start()

    def _poll_loop(self) -> None:
        while not self._closing.is_set():
            self._producer.poll(0.1)

    def produce_batch(self, records: Iterable[RecordFields]) -> asyncio.Future[int]:
        """Enqueue records; one future for all of them, resolved (with their count) once Kafka
        acknowledged every one, or failed with the first ``ProduceFailed``."""
        delivery = Delivery.on_running_loop()
        batch = records if isinstance(records, Sequence) else list(records)
        run(self._queue_steps(batch, delivery, window=None))  # all at once: nothing to wait on
        return delivery.future

    def produce_steps(
        self, records: Sequence[RecordFields], delivery: Delivery
    ) -> WaitingSteps[None]:
        """``records`` to librdkafka's queue, ``PRODUCE_SLICE`` at a time (``TrackedProducer``),
        never more than ``PRODUCE_WINDOW`` of them unreported; ``delivery`` counts how many were
        acknowledged (for an answer that must say, at its deadline, what may be written).

        Cheaper than a ``produce`` per record: no future, closure and event-loop wake-up per
        record, just a counter the poll thread bumps; the loop is woken once, by the last ack
        (and once per slice of a request larger than the window). Enqueueing costs ~4.5 µs a
        record: in slices, 100,000 records stall no other request for the ~0.5 s they take.

        Never waits on a full local queue: it raises ``ProduceFailed`` (``queue_full``) at once, so
        the event loop keeps turning while Kafka is stalled; the caller refuses the request. It
        waits (a step yields the future) only for acks of its own records, and hands over no more
        once one of them failed: the request fails anyway, and its other records are not written.
        """
        return self._queue_steps(records, delivery, window=PRODUCE_WINDOW)

    def _queue_steps(
        self, records: Sequence[RecordFields], delivery: Delivery, *, window: int | None
    ) -> WaitingSteps[None]:
        on_delivery, count = delivery.on_delivery, 0
        landed = delivery.on_landing if delivery.landings is not None else None
        # confluent-kafka's own argument order (topic, value, key, partition, callback,
        # on_delivery, timestamp, headers): positional arguments parse faster than keywords, and
        # the loop below is the gateway's hottest (~1 µs a record of Python around librdkafka).
        produce = self._producer.produce
        try:
            size = STEP_RECORDS if len(records) <= STEP_RECORDS else PRODUCE_SLICE
            for start in range(0, len(records), size):
                if start:
                    delivery.queued = count
                    # Kept only ``window`` ahead of the acks once this slice is handed over.
                    yield (
                        None if window is None else delivery.when_reported(start + size - window)
                    )
                    if delivery.failing:
                        break
                if landed is None:
                    for topic, value, key, headers, partition in records[start : start + size]:
                        produce(topic, value, key, partition, on_delivery, None, 0, headers)
                        count += 1
                else:
                    for topic, value, key, headers, partition in records[start : start + size]:
                        produce(
                            topic, value, key, partition, partial(landed, count), None, 0, headers
                        )
                        count += 1
        except BufferError:
            # Never waited out on an event loop (``produce_waiting``): refused at once.
            delivery.queued = count
            delivery.future.cancel()
            raise ProduceFailed(_queue_full(), queued=count) from None
        except KafkaException as exc:
            delivery.queued = count
            delivery.future.cancel()  # records already queued still get acked, and nobody waits
            raise ProduceFailed(exc.args[0], queued=count) from exc
        delivery.expect(count)

    def pending(self) -> int:
        """Records queued or in flight: handed over and not yet reported delivered or failed."""
        return len(self._producer)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the poll thread and flush what is queued (call off the event loop): the poll
        thread first, so that one thread at a time reports (``Delivery.on_delivery``)."""
        self._closing.set()
        self._poller.join(timeout=1.0)
        self._producer.flush(timeout)


class Delivery:
    """Counts one ``produce_steps`` call's delivery reports (on the poll thread) and settles its
    future after the last one; ``queued``: how many records were handed over so far;
    ``transactional``: they go in a Kafka transaction (all written or none)."""

    __slots__ = (
        "_alert",
        "_delivered",
        "_error",
        "_expected",
        "_failed",
        "_lock",
        "_loop",
        "_transaction",
        "_wait_for",
        "_waiter",
        "future",
        "landings",
        "queued",
        "transactional",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[int]) -> None:
        self._loop = loop
        self.future = future
        self._lock = threading.Lock()
        self._delivered = 0
        self._failed = 0
        self._expected = -1  # unknown until every record is queued
        self._error: KafkaError | None = None
        self._transaction: TransactionOutcome | None = None
        self.queued = 0
        self.transactional = False
        self._wait_for = _NEVER  # the report count ``_waiter`` waits for
        self._alert = _NEVER  # the first of ``_wait_for`` and ``_expected`` (``on_delivery``)
        self._waiter: asyncio.Future[None] | None = None
        # Where each record landed, (partition, offset) by its place in the call, when the
        # caller asks (``track_landings``); (-1, -1) until reported, and for a failed record.
        self.landings: list[tuple[int, int]] | None = None

    def track_landings(self, count: int) -> None:
        """Keep where each of the call's ``count`` records lands (the dedup's acceptances say
        it); a producer that cannot tell leaves (-1, -1)."""
        self.landings = [(-1, -1)] * count

    @classmethod
    def on_running_loop(cls) -> Delivery:
        loop = asyncio.get_running_loop()
        return cls(loop, loop.create_future())

    @property
    def acknowledged(self) -> int:
        """Records Kafka acknowledged as written so far."""
        with self._lock:
            return self._delivered - self._failed

    @property
    def failing(self) -> bool:
        """A record was reported failed: the call fails whatever the others do."""
        return self._error is not None

    def when_reported(self, count: int) -> asyncio.Future[None] | None:
        """None if ``count`` records were reported (written or failed) already; else a future
        set once they are. On the loop, one waiter at a time (the call's ``produce_steps``)."""
        with self._lock:
            if self._delivered >= count:
                return None
            self._waiter = waiter = self._loop.create_future()
            self._wait_for = count
            self._alert = self._next_alert()
            # Read again after the alert is published: a report counted in between either saw
            # the alert (and wakes the waiter) or is seen here.
            if self._delivered < count:
                return waiter
            self._waiter, self._wait_for = None, _NEVER
            self._alert = self._next_alert()
        return None

    def on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        # Called once per record, on the poll thread: the gateway's most frequent call. A
        # success takes no lock (a lock per report cost ~0.3 µs a record): only the thread
        # reporting writes ``_delivered`` (``AsyncProducer`` serves a producer's reports on one
        # thread at a time), and the loop publishes what it waits for in ``_alert`` before it
        # reads ``_delivered``, while this writes ``_delivered`` before it reads ``_alert``; so
        # one of the two sees the other (both may: waking and settling twice is harmless).
        if err is not None:
            self._fail(err)  # counted before the report, so a settled call's count is whole
        self._delivered = reported = self._delivered + 1
        if reported >= self._alert:
            self._reached()

    def _fail(self, err: KafkaError) -> None:
        with self._lock:
            self._failed += 1
            if self._error is None:
                self._error = err

    def _reached(self) -> None:
        """On the reporting thread: a waiter's count, or the last record, was reported."""
        waiter = None
        with self._lock:
            reported = self._delivered
            if reported >= self._wait_for:
                waiter, self._waiter, self._wait_for = self._waiter, None, _NEVER
            done = reported == self._expected
            self._alert = self._next_alert()
        if waiter is not None:
            self._loop.call_soon_threadsafe(_wake, waiter)
        if done:
            self._loop.call_soon_threadsafe(self._settle)

    def _next_alert(self) -> int:
        """The report count at which ``on_delivery`` must look further (under the lock)."""
        return min(self._wait_for, _NEVER if self._expected < 0 else self._expected)

    def on_landing(self, index: int, err: KafkaError | None, msg: Message) -> None:
        if err is None and self.landings is not None:
            self.landings[index] = (msg.partition() or 0, msg.offset() or 0)
        self.on_delivery(err, msg)

    def finish(
        self, count: int, error: KafkaError | None = None, *, undecided: bool = False
    ) -> None:
        """Settle, from any thread, with all ``count`` records written, or (``error``) none: what
        a committed or an aborted transaction did; ``undecided``: a commit that failed without
        an abort, which may still complete."""
        with self._lock:
            self._expected = self._delivered = count
            self._failed = 0 if error is None else count
            self._error = error
            if error is not None:
                self._transaction = "undecided" if undecided else "aborted"
        self._loop.call_soon_threadsafe(self._settle)

    def expect(self, count: int) -> None:
        """Called on the loop once ``count`` records are queued."""
        self.queued = count
        with self._lock:
            self._expected = count
            self._alert = self._next_alert()
            done = self._delivered == count  # read after the alert is published (on_delivery)
        if done:
            self._settle()

    def _settle(self) -> None:
        if self.future.done():
            return
        if self._error is not None:
            written = self._expected - self._failed
            self.future.set_exception(
                ProduceFailed(
                    self._error,
                    written=None if self._transaction == "undecided" else written,
                    of=self._expected,
                    transaction=self._transaction,
                )
            )
        else:
            self.future.set_result(self._expected)


_NEVER = 1 << 62  # more reports than any call has records


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():  # its request may have stopped waiting (a deadline)
        waiter.set_result(None)


class KafkaHealth:
    """Whether Kafka answers a metadata request, refreshed in the background for /health."""

    def __init__(self, settings: Settings, *, interval_s: float = 2.0) -> None:
        self._admin = AdminClient(client_config(settings, client_id="inlet-health"))
        self._interval_s = interval_s
        self.ok = False
        self._task: asyncio.Task[None] | None = None

    def check_now(self, timeout_s: float = 2.0) -> bool:
        try:
            self._admin.list_topics(timeout=timeout_s)
        except KafkaException:
            self.ok = False
        else:
            self.ok = True
        return self.ok

    async def _run(self) -> None:
        while True:
            was_ok = self.ok
            await asyncio.to_thread(self.check_now)
            if was_ok != self.ok:
                log.warning("kafka reachability changed", extra={"kafka_ok": self.ok})
            await asyncio.sleep(self._interval_s)

    async def start_checked(self) -> None:
        """Check once now (so /health is right from the first request), then keep checking."""
        await asyncio.to_thread(self.check_now)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
