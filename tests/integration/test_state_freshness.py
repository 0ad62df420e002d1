"""State read by many processes, from a cold start and under faults: never a confident wrong answer.

* Readers started before their state topic exists (created concurrently by another process), on
  cores kept busy, all fold a record written after they started.
* A record no fold can read (a key that is not UTF-8) is counted and skipped: the gateway still
  serves new connectors and refuses deleted tokens.
* A lookup that finds nothing on state that cannot catch up answers 503 ``state_unavailable``,
  never 404; ``/health/ready`` says 503 then, ``/health/live`` still 200.
* The registry reads its own writes, however soon after the commit it reads.
* A reader whose consumer stopped fetching (aiokafka's fetch task cancelled or failed: its
  ``getmany`` then answers nothing, forever) restarts, once, and folds again; one told to stop
  while it restarts stops.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.broker import LocalKafka, env_cache_dir
from inlet.kafka import OutgoingRecord, client_config
from inlet.settings import Settings
from inlet.statelog.fold import Record
from inlet.statelog.kafka import KafkaStateLog, LogReader, ensure_state_topics
from inlet.topics import CONNECTORS_TOPIC
from inlet.transactions import TransactionalProducer
from tests import cpu_load
from tests.servers import serve_inlet

pytestmark = pytest.mark.kafka

TOKEN = "inlet_admin_freshness-test"
FIELDS = [{"name": "id", "type": "string"}]
# Generous: the suite runs on a loaded 2-core machine, here with every core kept busy on purpose.
DEADLINE_S = 60.0


@pytest.fixture(name="busy_cores")
def _busy_cores() -> Iterator[None]:
    """A busy loop per core for the duration of the test: start-up under CPU load."""
    with cpu_load.busy_cores():
        yield


class Keys:
    def __init__(self) -> None:
        self.keys: set[bytes] = set()

    def apply(self, topic: str, key: bytes, value: bytes | None) -> None:
        self.keys.add(key)


def _write(settings: Settings, topic: str, key: bytes) -> None:
    writer = TransactionalProducer(
        client_config(settings, client_id="freshness-test", **{"transactional.id": topic})
    )
    try:
        writer.write([OutgoingRecord(topic, b"{}", key, partition=0)])
    finally:
        writer.close()


async def test_readers_started_before_their_topic_exists_fold_what_is_written_after(
    settings: Settings, busy_cores: None
) -> None:
    topic = f"_inlet_test_fresh_{uuid.uuid4().hex[:8]}"
    folds = [Keys() for _ in range(4)]
    readers = [LogReader(settings, f, [topic], name=f"fresh-{i}") for i, f in enumerate(folds)]
    # Started (as gateway workers are) while another process has not created the topic yet.
    starting = [asyncio.create_task(r.start(timeout_s=DEADLINE_S)) for r in readers]
    try:
        await asyncio.sleep(1.0)  # the readers are asking for a topic that is not there
        await asyncio.to_thread(ensure_state_topics, settings, [topic])
        await asyncio.gather(*starting)
        await asyncio.to_thread(_write, settings, topic, b"after-start")
        deadline = time.monotonic() + DEADLINE_S
        while not all(b"after-start" in f.keys for f in folds):
            assert time.monotonic() < deadline, [r.status() for r in readers]
            await asyncio.sleep(0.05)
        while not all(r.status().caught_up for r in readers):
            assert time.monotonic() < deadline, [r.status() for r in readers]
            await asyncio.sleep(0.05)
    finally:
        for task in starting:
            task.cancel()
        await asyncio.gather(*starting, return_exceptions=True)
        await asyncio.gather(*(r.stop() for r in readers))


def _create(admin: httpx.Client, name: str) -> dict[str, Any]:
    response = admin.post("/v1/connectors", json={"name": name, "fields": FIELDS})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _until(check: Any, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.fixture
def inlet(settings: Settings) -> Iterator[tuple[httpx.Client, httpx.Client, Settings]]:
    configured = Settings(
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
        data_dir=settings.data_dir,
        admin_token=TOKEN,
        topic_partitions=1,
    )
    with serve_inlet(configured) as (registry, gateway, served):
        admin = httpx.Client(
            base_url=registry, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        )
        client = httpx.Client(base_url=gateway, timeout=30)
        try:
            yield admin, client, served
        finally:
            admin.close()
            client.close()


def _ingest(client: httpx.Client, token: str) -> int:
    return client.post(f"/v1/ingest/{token}", json={"id": "x"}).status_code


def test_a_state_record_with_a_key_that_is_not_utf8_is_skipped_not_fatal(
    inlet: tuple[httpx.Client, httpx.Client, Settings],
) -> None:
    admin, client, settings = inlet
    doomed = _create(admin, f"doomed-{uuid.uuid4().hex[:6]}")
    assert _ingest(client, doomed["token"]) == 200
    _write(settings, CONNECTORS_TOPIC, b"\xff\xfe not utf-8")
    later = _create(admin, f"later-{uuid.uuid4().hex[:6]}")
    assert admin.delete(f"/v1/connectors/{doomed['id']}").status_code in (200, 204)
    # Both readers (the registry's and the gateway's) went past the bad record and kept folding.
    _until(lambda: _ingest(client, later["token"]) == 200, "a new connector is served")
    _until(lambda: _ingest(client, doomed["token"]) == 404, "a deleted token is refused")
    for service in (client, admin):
        ready = service.get("/health/ready")
        assert ready.status_code == 200, ready.text
        # The connectors' reader (the gateway also reports its dedup reader while a connector
        # of the session's broker has dedup: no bad record there).
        (reader,) = (r for name, r in ready.json()["state"].items() if name != "dedup")
        assert reader["alive"]
        assert reader["corrupt_records"] >= 1


def test_without_state_that_can_catch_up_an_unknown_token_is_503_not_404(
    tmp_path: Path,
) -> None:
    broker = LocalKafka(data_dir=None, cache_dir=env_cache_dir(), first_port=None, quiet=True)
    settings = Settings(
        kafka_bootstrap_servers=broker.start(),
        data_dir=str(tmp_path / "data"),
        admin_token=TOKEN,
        topic_partitions=1,
        produce_timeout_s=2.0,
    )
    try:
        with serve_inlet(settings) as (registry, gateway, _served):
            admin = httpx.Client(
                base_url=registry, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
            )
            client = httpx.Client(base_url=gateway, timeout=30)
            known = _create(admin, "known")
            _until(lambda: _ingest(client, known["token"]) == 200, "the connector is served")
            assert _ingest(client, "inlet_ingest_nobody") == 404
            assert client.get("/health/ready").status_code == 200
            broker.stop()  # Kafka unreachable: the fold cannot be brought up to date
            response = client.post("/v1/ingest/inlet_ingest_other", json={"id": "x"})
            assert response.status_code == 503, response.text
            assert response.json()["code"] == "state_unavailable"
            assert int(response.headers["retry-after"]) >= 1
            # One found unknown a moment before is remembered only while the fold is that fresh.
            _until(lambda: _ingest(client, "inlet_ingest_nobody") == 503, "503 once stale")
            missing = admin.get("/v1/connectors/con_0123456789abcdef")
            assert missing.status_code == 503, missing.text
            assert missing.json()["code"] == "state_unavailable"
            assert admin.get(f"/v1/connectors/{known['id']}").status_code == 200
            for service in (client, admin):
                _until(lambda s=service: s.get("/health/ready").status_code == 503, "not ready")
                assert service.get("/health").status_code == 503
                assert service.get("/health/live").status_code == 200
            admin.close()
            client.close()
    finally:
        broker.stop()


def test_the_registry_reads_its_own_writes_at_once(
    inlet: tuple[httpx.Client, httpx.Client, Settings],
) -> None:
    admin, _client, _settings = inlet
    for i in range(15):
        made = _create(admin, f"ryw-{i}-{uuid.uuid4().hex[:6]}")
        got = admin.get(f"/v1/connectors/{made['id']}")
        assert got.status_code == 200, got.text


def _end_fetching(reader: LogReader, how: str) -> None:
    """End the background fetch task of the reader's consumer, as aiokafka #983 saw it end."""
    fetcher = reader.consumer._fetcher
    if how == "cancelled":
        fetcher.error_future.cancel()
        return

    def fail(*_args: object) -> None:
        raise RuntimeError("a fault in the fetch loop")

    # Called by the fetch loop on its next turn (after the fetch in flight): it fails.
    fetcher._get_actions_per_node = fail  # type: ignore[attr-defined]


