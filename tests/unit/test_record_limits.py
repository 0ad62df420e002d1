"""Records sized before producing; produce errors sorted into permanent and transient."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
import pytest
from confluent_kafka import KafkaError

from gateway._http_errors import status_of
from gateway.connector_lookup import ConnectorLookup
from gateway.errors import Overloaded, RejectedRecordTooLarge
from gateway.ingest import Ingest, _produce_error
from gateway.metrics import GatewayMetrics
from inlet.codec._record_errors import QUOTE_CHARS, REASON_CHARS, bounded_reason, quoted
from inlet.codec.bodies import parse_body
from inlet.codec.record_codec import RecordCodec
from inlet.codec.steps import Steps
from inlet.errors import (
    KafkaNotAuthorized,
    KafkaRecordTooLarge,
    KafkaRefused,
    KafkaTopicMissing,
    KafkaUnavailable,
)
from inlet.kafka import (
    AsyncProducer,
    Delivery,
    OutgoingRecord,
    ProduceFailed,
    RecordFields,
    producer_config,
)
from inlet.kafka_errors import PERMANENT, is_transient, refusal
from inlet.model.avro import avro_schema
from inlet.model.connectors import Connector, ConnectorState
from inlet.model.fields import FieldSpec
from inlet.record_size import BATCH_OVERHEAD, RECORD_OVERHEAD, headers_size, record_size
from inlet.records import RecordErrorCode
from inlet.settings import Settings
from inlet.tokens import token_hash

FIELDS = [
    FieldSpec(name="id", type="string"),
    FieldSpec(name="blob", type="string", nullable=True),
    FieldSpec(name="kind", type="enum", symbols=["a", "b"], nullable=True),
    FieldSpec(name="qty", type="integer", nullable=True),
]


def codec() -> RecordCodec:
    return RecordCodec(FIELDS, avro_schema("R", FIELDS), schema_id=1, schema_version=1)


def batch(records: list[object]) -> object:
    return parse_body(
        json.dumps(records).encode(),
        "application/json",
        None,
        max_body_bytes=10**8,
        max_record_bytes=10**8,
    )


# --- Sizes ----------------------------------------------------------------------------------


def test_headers_are_counted_as_librdkafka_counts_them() -> None:
    # Measured: with message.max.bytes 100,000, a 36-byte key and these headers, librdkafka took
    # values up to 99,846 bytes: 100,000 - 36 (its record bound) - 36 - 82.
    headers = [("inlet-request-id", "a" * 32), ("inlet-received-at", "1234567890123")]
    assert headers_size(headers) == 82
    assert RECORD_OVERHEAD == 36
    assert record_size(b"v" * 99_846, b"k" * 36, 82) == 100_000 + BATCH_OVERHEAD
    assert headers_size([("n", None)]) == 1 + 1 + 1  # a null value's length is 0 here
    assert headers_size([("é", "x" * 100)]) == 1 + 2 + 2 + 100  # UTF-8, two-byte varint


def test_the_producer_gets_the_one_maximum() -> None:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1", max_message_bytes=123_456)
    assert producer_config(settings, client_id="t")["message.max.bytes"] == 123_456


def test_a_valid_record_too_large_is_rejected_with_record_too_large_and_kept_whole() -> None:
    records = [{"id": "a"}, {"id": "b", "blob": "x" * 500}, {"id": "c", "qty": "bad"}, {"id": "d"}]
    result = codec().encode(batch(records), max_bytes=300)  # type: ignore[arg-type]
    assert [index for index, _key, _value in result.records] == [0, 3]
    assert [rejected.index for rejected in result.rejected] == [1, 2]  # in record order
    too_large = result.rejected[0]
    assert json.loads(too_large.raw) == records[1]
    (error,) = too_large.errors
    assert (error.code, error.pointer, error.field) == (
        RecordErrorCode.RECORD_TOO_LARGE,
        "/1",
        None,
    )
    assert "over the 300" in error.message
    # Without a maximum (the replays' codec use), nothing is sized.
    unsized = codec().encode(batch(records))  # type: ignore[arg-type]
    assert [index for index, _key, _value in unsized.records] == [0, 1, 3]


# --- Reasons quote a slice --------------------------------------------------------------------


def test_reasons_quote_a_bounded_slice_of_the_value() -> None:
    assert quoted("short") == "'short'"
    long = quoted("z" * 600_000)
    assert long.startswith("'" + "z" * QUOTE_CHARS + "'…")
    assert "600,000 characters" in long
    assert len(bounded_reason("q" * 10_000)) == REASON_CHARS
    message = bounded_reason(f"must be one of a, b (invalid enum value '{'z' * 600_000}')")
    assert len(message) < 200
    assert message.endswith("…')")

    result = codec().encode(batch([{"id": "a", "kind": "z" * 600_000}]))  # type: ignore[arg-type]
    (error,) = result.errors
    assert error.code is RecordErrorCode.INVALID_VALUE
    assert len(error.message) < 200
    csv = parse_body(
        b"id,qty\na," + b"9" * 1000 + b"x\n",
        "text/csv",
        None,
        max_body_bytes=10**6,
        max_record_bytes=10**6,
    )
    (cell,) = codec().encode(csv).errors
    assert len(cell.message) < 300
    assert "1,001 characters" in cell.message


# --- The request is sized before anything is produced -----------------------------------------


class RecordingProducer(AsyncProducer):
    def __init__(self) -> None:  # no librdkafka producer, no poll thread
        self.calls: list[list[OutgoingRecord]] = []

    def produce_steps(self, records: Sequence[RecordFields], delivery: Delivery) -> Steps[None]:
        yield from ()
        self.calls.append([OutgoingRecord(*record) for record in records])
        delivery.future.set_result(len(self.calls[-1]))


AT = datetime(2026, 1, 1, tzinfo=UTC)
CONNECTOR = Connector(
    id="con_0123456789abcdef",
    name="limits",
    fields=FIELDS,
    topic="limits",
    rejected_topic="limits.rejected",
    subject="limits-value",
    record_name="Limits",
    schema_id=7,
    schema_version=1,
    token_hash=token_hash("inlet_ingest_limits"),
    created_at=AT,
    updated_at=AT,
)


class NoState:
    def status(self) -> object:
        raise AssertionError("not used")


def ingest_with(producer: RecordingProducer, max_message_bytes: int) -> Ingest:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1", max_message_bytes=max_message_bytes)
    lookup = ConnectorLookup(ConnectorState(), NoState())  # type: ignore[arg-type]
    return Ingest(settings, lookup, producer, GatewayMetrics())


async def _ingest(
    ingest: Ingest,
    records: list[object],
    connector: Connector = CONNECTOR,
    mode: bool | None = None,
) -> object:
    return await ingest.ingest(
        connector,
        json.dumps(records).encode(),
        content_type="application/json",
        content_encoding=None,
        atomic=mode,
        request_id="r" * 32,
    )


def test_a_rejected_record_that_fits_is_kept_and_one_that_does_not_refuses_the_request() -> None:
    producer = RecordingProducer()
    ingest = ingest_with(producer, 800)
    # Every absent nullable field is a byte of Avro: with 600 of them, record 1 is too large for an
    # 800-byte Kafka record as Avro, yet small enough as JSON to keep as a rejected record.
    nullable = (FieldSpec(name=f"f{i}", type="boolean", nullable=True) for i in range(600))
    connector = msgspec.structs.replace(
        CONNECTOR, id="con_00000000000000ff", fields=[*FIELDS[:2], *nullable]
    )
    big = {"id": "b", "blob": "x" * 300}
    result = asyncio.run(_ingest(ingest, [{"id": "a"}, big], connector))
    assert (result.accepted, result.rejected) == (1, 1)  # type: ignore[attr-defined]
    ((valid, kept),) = producer.calls
    assert (valid.topic, kept.topic) == ("limits", "limits.rejected")
    assert json.loads(kept.value or b"")["record"] == big
    assert json.loads(kept.value or b"")["errors"][0]["code"] == "record_too_large"

    producer.calls.clear()
    with pytest.raises(RejectedRecordTooLarge) as refused:
        asyncio.run(_ingest(ingest, [{"id": "a"}, {"id": "c", "blob": "x" * 3_000}]))
    assert producer.calls == []  # nothing of the request went to the producer
    assert refused.value.index == 1
    assert status_of(refused.value) == 413
    assert refused.value.details()["errors"][0]["code"] == "record_too_large"  # type: ignore[index]


# --- Produce errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (KafkaError.MSG_SIZE_TOO_LARGE, KafkaRecordTooLarge),
        (KafkaError.RECORD_LIST_TOO_LARGE, KafkaRecordTooLarge),
        (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaNotAuthorized),
        (KafkaError.CLUSTER_AUTHORIZATION_FAILED, KafkaNotAuthorized),
        (KafkaError._UNKNOWN_TOPIC, KafkaTopicMissing),
        (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaTopicMissing),
        (KafkaError._UNKNOWN_PARTITION, KafkaTopicMissing),
        (KafkaError.INVALID_RECORD, KafkaRefused),
        (KafkaError.POLICY_VIOLATION, KafkaRefused),
    ],
)
def test_permanent_codes_and_their_kind(code: int, kind: type[KafkaRefused]) -> None:
    error = KafkaError(code)
    assert refusal(error) is kind
    assert not is_transient(error)
    assert not ProduceFailed(error).retryable


@pytest.mark.parametrize(
    "code",
    [
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._QUEUE_FULL,
        KafkaError._TIMED_OUT,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError._FATAL,  # unlisted codes are transient
    ],
)
def test_transient_codes(code: int) -> None:
    assert refusal(KafkaError(code)) is None
    assert ProduceFailed(KafkaError(code)).retryable


def test_every_permanent_kind_answers_without_retry_after() -> None:
    assert {status_of(kind("x")) for kind in set(PERMANENT.values())} <= {413, 500}
    assert status_of(KafkaRecordTooLarge("x")) == 413
    assert status_of(KafkaNotAuthorized("x")) == 500
    for kind in set(PERMANENT.values()):
        error = kind("x")
        assert not error.retryable
        assert getattr(error, "retry_after_s", None) is None


def test_the_answer_says_what_of_the_request_was_written() -> None:
    settled = ProduceFailed(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), written=2, of=3)
    refused = _produce_error(settled, 3)
    assert isinstance(refused, KafkaRecordTooLarge)
    assert "2 of the request's 3 records were written" in refused.message

    queued = ProduceFailed(KafkaError(KafkaError._ALL_BROKERS_DOWN), queued=2)
    down = _produce_error(queued, 3)
    assert type(down) is KafkaUnavailable
    assert down.retryable
    assert "2 of the request's 3 records were queued and may still be written" in down.message

    full = _produce_error(ProduceFailed(KafkaError(KafkaError._QUEUE_FULL)), 3)
    assert isinstance(full, Overloaded)
    assert "nothing of the request was written" in full.message

    none = _produce_error(ProduceFailed(KafkaError(KafkaError._UNKNOWN_TOPIC), written=0), 1)
    assert isinstance(none, KafkaTopicMissing)
    assert "none of the request's 1 records was written" in none.message


def test_a_failed_transaction_says_what_read_committed_consumers_see() -> None:
    timed_out = KafkaError(KafkaError._TIMED_OUT)
    aborted = _produce_error(ProduceFailed(timed_out, written=0, transaction="aborted"), 4)
    assert type(aborted) is KafkaUnavailable
    assert "the transaction holding the request's 4 records was aborted" in aborted.message
    assert "read_committed consumers see none of them" in aborted.message

    undecided = _produce_error(ProduceFailed(timed_out, transaction="undecided"), 4)
    assert type(undecided) is KafkaUnavailable
    assert "did not complete and may still" in undecided.message
    assert "will see all of them or none" in undecided.message


async def test_a_transaction_settles_its_calls_with_its_outcome() -> None:
    error = KafkaError(KafkaError._TIMED_OUT)
    outcomes = []
    for undecided in (False, True):
        delivery = Delivery.on_running_loop()
        delivery.finish(3, error, undecided=undecided)
        with pytest.raises(ProduceFailed) as failed:
            await delivery.future
        outcomes.append((failed.value.transaction, failed.value.written))
    assert outcomes == [("aborted", 0), ("undecided", None)]
