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
from confluent_kafka import Consumer, TopicPartition

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


def topic_size(settings: Settings, topic: str) -> int:
    """Records in ``topic``: the sum of its partitions' high watermarks (no transactions here)."""
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": uuid.uuid4().hex}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        )
    finally:
        consumer.close()
