"""A large request is built and handed to the producer in slices, giving the loop a turn between
two; a small one in one go. The outcome is the same as handing everything over at once."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from confluent_kafka import KafkaError

import gateway.ingest
from gateway.connector_lookup import ConnectorLookup
from gateway.errors import Overloaded
from gateway.ingest import Ingest, IngestResult
from gateway.metrics import GatewayMetrics
from inlet.codec import steps
from inlet.codec.bodies import parse_body
from inlet.codec.record_codec import RecordCodec
from inlet.codec.steps import STEP_RECORDS, Steps, run, run_yielding
from inlet.errors import KafkaUnavailable
from inlet.kafka import (
    PRODUCE_SLICE,
    PRODUCE_WINDOW,
    AsyncProducer,
    Delivery,
    OutgoingRecord,
    ProduceFailed,
)
from inlet.model.connectors import Connector, ConnectorState
from inlet.model.fields import FieldSpec
from inlet.records import RecordError
from inlet.settings import Settings
from inlet.tokens import token_hash

AT = datetime(2026, 1, 1, tzinfo=UTC)
CONNECTOR = Connector(
    id="con_0123456789abcdef",
    name="slices",
    fields=[FieldSpec(name="id", type="string"), FieldSpec(name="n", type="integer")],
    key_field="id",
    topic="slices",
    rejected_topic="slices.rejected",
    subject="slices-value",
    record_name="Slices",
    schema_id=7,
    schema_version=1,
    token_hash=token_hash("inlet_ingest_slices"),
    created_at=AT,
    updated_at=AT,
)


class Librdkafka:
    """Stands in for confluent-kafka's ``Producer``: keeps what it is given, acks it at once (as
    the poll thread would, later), and refuses with ``BufferError`` past ``room`` records."""

    def __init__(self, room: int | None = None) -> None:
        self.produced: list[OutgoingRecord] = []
        self.room = room

    def produce(  # confluent-kafka's parameters, in its order (the producer passes them so)
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int = -1,
        callback: Callable[..., None] | None = None,
        on_delivery: Callable[..., None] | None = None,
        timestamp: int = 0,
        headers: Any = None,
    ) -> None:
        report = callback or on_delivery
        assert report is not None
        if self.room is not None and len(self.produced) >= self.room:
            raise BufferError
        self.produced.append(OutgoingRecord(topic, value, key, headers, partition))
        report(None, None)

    def poll(self, _timeout: float) -> int:
        return 0


def producer(stub: Librdkafka) -> AsyncProducer:
    made = AsyncProducer.__new__(AsyncProducer)  # no librdkafka producer, no poll thread
    made._producer = stub  # type: ignore[assignment]
    return made


def records(count: int) -> list[OutgoingRecord]:
    return [OutgoingRecord("t", str(i).encode(), None, None) for i in range(count)]


async def watched(
    work: Callable[[], Awaitable[object]], stub: Librdkafka
) -> tuple[object, set[int]]:
    """``work()``'s result, and how many records ``stub`` held each time another task ran."""
    seen: set[int] = set()
    stop = asyncio.Event()

    async def other_request() -> None:
        while not stop.is_set():
            seen.add(len(stub.produced))
            await asyncio.sleep(0)

    task = asyncio.create_task(other_request())
    await asyncio.sleep(0)  # it runs once before the work starts
    try:
        return await work(), seen
    finally:
        stop.set()
        await task


def test_records_are_handed_over_in_slices_with_the_loop_turning_between_them() -> None:
    stub = Librdkafka()
    total = 3 * PRODUCE_SLICE + 5

    async def work() -> int:
        delivery = Delivery.on_running_loop()
        await run_yielding(producer(stub).produce_steps(records(total), delivery))
        return await delivery.future

    acknowledged, seen = asyncio.run(watched(work, stub))
    assert acknowledged == total
    assert stub.produced == records(total)  # all of them, in order
    # Another task ran after each full slice, never inside one.
    assert seen - {0, total} == {PRODUCE_SLICE, 2 * PRODUCE_SLICE, 3 * PRODUCE_SLICE}


