"""``LogReader`` without Kafka: what it refuses before it asks anything."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from inlet.settings import Settings
from inlet.statelog.kafka import LogReader


class _Nothing:
    def apply(self, topic: str, key: bytes, value: bytes | None) -> None:
        return None


async def test_waiting_for_a_partition_the_reader_does_not_read_is_refused_at_once() -> None:
    # Waited for, it would never come: a write's offsets there are a bug, not a slow fold.
    reader = LogReader(
        Settings(kafka_bootstrap_servers="127.0.0.1:1"), _Nothing(), ["_read"], name="test"
    )
    with pytest.raises(ValueError, match="does not read"):
        await reader.wait_for({TopicPartition("_read", 0): 0, TopicPartition("_other", 0): 1})
