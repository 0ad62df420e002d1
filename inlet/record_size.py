"""How large Kafka counts a record, against the one maximum the producers and the topics share.

``Settings.max_message_bytes`` is the producers' ``message.max.bytes`` (``inlet/kafka.py``) and
the ``max.message.bytes`` of every topic Inlet creates (``topic_config``). librdkafka refuses a
record whose *bound* (``RECORD_OVERHEAD`` + key + value + headers) exceeds ``message.max.bytes``;
the broker refuses a record batch larger than the topic's limit, and a record alone in its batch
adds ``BATCH_OVERHEAD``. A record ``fits`` when its bound plus that header is within the maximum:
then neither refuses it, whatever batch it lands in (librdkafka closes a batch before it would
outgrow ``message.max.bytes``, and sends a batch uncompressed when compressing would enlarge
it). Measured with a maximum of 100,000 (librdkafka 2.x, Kafka 4.1, lz4, a 36-byte key and the
gateway's two headers): this check takes values up to 99,785 bytes, the broker took up to 99,810
(its varints are shorter than their bound) and librdkafka up to 99,846.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

# librdkafka's RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD: a record's length, attributes, timestamp and
# offset deltas, key and value lengths and header count, each varint at its longest.
RECORD_OVERHEAD: Final = 5 + 1 + 10 + 5 + 5 + 5 + 5
# A v2 record batch's header (base offset, length, epoch, magic, CRC, ... record count).
BATCH_OVERHEAD: Final = 61


def _varint_size(n: int) -> int:
    """Bytes of ``n`` as Kafka's zig-zag varint (n >= 0)."""
    n <<= 1
    size = 1
    while n >= 0x80:
        n >>= 7
        size += 1
    return size


def headers_size(headers: Iterable[tuple[str, str | bytes | None]] | None) -> int:
    """The headers' bytes in a record, as librdkafka counts them (UTF-8 names and values)."""
    if not headers:
        return 0
    total = 0
    for name, value in headers:
        name_len = len(name.encode())
        value_len = 0 if value is None else len(value.encode() if isinstance(value, str) else value)
        total += _varint_size(name_len) + name_len + _varint_size(value_len) + value_len
    return total


def record_size(value: bytes | None, key: bytes | None, headers_bytes: int) -> int:
    """What ``fits`` compares with the maximum: the record's bound in a batch of its own."""
    return (
        BATCH_OVERHEAD
        + RECORD_OVERHEAD
        + (0 if key is None else len(key))
        + (0 if value is None else len(value))
        + headers_bytes
    )


def fits(
    value: bytes | None, key: bytes | None, headers_bytes: int, max_message_bytes: int
) -> bool:
    return record_size(value, key, headers_bytes) <= max_message_bytes


def topic_config(max_message_bytes: int) -> dict[str, str]:
    """What every topic Inlet creates for connector records is configured with."""
    return {"max.message.bytes": str(max_message_bytes)}