def test_a_request_of_one_slice_is_handed_over_without_a_step() -> None:
    async def first_step() -> None:
        steps = producer(Librdkafka()).produce_steps(
            records(STEP_RECORDS), Delivery.on_running_loop()
        )
        with pytest.raises(StopIteration):
            next(steps)  # done at once: ``run_yielding`` awaits nothing

    asyncio.run(first_step())


def test_a_full_queue_in_a_later_slice_is_refused_at_once_counting_what_was_queued() -> None:
    stub = Librdkafka(room=STEP_RECORDS + 10)

    async def work() -> Delivery:
        delivery = Delivery.on_running_loop()
        with pytest.raises(ProduceFailed) as refused:
            await run_yielding(producer(stub).produce_steps(records(3 * STEP_RECORDS), delivery))
        assert refused.value.queue_full
        assert refused.value.queued == STEP_RECORDS + 10
        return delivery

    delivery = asyncio.run(work())
    assert delivery.queued == STEP_RECORDS + 10
    assert delivery.future.cancelled()


class Unacked(Librdkafka):
    """Keeps the delivery reports until the test hands them out (``report``), as Kafka acks
    records some time after they are queued."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[Callable[..., None]] = []

    def produce(  # confluent-kafka's parameters, in its order (the producer passes them so)
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int = -1,
        callback: Callable[..., None] | None = None,
        on_delivery: Callable[..., None] | None = None,
        timestamp: int = 0,
        headers: Any = None,
    ) -> None:
        report = callback or on_delivery
        assert report is not None
        self.produced.append(OutgoingRecord(topic, value, key, headers, partition))
        self.held.append(report)

    def report(self, count: int, error: KafkaError | None = None) -> None:
        for on_delivery in self.held[:count]:
            on_delivery(error, None)
        del self.held[:count]


async def settled() -> None:
    """Until the loop has run every callback due (the reports' wake-ups among them) and the
    call has handed over all it may (a slice a turn)."""
    for _ in range(4 * PRODUCE_WINDOW // PRODUCE_SLICE):
        await asyncio.sleep(0)


def test_a_large_call_runs_no_more_than_the_window_ahead_of_the_acks() -> None:
    # A single webhook queued beside a 100,000-record request waited behind all of its records
    # (librdkafka sends a partition's records in order): p99 100-300 ms (bench/hostile_bench.py).
    stub = Unacked()
    total = PRODUCE_WINDOW + 3 * PRODUCE_SLICE

    async def work() -> None:
        delivery = Delivery.on_running_loop()
        task = asyncio.create_task(
            run_yielding(producer(stub).produce_steps(records(total), delivery))
        )
        await settled()
        assert len(stub.produced) == PRODUCE_WINDOW  # then it waits, the loop turning
        stub.report(PRODUCE_SLICE - 1)
        await settled()
        assert len(stub.produced) == PRODUCE_WINDOW  # a whole slice's room, not less
        stub.report(1)
        await settled()
        assert len(stub.produced) == PRODUCE_WINDOW + PRODUCE_SLICE
        while stub.held:
            assert len(stub.held) <= PRODUCE_WINDOW
            stub.report(PRODUCE_SLICE)
            await settled()
        await task
        assert await delivery.future == total
        assert stub.produced == records(total)

    asyncio.run(work())


def test_a_call_whose_record_failed_hands_over_no_more_and_says_what_was_written() -> None:
    stub = Unacked()
    total = PRODUCE_WINDOW + 3 * PRODUCE_SLICE

    async def work() -> None:
        delivery = Delivery.on_running_loop()
        task = asyncio.create_task(
            run_yielding(producer(stub).produce_steps(records(total), delivery))
        )
        await settled()
        stub.report(PRODUCE_SLICE - 1)
        stub.report(1, KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
        await settled()
        await task  # done handing over: the request fails whatever the rest would do
        assert len(stub.produced) == PRODUCE_WINDOW
        stub.report(len(stub.held))
        with pytest.raises(ProduceFailed) as failed:
            await delivery.future
        assert (failed.value.written, failed.value.of) == (PRODUCE_WINDOW - 1, PRODUCE_WINDOW)

    asyncio.run(work())


def test_records_of_a_call_within_the_window_are_handed_over_without_waiting() -> None:
    stub = Unacked()

    async def work() -> None:
        delivery = Delivery.on_running_loop()
        await run_yielding(producer(stub).produce_steps(records(PRODUCE_WINDOW), delivery))
        assert len(stub.produced) == PRODUCE_WINDOW  # no ack needed to hand them all over
        stub.report(PRODUCE_WINDOW)
        assert await delivery.future == PRODUCE_WINDOW

    asyncio.run(work())


def test_run_refuses_steps_that_wait() -> None:
    async def work() -> None:
        steps = producer(Unacked()).produce_steps(
            records(PRODUCE_WINDOW + STEP_RECORDS), Delivery.on_running_loop()
        )
        with pytest.raises(RuntimeError, match="run_yielding"):
            run(steps)

    asyncio.run(work())


# --- The gateway's whole produce step -----------------------------------------------------------


def ingest_with(stub: Librdkafka, **settings: Any) -> Ingest:
    lookup = ConnectorLookup(ConnectorState(), None)  # type: ignore[arg-type]
    config = Settings(kafka_bootstrap_servers="127.0.0.1:1", **settings)
    return Ingest(config, lookup, producer(stub), GatewayMetrics())


def half_invalid(count: int) -> bytes:
    values = (str(i) if i % 2 else '"x"' for i in range(count))  # every other one invalid
    lines = (f'{{"id":"r{i}","n":{value}}}' for i, value in enumerate(values))
    return "\n".join(lines).encode()


async def _ingest(ingest: Ingest, body: bytes) -> IngestResult:
    return await ingest.ingest(
        CONNECTOR,
        body,
        content_type="application/x-ndjson",
        content_encoding=None,
        atomic=False,
        request_id="req-1",
    )


async def at_once(steps: Steps[Any]) -> Any:
    return run(steps)


def test_a_large_request_lets_others_run_and_writes_what_the_unsliced_path_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: 1_767_225_600_000_000_000)
    body = half_invalid(5 * STEP_RECORDS)
    sliced = Librdkafka()
    result, seen = asyncio.run(watched(lambda: _ingest(ingest_with(sliced), body), sliced))
    # Others ran while the records were being handed over, not only before and after.
    assert any(0 < count < len(sliced.produced) for count in seen)

    monkeypatch.setattr(gateway.ingest, "run_yielding", at_once)
    whole = Librdkafka()
    unsliced = asyncio.run(_ingest(ingest_with(whole), body))
    assert result == unsliced
    assert (unsliced.accepted, unsliced.rejected) == (5 * STEP_RECORDS // 2, 5 * STEP_RECORDS // 2)
    assert sliced.produced == whole.produced
    assert [record.topic for record in whole.produced] == ["slices"] * (5 * STEP_RECORDS // 2) + [
        "slices.rejected"
    ] * (5 * STEP_RECORDS // 2)
    assert msgspec.json.decode(whole.produced[-1].value or b"")["record"] == {
        "id": f"r{5 * STEP_RECORDS - 2}",
        "n": "x",
    }


def test_a_request_of_500_records_never_gives_the_loop_a_turn() -> None:
    stub = Librdkafka()
    result, seen = asyncio.run(watched(lambda: _ingest(ingest_with(stub), half_invalid(500)), stub))
    assert (result.accepted, result.rejected) == (250, 250)  # type: ignore[attr-defined]
    assert seen == {0}  # parsed, encoded, built and handed over without a single await that waits


def test_a_full_queue_refuses_a_large_request_saying_what_was_queued() -> None:
    stub = Librdkafka(room=STEP_RECORDS + 1)
    with pytest.raises(Overloaded) as refused:
        asyncio.run(_ingest(ingest_with(stub), half_invalid(4 * STEP_RECORDS)))
    assert f"{STEP_RECORDS + 1} of the request's {4 * STEP_RECORDS} records were queued" in str(
        refused.value
    )


def test_a_deadline_passing_while_records_are_handed_over_says_what_may_be_written() -> None:
    stub = Librdkafka()
    # Past once the first slice is handed over: the deadline is the whole produce step's.
    ingest = ingest_with(stub, produce_timeout_s=1e-9)
    with pytest.raises(KafkaUnavailable) as late:
        asyncio.run(_ingest(ingest, half_invalid(4 * STEP_RECORDS)))
    assert len(stub.produced) == PRODUCE_SLICE
    assert str(late.value).endswith(
        f"{PRODUCE_SLICE} of the request's {4 * STEP_RECORDS} records were acknowledged; "
        f"0 more were handed to the producer and may still be written, the last "
        f"{4 * STEP_RECORDS - PRODUCE_SLICE} never will be"
    )


# --- What a large request leaves the garbage collector to walk ------------------------------------


class Counting(Librdkafka):
    """Acks at once and keeps nothing; counts, at the first record it is given, the objects the
    garbage collector tracks that the request made: its Kafka records, its rejected records'
    lists of errors."""

    def __init__(self) -> None:
        super().__init__()
        gc.collect()
        self.before = self.count()  # what other tests left
        self.seen: tuple[int, int] | None = None

    @staticmethod
    def count() -> tuple[int, int]:
        tracked = gc.get_objects()
        return (
            # A Kafka record: an ``OutgoingRecord`` or the same fields as a plain tuple.
            sum(
                isinstance(o, tuple)
                and len(o) == len(OutgoingRecord._fields)
                and o[0] in (CONNECTOR.topic, CONNECTOR.rejected_topic)
                for o in tracked
            ),
            sum(type(o) is list and bool(o) and type(o[0]) is RecordError for o in tracked),
        )

    def produce(  # confluent-kafka's parameters, in its order (the producer passes them so)
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int = -1,
        callback: Callable[..., None] | None = None,
        on_delivery: Callable[..., None] | None = None,
        timestamp: int = 0,
        headers: Any = None,
    ) -> None:
        report = callback or on_delivery
        assert report is not None
        if self.seen is None:
            records, error_lists = self.count()
            self.seen = (records - self.before[0], error_lists - self.before[1])
        report(None, None)


def test_a_large_request_leaves_the_collector_no_record_to_walk_per_record_it_holds() -> None:
    # Every full collection walks every tracked object: a request holding one per record (its
    # Kafka record, a rejected record's list of errors) stalled the loop 20-30 ms a pass
    # (bench/hostile_bench.py). Its records are made a slice at a time, its errors are tuples.
    stub = Counting()
    total = 20 * STEP_RECORDS
    result = asyncio.run(_ingest(ingest_with(stub), half_invalid(total)))
    assert (result.accepted, result.rejected) == (total // 2, total // 2)
    assert stub.seen is not None
    records, error_lists = stub.seen
    assert records <= STEP_RECORDS  # the slice being handed over, not the request's 20,480
    assert error_lists <= 0


# --- Steps by time ------------------------------------------------------------------------------


def ticking(monkeypatch: pytest.MonkeyPatch, step_s: float) -> None:
    """Every reading of the steps' clock ``step_s`` later than the one before."""
    now = iter(range(1_000_000_000))
    monkeypatch.setattr(steps, "perf_counter", lambda: next(now) * step_s)


def test_a_pacer_steps_when_its_time_is_up_or_its_count_reached_never_for_small_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ticking(monkeypatch, steps.STEP_SECONDS / 4)
    pacer = steps.Pacer(100, every=50)
    # The clock starts at the first item: its fifth reading is a step's time later.
    assert [pacer.due() for _ in range(10)] == [False] * 4 + [True] + [False] * 4 + [True]
    ticking(monkeypatch, 0.0)
    pacer = steps.Pacer(100, every=50)
    assert [pacer.due() for _ in range(100)].count(True) == 2  # by count, the clock standing
    ticking(monkeypatch, 1.0)
    small = steps.Pacer(50, every=50)
    assert not any(small.due() for _ in range(50))


def test_invalid_records_are_examined_in_steps_of_bounded_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One invalid record examined for all its errors costs 10 µs, or far more when it has many:
    # STEP_RECORDS of them were one step of up to 30 ms. Now a step ends when its time is up.
    ticking(monkeypatch, steps.STEP_SECONDS / 2)
    codec = RecordCodec.of_connector(CONNECTOR)
    lines = (f'{{"id":"r{i}","n":"x"}}' for i in range(2 * STEP_RECORDS))
    batch = parse_body("\n".join(lines).encode(), "application/x-ndjson")
    taken, encode = 0, codec.encode_steps(batch)
    while True:
        try:
            next(encode)
        except StopIteration as done:
            result = done.value
            break
        taken += 1
    assert len(result.rejected) == 2 * STEP_RECORDS
    # A step every few records examined, not every 1,024 (3 steps).
    assert taken >= STEP_RECORDS // 2


def test_a_large_request_s_records_are_freed_in_steps_a_small_one_s_at_once() -> None:
    # Freed all at once as the answer went out, 100,000 records held the loop 10-15 ms.
    records, rejected = list(range(3 * STEP_RECORDS + 5)), list(range(10))
    freeing = steps.release(records, rejected)
    taken = 0
    while True:
        try:
            next(freeing)
        except StopIteration:
            break
        taken += 1
        assert len(records) == 3 * STEP_RECORDS + 5 - taken * STEP_RECORDS
    assert (taken, records, rejected) == (3, [], [])
    small = list(range(STEP_RECORDS))
    with pytest.raises(StopIteration):
        next(steps.release(small))
    assert small == []


# --- Counting the reports -----------------------------------------------------------------------


def test_reports_settle_the_call_whether_they_come_before_or_after_it_is_all_queued() -> None:
    async def counted(before: int, failed_at: int | None) -> ProduceFailed | int:
        delivery = Delivery.on_running_loop()
        for n in range(5):
            if n == before:
                delivery.expect(5)
            error = KafkaError(KafkaError._MSG_TIMED_OUT) if n == failed_at else None
            delivery.on_delivery(error, None)  # type: ignore[arg-type]
        if before >= 5:
            delivery.expect(5)
        try:
            return await asyncio.wait_for(delivery.future, 5)
        except ProduceFailed as exc:
            return exc

    for before in range(6):
        assert asyncio.run(counted(before, None)) == 5
        failed = asyncio.run(counted(before, 1))  # one early failure, later records written
        assert isinstance(failed, ProduceFailed)
        assert (failed.written, failed.of) == (4, 5)


def test_a_waiter_is_woken_by_the_report_it_waits_for_and_not_before() -> None:
    async def work() -> None:
        delivery = Delivery.on_running_loop()
        delivery.on_delivery(None, None)  # type: ignore[arg-type]
        assert delivery.when_reported(1) is None  # already reported
        waiter = delivery.when_reported(3)
        assert waiter is not None
        delivery.on_delivery(None, None)  # type: ignore[arg-type]
        await asyncio.sleep(0)
        assert not waiter.done()
        delivery.on_delivery(None, None)  # type: ignore[arg-type]
        await asyncio.wait_for(waiter, 5)
        assert delivery.acknowledged == 3
        delivery.expect(3)
        assert await asyncio.wait_for(delivery.future, 5) == 3

    asyncio.run(work())
