"""TransactionalProducer on a real broker: whole transactions, fencing told apart, nothing half
visible to read_committed readers."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

from inlet.kafka import ConfigValue, OutgoingRecord, client_config
from inlet.settings import Settings
from inlet.statelog.kafka import ensure_state_topics
from inlet.transactions import Fenced, TransactionalProducer

pytestmark = pytest.mark.kafka


def _new_topic(settings: Settings) -> str:
    topic = f"_test_txn_{uuid.uuid4().hex[:8]}"
    ensure_state_topics(settings, [topic])  # compacted, one partition: records need keys
    return topic


def _producer(settings: Settings, transactional_id: str) -> TransactionalProducer:
    transactional: dict[str, ConfigValue] = {
        "transactional.id": transactional_id,
        "transaction.timeout.ms": 10_000,
    }
    config = client_config(settings, client_id="test-transactions", **transactional)
    return TransactionalProducer(config, timeout_s=20)


def _committed_values(settings: Settings, topic: str, expected: int) -> list[bytes]:
    """Every committed value of partition 0, read until ``expected`` arrived (or 20 s passed)."""
    reading: dict[str, ConfigValue] = {
        "group.id": "unused",
        "isolation.level": "read_committed",
        "enable.partition.eof": True,
    }
    consumer = Consumer(client_config(settings, client_id="test-transactions-reader", **reading))
    consumer.assign([TopicPartition(topic, 0, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                continue
            if message.error() is None:
                values.append(message.value() or b"")
            elif len(values) >= expected:
                break  # end of partition, and everything expected is there
    finally:
        consumer.close()
    return values


def test_a_write_is_one_transaction_and_a_newer_producer_fences_the_older(
    settings: Settings,
) -> None:
    topic = _new_topic(settings)
    transactional_id = f"test-txn-{uuid.uuid4().hex[:8]}"
    older = _producer(settings, transactional_id)
    older.write(
        [
            OutgoingRecord(topic, b"a", b"k", partition=0),
            OutgoingRecord(topic, b"b", b"k", partition=0),
        ]
    )
    assert older.is_open

    newer = _producer(settings, transactional_id)
    newer.open()  # fences the older one
    with pytest.raises(Fenced):
        older.write([OutgoingRecord(topic, b"lost", b"k", partition=0)])
    assert not older.is_open  # dropped: a next write would open (and fence) in turn
    newer.write([OutgoingRecord(topic, b"c", b"k", partition=0)])

    assert _committed_values(settings, topic, 3) == [b"a", b"b", b"c"]
    newer.close()
    older.close()


def test_a_failed_write_shows_nothing_and_the_next_write_goes_through(settings: Settings) -> None:
    topic = _new_topic(settings)
    writer = _producer(settings, f"test-txn-{uuid.uuid4().hex[:8]}")
    too_large = b"x" * 2_000_000  # over the producer's message.max.bytes: refused at produce()
    with pytest.raises(KafkaException):
        writer.write(
            [
                OutgoingRecord(topic, b"first", b"k", partition=0),
                OutgoingRecord(topic, too_large, b"k", partition=0),
            ]
        )
    writer.write([OutgoingRecord(topic, b"second", b"k", partition=0)])
    assert _committed_values(settings, topic, 1) == [b"second"]
    writer.close()


def test_a_producer_needs_a_transactional_id(settings: Settings) -> None:
    with pytest.raises(ValueError, match=r"transactional\.id"):
        TransactionalProducer(client_config(settings, client_id="test"))
