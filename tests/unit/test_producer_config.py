"""The producer's delivery timeout is not the answer's deadline, its queue is bounded, and a full
queue is waited out only until a deadline (at once on an event loop)."""

from __future__ import annotations

import time
from typing import Any, cast

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer

from inlet.kafka import (
    DELIVERY_TIMEOUT_MS,
    NO_WAIT,
    QUEUE_MAX_KBYTES,
    QUEUE_MAX_MESSAGES,
    ConfigValue,
    produce_waiting,
    producer_config,
)
from inlet.settings import Settings

SETTINGS = Settings(kafka_bootstrap_servers="k1:9092", produce_timeout_s=10.0)


def test_records_are_retried_long_after_the_answer_deadline_in_a_bounded_queue() -> None:
    config = producer_config(SETTINGS, client_id="p")
    assert config["delivery.timeout.ms"] == DELIVERY_TIMEOUT_MS
    assert SETTINGS.produce_timeout_s * 1000 * 10 <= DELIVERY_TIMEOUT_MS
    assert config["enable.idempotence"] is True
    assert config["queue.buffering.max.kbytes"] == QUEUE_MAX_KBYTES
    assert config["queue.buffering.max.messages"] >= QUEUE_MAX_MESSAGES


@pytest.mark.parametrize("cap", [1_000, 100_000, 250_000])
def test_the_queue_holds_several_of_the_largest_requests(cap: int) -> None:
    # A queue no larger than one request's records: one maximal request fills it, and it and
    # every request beside it are refused 503 "overloaded" with Kafka well.
    settings = Settings(kafka_bootstrap_servers="k1:9092", max_records_per_request=cap)
    queue = producer_config(settings, client_id="p")["queue.buffering.max.messages"]
    assert queue >= 2 * cap


def test_a_transactional_producer_times_records_out_with_its_transaction() -> None:
    # librdkafka refuses a message timeout longer than the transaction timeout.
    transactional: dict[str, ConfigValue] = {
        "transactional.id": "t",
        "transaction.timeout.ms": 60_000,
    }
    config = producer_config(SETTINGS, client_id="p", **transactional)
    assert "delivery.timeout.ms" not in config
    assert "message.timeout.ms" not in config


class _FullQueue:
    """A producer whose queue frees room after ``polls_to_free`` polls (never, with None)."""

    def __init__(self, polls_to_free: int | None) -> None:
        self.polls_to_free = polls_to_free
        self.polls = 0
        self.produced: list[Any] = []

    def produce(self, topic: str, value: bytes | None, key: bytes | None, **_: Any) -> None:
        if self.polls_to_free is None or self.polls < self.polls_to_free:
            raise BufferError("Local: Queue full")
        self.produced.append((topic, value, key))

    def poll(self, timeout: float) -> int:
        self.polls += 1
        time.sleep(min(timeout, 0.001))
        return 0


def test_no_wait_refuses_a_full_queue_without_polling() -> None:
    producer = _FullQueue(polls_to_free=None)
    with pytest.raises(KafkaException) as refused:
        produce_waiting(cast(Producer, producer), "t", b"v", deadline=NO_WAIT)
    error = refused.value.args[0]
    assert error.code() == KafkaError._QUEUE_FULL
    assert error.retriable()
    assert error.txn_requires_abort()
    assert producer.polls == 0


def test_a_full_queue_is_waited_out_until_the_deadline() -> None:
    freeing = _FullQueue(polls_to_free=3)
    produce_waiting(cast(Producer, freeing), "t", b"v", deadline=time.monotonic() + 60)
    assert freeing.produced == [("t", b"v", None)]
    stuck = _FullQueue(polls_to_free=None)
    with pytest.raises(KafkaException):
        produce_waiting(cast(Producer, stuck), "t", b"v", deadline=time.monotonic() + 0.05)
    assert stuck.polls >= 1
