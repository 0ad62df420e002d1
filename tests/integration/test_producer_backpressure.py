"""Back-pressure never blocks the event loop: a full producer queue is refused at once, and the
answer deadline runs from the moment the records go to the producer.

The producer here talks to a black hole (a port that takes connections and never answers), so
nothing is ever acknowledged and librdkafka's local queue only fills: a stalled broker, without
a broker to stall. No Kafka is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway._http_errors import status_of
from gateway.connector_lookup import ConnectorLookup
from gateway.errors import Overloaded
from gateway.ingest import Ingest
from gateway.metrics import GatewayMetrics
from inlet.errors import KafkaUnavailable
from inlet.kafka import AsyncProducer, OutgoingRecord, ProduceFailed, producer_config
from inlet.model.connectors import Connector, ConnectorState
from inlet.model.fields import FieldSpec
from inlet.settings import Settings
from inlet.statelog.fold import CompleteState

QUEUE_LIMIT = 20
# Hang detectors, not performance limits: before the fix the call blocked for the whole delivery
# timeout (10 s then, 300 s now) and the loop with it.
RETURNS_WITHIN_S = 5.0
LOOP_GAP_BOUND_S = 2.0


@pytest.fixture
def black_hole() -> Iterator[str]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)  # the kernel completes the handshakes; nobody ever reads
        host, port = listener.getsockname()
        yield f"{host}:{port}"


def _settings(bootstrap: str, tmp_path: Path, produce_timeout_s: float = 10.0) -> Settings:
    return Settings(
        kafka_bootstrap_servers=bootstrap,
        data_dir=str(tmp_path / "data"),
        produce_timeout_s=produce_timeout_s,
    )


def _producer(settings: Settings) -> AsyncProducer:
    config = producer_config(
        settings, client_id="backpressure-test", **{"queue.buffering.max.messages": QUEUE_LIMIT}
    )
    return AsyncProducer(config)


class _Ticker:
    """Measures the longest time the event loop did not run a 10 ms ticker."""

    def __init__(self) -> None:
        self.max_gap_s = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(0.01)
            now = loop.time()
            self.max_gap_s = max(self.max_gap_s, now - last)
            last = now


@contextlib.asynccontextmanager
async def _ticking() -> AsyncIterator[_Ticker]:
    ticker = _Ticker()
    task = asyncio.get_running_loop().create_task(ticker.run())
    await asyncio.sleep(0.05)
    try:
        yield ticker
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _records(n: int) -> list[OutgoingRecord]:
    return [OutgoingRecord("blackhole-topic", f"v{i}".encode()) for i in range(n)]


async def test_a_full_queue_is_refused_at_once_and_the_loop_keeps_turning(
    black_hole: str, tmp_path: Path
) -> None:
    producer = _producer(_settings(black_hole, tmp_path))
    try:
        async with _ticking() as ticker:
            started = time.monotonic()
            with pytest.raises(ProduceFailed) as refused:
                producer.produce_batch(_records(QUEUE_LIMIT * 3))
            took = time.monotonic() - started
            await asyncio.sleep(0.1)  # the ticker runs once more after the call
        assert refused.value.queue_full
        assert refused.value.retryable
        # The records queued before the queue filled are still the producer's: they may be written.
        assert refused.value.queued == QUEUE_LIMIT
        assert took < RETURNS_WITHIN_S
        assert ticker.max_gap_s < LOOP_GAP_BOUND_S
        # Still full: the next call is refused before it queues anything.
        with pytest.raises(ProduceFailed) as again:
            producer.produce_batch(_records(1))
        assert again.value.queue_full
        assert again.value.queued == 0
    finally:
        await asyncio.to_thread(producer.close, 0.1)


def _connector() -> Connector:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    return Connector(
        id="con_backpressure",
        name="backpressure",
        fields=[FieldSpec(name="id", type="string")],
        topic="inlet.con_backpressure",
        rejected_topic="inlet.con_backpressure.rejected",
        subject="inlet.con_backpressure-value",
        record_name="backpressure",
        schema_id=1,
        schema_version=1,
        token_hash="h",
        created_at=now,
        updated_at=now,
    )


async def _ingest(ingest: Ingest, n: int) -> None:
    body = b"[" + b",".join(b'{"id": "r%d"}' % i for i in range(n)) + b"]"
    await ingest.ingest(
        _connector(),
        body,
        content_type="application/json",
        content_encoding=None,
        atomic=None,
        request_id="r",
    )


async def test_the_gateway_answers_overloaded_at_once_when_the_queue_is_full(
    black_hole: str, tmp_path: Path
) -> None:
    settings = _settings(black_hole, tmp_path)
    producer = _producer(settings)
    ingest = Ingest(
        settings, ConnectorLookup(ConnectorState(), CompleteState()), producer, GatewayMetrics()
    )
    try:
        async with _ticking() as ticker:
            started = time.monotonic()
            with pytest.raises(Overloaded) as refused:
                await _ingest(ingest, QUEUE_LIMIT * 2)
            took = time.monotonic() - started
        assert (status_of(refused.value), refused.value.code) == (503, "overloaded")
        assert refused.value.retry_after_s > 0
        queued = f"{QUEUE_LIMIT} of the request's {QUEUE_LIMIT * 2} records were queued"
        assert queued in refused.value.message
        assert took < RETURNS_WITHIN_S
        assert ticker.max_gap_s < LOOP_GAP_BOUND_S
    finally:
        await asyncio.to_thread(producer.close, 0.1)


async def test_the_answer_deadline_is_the_gateways_while_the_producer_keeps_retrying(
    black_hole: str, tmp_path: Path
) -> None:
    settings = _settings(black_hole, tmp_path, produce_timeout_s=1.0)
    producer = _producer(settings)
    ingest = Ingest(
        settings, ConnectorLookup(ConnectorState(), CompleteState()), producer, GatewayMetrics()
    )
    try:
        with pytest.raises(KafkaUnavailable) as timed_out:
            await _ingest(ingest, 3)
        assert not isinstance(timed_out.value, Overloaded)
        assert status_of(timed_out.value) == 503
        assert "may still be written" in timed_out.value.message
        # Answered, yet the records are still queued for delivery: librdkafka did not time them
        # out with the answer (that would bump the idempotent producer's epoch).
        assert producer.pending() == 3
    finally:
        await asyncio.to_thread(producer.close, 0.1)
