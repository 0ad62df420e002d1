"""Kafka transactions: begin, produce, commit; abort on error; fencing told apart.

Three writers use them: the state log (``inlet/statelog/kafka.py``), the sample worker
(``consumers/sample_worker.py``) and replays (``registry/replay.py``). Each owns one
``transactional.id``; ``init_transactions`` (when the producer opens) bumps its epoch and so
fences every older producer with the same id. What a writer does when *it* is fenced is its
own policy (the state log opens a new producer and fences back; the sample worker stops; a
replay answers a conflict), so ``write`` raises ``Fenced`` for it and leaves the rest alone.

After any other failure the transaction is aborted when librdkafka says that is enough
(``txn_requires_abort``); otherwise the producer is dropped and the next ``write`` opens a new
one. Either way nothing of the failed transaction is visible to ``read_committed`` readers.
All calls block (librdkafka): run them in a worker thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition

from inlet.kafka import ConfigValue, OutgoingRecord, produce_waiting

# What a transactional producer gets once a newer one initialised the same transactional.id.
FENCED_CODES = frozenset(
    {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}
)


class Fenced(Exception):
    """A newer producer with the same ``transactional.id`` took over; this one wrote nothing."""

    def __init__(self, error: KafkaError) -> None:
        super().__init__(error.str())
        self.error = error


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
        records: Iterable[OutgoingRecord],
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
            producer.commit_transaction(self._timeout_s)
        except KafkaException as exc:
            self._after_failure(exc.args[0])
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

    def close(self, timeout_s: float = 5.0) -> None:
        """Drop the producer; every write was committed or aborted, so nothing is queued."""
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.flush(timeout_s)


def _classified(exc: KafkaException) -> Exception:
    error = exc.args[0] if exc.args else None
    return Fenced(error) if isinstance(error, KafkaError) and is_fenced(error) else exc
