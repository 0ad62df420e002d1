"""Kafka transactions: begin, produce, commit; abort on error; fencing told apart.

Three writers use them: the state log (``inlet/statelog/kafka.py``), the sample worker
(``consumers/sample_worker.py``) and replays (``registry/replay.py``); and the gateway, with
``INLET_GATEWAY_TRANSACTIONS`` (``GroupCommitProducer``). Each owns one
``transactional.id``; ``init_transactions`` (when the producer opens) bumps its epoch and so
fences every older producer with the same id. What a writer does when *it* is fenced is its
own policy (the state log opens a new producer and fences back; the sample worker stops; a
replay answers a conflict), so ``write`` raises ``Fenced`` for it and leaves the rest alone.

After any other failure the transaction is aborted when librdkafka says that is enough
(``txn_requires_abort``); otherwise the producer is dropped and the next ``write`` opens a new
one, whose ``init_transactions`` aborts what the old one left open. Either way nothing of the
failed transaction is visible to ``read_committed`` readers — except after a commit that failed
without needing an abort (it timed out): the coordinator may have taken it, and then completes it
whatever the producer does next. ``write`` raises ``CommitUndecided`` for that one.
All calls block (librdkafka): run them in a worker thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition

from inlet.codec.steps import Steps
from inlet.kafka import ConfigValue, Delivery, RecordFields, produce_waiting
from inlet.kafka_errors import is_transient

# What a transactional producer gets once a newer one initialised the same transactional.id.
FENCED_CODES = frozenset(
    {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}
)


class Fenced(Exception):
    """A newer producer with the same ``transactional.id`` took over; this one wrote nothing."""

    def __init__(self, error: KafkaError) -> None:
        super().__init__(error.str())
        self.error = error


class CommitUndecided(KafkaException):
    """``commit_transaction`` failed without asking for an abort (a timeout, say): the
    transaction may still commit, all of it, or be aborted; nobody can tell yet."""


def is_fenced(error: object) -> bool:
    return isinstance(error, KafkaError) and error.code() in FENCED_CODES


class TransactionalProducer:
    """A transactional producer, opened on first use, writing whole transactions."""

    def __init__(self, config: Mapping[str, ConfigValue], *, timeout_s: float = 30.0) -> None:
        if "transactional.id" not in config:
            raise ValueError("a transactional producer needs a transactional.id")
        self._config = dict(config)
        self._timeout_s = timeout_s
        self._producer: Producer | None = None

    @property
    def is_open(self) -> bool:
        return self._producer is not None

    def open(self) -> None:
        """Open the producer now (if it is not open): this fences every older one."""
        if self._producer is None:
            producer = Producer(self._config)
            try:
                producer.init_transactions(self._timeout_s)
            except KafkaException as exc:
                raise _classified(exc) from exc
            self._producer = producer

    def write(
        self,
        records: Iterable[RecordFields],
        *,
        offsets: tuple[list[TopicPartition], Any] | None = None,  # and consumer_group_metadata()
    ) -> dict[tuple[str, int], int]:
        """Produce ``records`` (and commit ``offsets`` for a consumer group) in one transaction.

        Returns the last offset written per (topic, partition): a reader that has folded past
        them sees the transaction (its end offset, asked right after the commit, may not yet:
        the broker writes the commit markers after answering the commit).
        Raises ``Fenced``, or the ``KafkaException`` of another failure, after cleaning up.
        """
        self.open()
        producer = self._producer
        assert producer is not None
        # A worker thread may wait out a full queue, within the transaction's bounds.
        deadline = time.monotonic() + self._timeout_s
        written: dict[tuple[str, int], int] = {}

        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is None:
                where = (message.topic() or "", message.partition() or 0)
                written[where] = max(written.get(where, -1), message.offset() or 0)

        try:
            producer.begin_transaction()
            for topic, value, key, headers, partition in records:
                produce_waiting(
                    producer,
                    topic,
                    value,
                    key,
                    deadline=deadline,
                    headers=headers,
                    partition=partition,
                    on_delivery=delivered,
                )
            if offsets is not None:
                producer.send_offsets_to_transaction(*offsets, self._timeout_s)
        except KafkaException as exc:
            self._after_failure(exc.args[0])
            raise _classified(exc) from exc
        try:
            producer.commit_transaction(self._timeout_s)
        except KafkaException as exc:
            error = exc.args[0]
            self._after_failure(error)
            # Fenced is decided: the newer producer's coordinator aborts this epoch's transaction.
            if (
                isinstance(error, KafkaError)
                and not is_fenced(error)
                and not error.txn_requires_abort()
            ):
                raise CommitUndecided(error) from exc
            raise _classified(exc) from exc
        producer.poll(0)  # the commit flushed every record: serve the reports still queued
        return written

    def _after_failure(self, error: object) -> None:
        producer = self._producer
        if isinstance(error, KafkaError) and error.txn_requires_abort() and producer is not None:
            try:
                producer.abort_transaction(self._timeout_s)
            except KafkaException:
                pass  # broken after all: dropped below
            else:
                return
        self._producer = None  # fenced, fatal or unknown: the next write opens (and fences)

    def reset(self) -> None:
        """Drop the producer; the next write opens a new one (a new epoch, fencing this one).

        After a refusal for good inside a transaction (a record the topic will not take), the
        aborted batch leaves a gap in the idempotent sequence numbers that librdkafka repairs only
        by failing the next transaction too; a new producer starts clean."""
        self.close(0)

    def close(self, timeout_s: float = 5.0) -> None:
        """Drop the producer; every write was committed or aborted, so nothing is queued."""
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.flush(timeout_s)


def _classified(exc: KafkaException) -> Exception:
    error = exc.args[0] if exc.args else None
    return Fenced(error) if isinstance(error, KafkaError) and is_fenced(error) else exc


class GroupCommitProducer:
    """Each call's records in a Kafka transaction: ``read_committed`` readers see all of a call's
    records or none. The calls that arrive while a transaction commits share the next one (group
    commit), so the cost of a commit is shared by the requests of those few milliseconds.

    One thread runs the transactions (librdkafka's calls block). A group that Kafka refuses for
    good is tried again call by call, so that one call's refusal (a record the topic will not
    take) does not fail the others; a transient failure fails the group (each retry would wait out
    the same outage). A call whose caller stopped waiting (its future cancelled) before its group
    began is left out. A ``TrackedProducer`` (``inlet/kafka.py``).
    """

    def __init__(self, config: Mapping[str, ConfigValue], *, timeout_s: float = 10.0) -> None:
        self._writer = TransactionalProducer(config, timeout_s=timeout_s)
        self._pending: list[tuple[list[RecordFields], Delivery]] = []
        self._wake = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="kafka-transactions", daemon=True)
        self._thread.start()

    def produce_steps(self, records: Sequence[RecordFields], delivery: Delivery) -> Steps[None]:
        """The call's records to the transactions thread, all at once and without a step: they
        are one transaction's, and the loop only copies them (~1 ms for 100,000); the thread
        produces them."""
        yield from ()
        delivery.transactional = True
        batch = list(records)
        with self._wake:
            self._pending.append((batch, delivery))
            self._wake.notify()
        delivery.queued = len(batch)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closing:
                    self._wake.wait()
                if not self._pending:
                    return
                group, self._pending = self._pending, []
            live = [call for call in group if not call[1].future.cancelled()]
            if live:
                self._commit(live)

    def _commit(self, group: list[tuple[list[RecordFields], Delivery]]) -> None:
        try:
            self._writer.write(record for records, _ in group for record in records)
        except (Fenced, KafkaException) as exc:
            error = exc.error if isinstance(exc, Fenced) else exc.args[0]
            if not isinstance(error, KafkaError):
                error = KafkaError(KafkaError._FAIL, str(exc))
            undecided = isinstance(exc, CommitUndecided)
            if not is_transient(error) and not undecided:
                self._writer.reset()
                if len(group) > 1:
                    for call in group:
                        self._commit([call])
                    return
            for records, delivery in group:
                # Aborted: none of them is committed; undecided: all of them may still be.
                delivery.finish(len(records), error, undecided=undecided)
            return
        for records, delivery in group:
            delivery.finish(len(records))

    def close(self, timeout: float = 5.0) -> None:
        """Write what is pending, then stop (call off the event loop)."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join(timeout)
        self._writer.close(timeout)
