"""Reading a connector topic back as any Kafka user would.

``read_committed``, Confluent's ``AvroDeserializer`` against Inlet's registry (``any:<admin
token>``), from the start to the end of every partition as it was when the read began.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from chaos.verdict import Copy
from inlet.records import HEADER_REQUEST_ID


def read_topic(
    bootstrap: str, registry_url: str, admin_token: str, topic: str, timeout_s: float = 120.0
) -> list[Copy]:
    registry = SchemaRegistryClient(
        {"url": registry_url, "basic.auth.user.info": f"any:{admin_token}"}
    )
    deserialize = AvroDeserializer(registry)
    context = SerializationContext(topic, MessageField.VALUE)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"chaos-check-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    deadline = time.monotonic() + timeout_s
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        ends = {}
        for p in partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        todo = {p for p, end in ends.items() if end > 0}
        copies: list[Copy] = []
        while todo:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"read {len(copies)} records of {topic}; partitions {todo} short"
                )
            for message in consumer.consume(1000, timeout=1.0):
                if message.error() is not None:
                    continue
                partition, offset = message.partition(), message.offset()
                assert partition is not None
                assert offset is not None
                value = deserialize(message.value(), context)
                assert isinstance(value, dict)
                headers = dict(message.headers() or [])
                raw = headers.get(HEADER_REQUEST_ID) or b""
                request_id = raw.decode() if isinstance(raw, bytes) else raw
                copies.append(Copy(str(value["id"]), request_id, partition, offset))
            # Positions, not the last offset seen: a transaction marker takes an offset too.
            for position in consumer.position([TopicPartition(topic, p) for p in todo]):
                if position.offset >= ends[position.partition]:
                    todo.discard(position.partition)
        return copies
    finally:
        consumer.close()
        registry.close()
