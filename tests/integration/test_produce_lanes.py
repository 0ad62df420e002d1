"""The gateway's producer on a real Kafka: a small request's record is queued behind none of a
large request's, however far that one is, and both are written whole."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer

from gateway._produce_lanes import LanedProducer
from gateway.app import gateway_producer
from inlet.codec.steps import STEP_RECORDS, run_yielding
from inlet.kafka import PRODUCE_WINDOW, AsyncProducer, Delivery, OutgoingRecord, aiokafka_config
from inlet.settings import Settings
from tests.integration.test_kafka import create_topic

pytestmark = pytest.mark.kafka


async def _produce(producer: LanedProducer, records: list[OutgoingRecord]) -> int:
    delivery = Delivery.on_running_loop()
    await run_yielding(producer.produce_steps(records, delivery))
    return await delivery.future


def _pending(lane: object) -> int:
    assert isinstance(lane, AsyncProducer)
    return lane.pending()


async def test_a_small_request_waits_behind_none_of_a_large_one_s_records(
    settings: Settings,
) -> None:
    # One partition, as a connector's webhooks and its bulk import share one. On one producer a
    # single record found up to PRODUCE_WINDOW of the large call's records queued before it
    # (tests/integration/test_kafka.py); on the gateway's producer it finds none.
    topic = f"test-{uuid.uuid4().hex[:8]}"
    create_topic(settings, topic)
    producer = gateway_producer(settings)
    assert isinstance(producer, LanedProducer)
    total = 40 * STEP_RECORDS
    large = [OutgoingRecord(topic, b"x" * 100, str(i).encode()) for i in range(total)]
    try:
        assert await _produce(producer, [OutgoingRecord(topic, b"warm-up")]) == 1
        delivery = Delivery.on_running_loop()
        handing = asyncio.create_task(run_yielding(producer.produce_steps(large, delivery)))
        ahead: list[int] = []  # the large call's records queued where each single one went
        beside: list[int] = []  # and on the large lane at that moment
        turns = 0
        while not handing.done():
            turns += 1
            if turns % 50 == 1:
                ahead.append(_pending(producer.small))
                beside.append(_pending(producer.large))
                assert await _produce(producer, [OutgoingRecord(topic, b"single")]) == 1
            await asyncio.sleep(0)
        await handing
        async with asyncio.timeout(60):
            assert await delivery.future == total
    finally:
        await asyncio.to_thread(producer.close)
    # librdkafka's count also holds events waiting in its reply queue (a retried PID request's
    # error, say): a record or two of slack, where one producer let thousands ahead.
    assert max(ahead) <= 2
    assert len(ahead) > 1  # some were sent while the large call was still being handed over
    assert max(beside) > 0  # ... and while its records were queued
    assert max(beside) <= PRODUCE_WINDOW + STEP_RECORDS  # the window holds on its own lane
    # Every record of both is on the topic, each once.
    consumer = AIOKafkaConsumer(
        topic,
        **aiokafka_config(settings, client_id="test-lanes"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        seen: dict[bytes, int] = {}
        count = 0
        async with asyncio.timeout(60):
            while count < total + 1 + len(ahead):
                for batch in (await consumer.getmany(timeout_ms=1000)).values():
                    for message in batch:
                        count += 1
                        if message.key is not None:
                            seen[message.key] = seen.get(message.key, 0) + 1
    finally:
        await consumer.stop()
    assert count == total + 1 + len(ahead)
    assert sorted(seen.values()) == [1] * total
