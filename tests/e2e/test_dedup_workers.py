"""Issue #13's dedup test: every request sent twice (the second 0-5 s after the first answer) to
`inlet gateway` with its 2 worker processes, one of them restarted in the middle: the topic holds
each key exactly once, and every second delivery is answered ``duplicate``."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import msgspec
import pytest
from confluent_kafka import Consumer, TopicPartition

from inlet.process import listening_socket
from inlet.settings import Settings
from registry.app import create_app as create_registry
from tests.e2e.test_gateway_workers import (
    TOKEN,
    _server_workers,
    create_connector,
    gateway_with_two_workers,
)
from tests.servers import serve

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

# 10,000 as the issue asks (run by hand, see the README); a CI run sends fewer unless told. Not
# an INLET_ variable: the gateway it starts would refuse an unknown one.
REQUESTS = int(os.environ.get("TEST_DEDUP_REQUESTS", "2000"))
CONCURRENCY = 48
SECOND_WITHIN_S = 5.0
DEADLINE_S = 300.0
_RETRIED = (409, 503)


async def _deliver(
    client: httpx.AsyncClient, url: str, key: str, gate: asyncio.Semaphore, retries: Counter[str]
) -> dict[str, object]:
    """One delivery as a webhook sender makes it: retried on 409, 503 or a dropped connection
    (the same key, the same body) until answered 200."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        assert time.monotonic() < deadline, f"{key} never answered 200"
        try:
            async with gate:
                answer = await client.post(
                    url, json={"id": key}, headers={"webhook-id": key}, timeout=60
                )
        except httpx.TransportError:
            retries["transport"] += 1
            await asyncio.sleep(0.2)
            continue
        if answer.status_code in _RETRIED:
            retries[str(answer.status_code)] += 1
            await asyncio.sleep(float(answer.headers.get("retry-after", "1")))
            continue
        assert answer.status_code == 200, answer.text
        body: dict[str, object] = answer.json()
        return body


def _keys_on(settings: Settings, topic: str) -> Counter[str]:
    """How often each key is on ``topic`` (every partition, committed records)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": uuid.uuid4().hex,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        keys: Counter[str] = Counter()
        done = {p for p, end in ends.items() if end == 0}
        deadline = time.monotonic() + 120
        while len(done) < len(ends):
            assert time.monotonic() < deadline, "the topic was not read to its end in 120 s"
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            key = dict(message.headers() or []).get("inlet-dedup-key") or b""
            keys[key.decode() if isinstance(key, bytes) else key] += 1
            partition, offset = message.partition() or 0, message.offset() or 0
            if offset + 1 >= ends[partition]:
                done.add(partition)
        return keys
    finally:
        consumer.close()


@pytest.mark.timeout(900)
async def test_each_key_lands_once_across_two_workers_and_a_restart(
    settings: Settings, tmp_path: Path
) -> None:
    listening = listening_socket()
    port = listening.getsockname()[1]
    settings = msgspec.structs.replace(settings, admin_token=TOKEN, gateway_port=port)
    with (
        serve(create_registry(settings)) as registry,
        gateway_with_two_workers(settings, listening, stderr=tmp_path / "gateway.log") as gateway,
    ):
        connector = await create_connector(
            registry, "dedup", dedup={"header": "webhook-id"}, partitions=3
        )
        url, topic = connector["ingest_url"], connector["topic"]
        run = uuid.uuid4().hex[:8]
        keys = [f"{run}-{i}" for i in range(REQUESTS)]
        gate = asyncio.Semaphore(CONCURRENCY)
        retries: Counter[str] = Counter()
        firsts: list[str] = []
        halfway, restarted = asyncio.Event(), asyncio.Event()
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        async with httpx.AsyncClient(limits=limits) as client:
            for _ in range(2 * CONCURRENCY):  # until every connection's worker knows it
                while (await client.post(url, json=[])).status_code == 404:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)

            async def twice(key: str) -> tuple[dict[str, object], dict[str, object]]:
                first = await _deliver(client, url, key, gate, retries)
                firsts.append(key)
                if len(firsts) == REQUESTS // 2:
                    halfway.set()
                await asyncio.sleep(random.uniform(0, SECOND_WITHIN_S))
                return first, await _deliver(client, url, key, gate, retries)

            async def restart_one_worker() -> None:
                await halfway.wait()
                before = _server_workers(gateway.pid)
                os.kill(before[0], signal.SIGTERM)
                deadline = time.monotonic() + 120
                while True:
                    now = _server_workers(gateway.pid)
                    if len(now) == 2 and before[0] not in now:
                        break
                    assert time.monotonic() < deadline, f"no worker replaced {before[0]}"
                    await asyncio.sleep(0.1)
                restarted.set()

            started = time.monotonic()
            restarting = asyncio.create_task(restart_one_worker())
            answers = await asyncio.gather(*(twice(key) for key in keys))
            elapsed = time.monotonic() - started
            await restarting
        assert restarted.is_set()

    on_topic = _keys_on(settings, topic)
    twice_written = {key: n for key, n in on_topic.items() if n != 1}
    assert not twice_written, f"keys written more than once: {list(twice_written.items())[:10]}"
    assert set(on_topic) == set(keys)
    # Every second delivery found its key accepted (the first was answered 200 before it).
    assert all(second.get("duplicate") is True for _first, second in answers)
    print(  # the figure the README quotes
        f"dedup e2e: {REQUESTS} keys x 2 in {elapsed:.1f} s, retries {dict(retries)}"
    )
