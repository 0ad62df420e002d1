"""The session broker is a real Kafka: metadata, a durable produce, a consume."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from inlet.codec.steps import STEP_RECORDS, run_yielding
from inlet.kafka import (
    PRODUCE_WINDOW,
    AsyncProducer,
    Delivery,
    OutgoingRecord,
    aiokafka_config,
    client_config,
    producer_config,
)
from inlet.settings import Settings

pytestmark = pytest.mark.kafka


def create_topic(settings: Settings, name: str, partitions: int = 1) -> None:
    admin = AdminClient(client_config(settings, client_id="test-admin"))
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions)])
    futures[name].result(timeout=30)


async def test_produce_then_consume_round_trip(settings: Settings) -> None:
    topic = f"test-{uuid.uuid4().hex[:8]}"
    create_topic(settings, topic, partitions=2)
    producer = AsyncProducer(producer_config(settings, client_id="test"))
    try:
        batch = [OutgoingRecord(topic, f"v{i}".encode(), f"k{i}".encode()) for i in range(20)]
        assert await producer.produce_batch(batch) == 20  # resolved only once Kafka acked all
    finally:
        await asyncio.to_thread(producer.close)

    consumer = AIOKafkaConsumer(
        topic, auto_offset_reset="earliest", **aiokafka_config(settings, client_id="test")
    )
    await consumer.start()
    seen: dict[bytes | None, bytes | None] = {}  # None: a record without key or value
    try:
        async with asyncio.timeout(30):
            while len(seen) < 20:
                fetched = await consumer.getmany(timeout_ms=500)
                for records in fetched.values():
                    seen.update({r.key: r.value for r in records})
    finally:
        await consumer.stop()
    assert seen == {f"k{i}".encode(): f"v{i}".encode() for i in range(20)}


async def test_produce_to_missing_topic_fails_instead_of_claiming_success(
    settings: Settings,
) -> None:
    producer = AsyncProducer(
        producer_config(settings, client_id="test", **{"delivery.timeout.ms": 3000})
    )
    try:
        with pytest.raises(Exception, match=r"(?i)unknown|not available|timed out"):
            await producer.produce_batch([OutgoingRecord(f"missing-{uuid.uuid4().hex[:8]}", b"x")])
    finally:
        await asyncio.to_thread(producer.close)


async def test_a_large_call_stays_within_the_window_and_a_small_one_waits_behind_no_more(
    settings: Settings,
) -> None:
    # One partition, as a connector's single records and its large bodies share one: a record
    # queued beside a large call is sent after every record queued before it. Before the window
    # a 100,000-record request ran tens of thousands of records ahead of Kafka's acks, and a
    # single webhook beside it waited for all of them (p99 100-300 ms, bench/hostile_bench.py).
    topic = f"test-{uuid.uuid4().hex[:8]}"
    create_topic(settings, topic)
    producer = AsyncProducer(producer_config(settings, client_id="test-window"))
    total = 40 * STEP_RECORDS
    value = b"x" * 100
    large = [OutgoingRecord(topic, value, str(i).encode()) for i in range(total)]
    try:
        await producer.produce_batch([OutgoingRecord(topic, b"warm-up")])  # metadata known
        delivery = Delivery.on_running_loop()
        handing = asyncio.create_task(run_yielding(producer.produce_steps(large, delivery)))
        pending: list[int] = []
        ahead: list[int] = []
        while not handing.done():  # at every turn the loop gets while the call is handed over
            pending.append(producer.pending())
            if len(pending) % 50 == 1:
                ahead.append(producer.pending())
                single = producer.produce_batch([OutgoingRecord(topic, b"single")])
                await single
            await asyncio.sleep(0)
        await handing
        async with asyncio.timeout(60):
            assert await delivery.future == total
    finally:
        await asyncio.to_thread(producer.close)
    # librdkafka's count and the window's (acks counted in the delivery callbacks) are read at
    # different moments, and the count includes the probe: a few records of slack, no more
    # (without the window it was 11,045).
    slack = 16
    assert max(pending) <= PRODUCE_WINDOW + slack
    assert max(ahead) <= PRODUCE_WINDOW + slack  # what each single record found queued before it
    assert len(ahead) > 1  # some were sent while the large call was still being handed over
