"""librdkafka's error codes sorted once: which produce errors are permanent, and which kind.

A produce error is permanent when sending the same records again cannot succeed until something
changes (the records, the topic, Inlet's credentials); everything else is transient. librdkafka
retries the transient broker errors itself (for ``DELIVERY_TIMEOUT_MS``, ``inlet/kafka.py``), so
a delivery report that comes back within an answer's deadline with an error is nearly always one
of the permanent ones below. A code not listed here is taken as transient: a permanent error
wrongly called transient costs the sender retries that fail again; the opposite would tell a
sender to drop records that a retry would have written.

``KafkaError.retriable()`` cannot decide it: a delivery report's error carries only its code
(confluent-kafka builds it without librdkafka's flags), so it is False for every one of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from confluent_kafka import KafkaError

from inlet.errors import KafkaNotAuthorized, KafkaRecordTooLarge, KafkaRefused, KafkaTopicMissing

PERMANENT: Final[Mapping[int, type[KafkaRefused]]] = {
    # librdkafka's own check against message.max.bytes, or the broker's against the topic's limit.
    KafkaError.MSG_SIZE_TOO_LARGE: KafkaRecordTooLarge,
    KafkaError.RECORD_LIST_TOO_LARGE: KafkaRecordTooLarge,
    KafkaError.TOPIC_AUTHORIZATION_FAILED: KafkaNotAuthorized,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED: KafkaNotAuthorized,
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: KafkaNotAuthorized,
    KafkaError.SASL_AUTHENTICATION_FAILED: KafkaNotAuthorized,
    KafkaError._AUTHENTICATION: KafkaNotAuthorized,
    # librdkafka's verdict after the topic stayed missing from the metadata (or on produce, when it
    # already knows), and the broker's once librdkafka gave up retrying it.
    KafkaError._UNKNOWN_TOPIC: KafkaTopicMissing,
    KafkaError._UNKNOWN_PARTITION: KafkaTopicMissing,
    KafkaError.UNKNOWN_TOPIC_OR_PART: KafkaTopicMissing,
    KafkaError.TOPIC_EXCEPTION: KafkaTopicMissing,  # an invalid topic name
    KafkaError.INVALID_RECORD: KafkaRefused,
    KafkaError.POLICY_VIOLATION: KafkaRefused,
    KafkaError.INVALID_REQUIRED_ACKS: KafkaRefused,
    KafkaError.UNSUPPORTED_VERSION: KafkaRefused,
    KafkaError.UNSUPPORTED_COMPRESSION_TYPE: KafkaRefused,
    KafkaError.UNSUPPORTED_FOR_MESSAGE_FORMAT: KafkaRefused,
    KafkaError._UNSUPPORTED_FEATURE: KafkaRefused,
    KafkaError._INVALID_ARG: KafkaRefused,
}


def refusal(error: KafkaError) -> type[KafkaRefused] | None:
    """The permanent error ``error`` is, or None when it is transient (a retry may succeed)."""
    return PERMANENT.get(error.code())


def is_transient(error: KafkaError) -> bool:
    return error.code() not in PERMANENT
