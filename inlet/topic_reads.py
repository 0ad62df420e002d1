"""Reading a topic from given offsets with an assigned consumer (no group membership): what the
pull feed (``records_api.py``) and replays (``replay.py``) share.

Blocking (librdkafka): callers run it in a worker thread.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

KAFKA_TIMEOUT_S = 10.0


def read_from(
    consumer: Consumer,
    topic: str,
    start: dict[int, int],
    limit: int,
    wait_s: float,
    *,
    only_started: bool = False,
) -> tuple[list[Message], dict[int, int], bool]:
    """Up to ``limit`` records of ``topic`` from ``start`` (partition -> next offset; a partition
    not in it, or behind retention, starts at its oldest record kept; with ``only_started``, a
    partition not in it is not read), in (partition, offset) order; where each partition now
    stands; and whether every partition read was read to its end.

    ``consumer`` must have ``enable.partition.eof``. Records known to be there (below the end
    offsets) are waited for ``wait_s`` at most.
    """
    found = consumer.list_topics(topic, timeout=KAFKA_TIMEOUT_S).topics.get(topic)
    if found is None or found.error is not None:
        raise KafkaException(found.error if found else f"no topic {topic}")
    positions: dict[int, int] = {}
    pending: list[TopicPartition] = []
    for partition in sorted(found.partitions):
        if only_started and partition not in start:
            continue
        tp = TopicPartition(topic, partition)
        oldest, end = consumer.get_watermark_offsets(tp, KAFKA_TIMEOUT_S)
        positions[partition] = max(start.get(partition, 0), oldest)
        if positions[partition] < end:
            pending.append(TopicPartition(topic, partition, positions[partition]))
    if not pending:
        return [], positions, True
    messages, finished = _fetch(consumer, pending, positions, limit, wait_s)
    return sorted(messages, key=_at), positions, finished


def _fetch(
    consumer: Consumer,
    pending: list[TopicPartition],
    positions: dict[int, int],
    limit: int,
    wait_s: float,
) -> tuple[list[Message], bool]:
    """Consume until ``limit`` records, the end of every partition, or the wait is over;
    ``positions`` follows: past each record returned, and past what lies before a partition's
    end (transaction markers) once the end is reached."""
    consumer.assign(pending)
    unfinished = {tp.partition for tp in pending}
    messages: list[Message] = []
    deadline = time.monotonic() + wait_s
    while unfinished and len(messages) < limit:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        for message in consumer.consume(min(limit - len(messages), 500), min(remaining, 0.1)):
            partition, offset = message.partition(), message.offset()
            assert partition is not None
            assert offset is not None
            error = message.error()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                unfinished.discard(partition)
                positions[partition] = max(positions[partition], offset)
            elif error is not None:
                raise KafkaException(error)
            elif len(messages) < limit:
                messages.append(message)
                positions[partition] = offset + 1
    return messages, not unfinished


def _at(message: Message) -> tuple[int, int]:
    return message.partition() or 0, message.offset() or 0