@pytest.mark.parametrize("how", ["cancelled", "failed"])
async def test_a_reader_whose_fetch_task_ended_restarts_once_and_folds_again(
    settings: Settings, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    topic = f"_inlet_test_fetch_{uuid.uuid4().hex[:8]}"
    keys = Keys()
    state_log = KafkaStateLog(settings, keys, [topic])
    await state_log.start()
    reader = state_log.reader
    try:
        await state_log.transact(lambda: ([Record(topic, b"before", b"{}")], None))
        caplog.set_level(logging.WARNING, logger="inlet.statelog.kafka")
        _end_fetching(reader, how)
        deadline = time.monotonic() + DEADLINE_S
        while not (reader.restarts == 1 and reader.status().alive):
            assert time.monotonic() < deadline, reader.status()
            await asyncio.sleep(0.05)
        # Its new consumer folds what is written now: the write returns once it is folded here.
        await asyncio.wait_for(
            state_log.transact(lambda: ([Record(topic, b"after", b"{}")], None)), DEADLINE_S
        )
        assert b"after" in keys.keys
        assert reader.restarts == 1
        failed = [r for r in caplog.records if r.getMessage().startswith("state log reader failed")]
        assert len(failed) == 1, failed
        assert "FetchEnded" in failed[0].__dict__["error"]
    finally:
        await asyncio.wait_for(state_log.stop(), DEADLINE_S)


async def test_a_reader_that_recovered_waits_the_shortest_time_at_its_next_failure(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    topic = f"_inlet_test_backoff_{uuid.uuid4().hex[:8]}"
    state_log = KafkaStateLog(settings, Keys(), [topic])
    await state_log.start()
    reader = state_log.reader
    try:
        caplog.set_level(logging.WARNING, logger="inlet.statelog.kafka")
        for restarts in (1, 2):
            _end_fetching(reader, "cancelled")
            deadline = time.monotonic() + DEADLINE_S
            # Alive again means recovered: a whole fetch turn since the restart.
            while not (reader.restarts == restarts and reader.status().alive):
                assert time.monotonic() < deadline, reader.status()
                await asyncio.sleep(0.05)
        failed = [r for r in caplog.records if r.getMessage().startswith("state log reader failed")]
        waits = [r.__dict__["retry_in_s"] for r in failed]
        assert len(waits) == 2, waits
        assert waits[1] == waits[0], waits  # not doubled: the recovery in between reset it
    finally:
        await asyncio.wait_for(state_log.stop(), DEADLINE_S)


async def test_a_reader_told_to_stop_while_it_restarts_stops(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = f"_inlet_test_fetch_{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(ensure_state_topics, settings, [topic])
    reader = LogReader(settings, Keys(), [topic], name="stopped-restarting")
    await reader.start(timeout_s=DEADLINE_S)
    consumer = reader.consumer
    closing = asyncio.Event()
    stop = consumer.stop

    async def noted_stop() -> None:
        closing.set()
        await stop()

    monkeypatch.setattr(consumer, "stop", noted_stop)
    try:
        _end_fetching(reader, "cancelled")
        # No wait_for here (a task of its own: one more turn of the loop): this wakes, and
        # stops the reader, in the very turn in which the restarting reader awaits a task that
        # aiokafka's stop has just cancelled.
        async with asyncio.timeout(DEADLINE_S):
            await closing.wait()
    finally:
        # The cancellation reached that task, which swallowed it: the reader restarted instead
        # of stopping, and this waited forever.
        async with asyncio.timeout(DEADLINE_S):
            await reader.stop()
    assert not reader.status().alive
