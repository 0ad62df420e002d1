"""A registry and a gateway served in threads on the session's Kafka, with an HTTP client for
each, and the small waits and reads the integration tests of the gateway share."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from inlet.settings import Settings
from tests.servers import serve_inlet

# Generous: the suite runs on a loaded 2-core machine.
DEADLINE_S = 30.0


@dataclass
class Stack:
    settings: Settings
    gateway: str
    admin: httpx.Client  # the registry's admin API, signed in
    client: httpx.Client  # for the gateway: absolute URLs


@contextmanager
def served_stack(kafka_bootstrap: str, data_dir: Path, admin_token: str) -> Iterator[Stack]:
    base = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        data_dir=str(data_dir),
        admin_token=admin_token,
        topic_partitions=1,
    )
    headers = {"Authorization": f"Bearer {admin_token}"}
    with (
        serve_inlet(base) as (registry, gateway, settings),
        httpx.Client(base_url=registry, headers=headers) as admin,
        httpx.Client(timeout=30) as client,
    ):
        yield Stack(settings, gateway, admin, client)


def until(condition: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
    """Poll ``condition`` until it holds; fail the test at the deadline."""
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {deadline_s:g} s: {what}")
        time.sleep(0.05)


def committed_records(settings: Settings, topic: str) -> list[Message]:
    """Every record of ``topic`` a ``read_committed`` reader sees, read to the end of each
    partition once every transaction on it is decided.

    The gateway writes in transactions: a commit (or abort) marker takes an offset, so a high
    watermark counts markers, and aborted records too; and the broker writes a transaction's
    markers just after answering its commit, so a request answered 200 can be invisible to a
    ``read_committed`` reader for a moment. So: wait until the partitions' last stable offsets
    (what a ``read_committed`` reader's end offset is) reach their high watermarks, then read to
    them (``enable.partition.eof``: an end that is a marker is reached without a record at it).
    """
    bootstrap = settings.kafka_bootstrap_servers or ""
    uncommitted = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex})
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": uuid.uuid4().hex,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends: dict[int, int] = {}

        def decided() -> bool:
            for p in partitions:
                stable = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                high = uncommitted.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                if stable[1] != high[1]:
                    return False
                ends[p] = high[1]
            return True

        until(decided, f"every transaction on {topic} committed or aborted")
        # Offset 0 may be gone (retention) or a marker: start at the oldest, stop at the end.
        todo = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(todo)])
        found: list[Message] = []
        deadline = time.monotonic() + DEADLINE_S
        while todo:
            if time.monotonic() > deadline:
                pytest.fail(f"could not read {topic} to its end: partitions {sorted(todo)} short")
            for message in consumer.consume(1000, 0.5):
                error = message.error()
                if error is None:
                    found.append(message)
                elif error.code() == KafkaError._PARTITION_EOF:
                    todo.discard(message.partition() or 0)
        return found
    finally:
        consumer.close()
        uncommitted.close()


def topic_size(settings: Settings, topic: str) -> int:
    """Records in ``topic`` that a ``read_committed`` reader sees (``committed_records``)."""
    return len(committed_records(settings, topic))
