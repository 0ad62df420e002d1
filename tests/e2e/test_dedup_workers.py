"""Issue #13's dedup test: 10,000 requests, each sent twice (the second 0-5 s after the first
answer), spread over two gateway processes, one of them restarted in the middle: the topic holds
each key exactly once, and every second delivery is answered ``duplicate``.

Twice: over `inlet gateway`'s 2 worker processes (one worker SIGTERMed halfway, the supervisor
starts another), and over two `inlet gateway` instances on two ports (one instance stopped and
started again halfway), a delivery and its retry going to either.

The sender is a webhook sender's: a fixed number of kept-alive connections, each taking the next
delivery due, a retry scheduled for later rather than a task waiting for it. HTTP/1.1 on asyncio
streams, since the gateway answers every request with a ``Content-Length``: a general client
(httpx) spent more CPU on its 20,000 requests than the gateway did, on the same two cores.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest
from confluent_kafka import Consumer, TopicPartition

from inlet.process import listening_socket
from inlet.settings import Settings
from registry.app import create_app as create_registry
from tests.gateway_processes import (
    TOKEN,
    create_connector,
    gateway_instance,
    server_workers,
)
from tests.servers import serve

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

# Not an INLET_ variable: the gateway the test starts would refuse an unknown one.
REQUESTS = int(os.environ.get("TEST_DEDUP_REQUESTS", "10000"))
CONNECTIONS = 64  # per test, spread over the gateways' ports
SECOND_WITHIN_S = 5.0
DEADLINE_S = 600.0
_RETRIED = (409, 503)
_decoder = msgspec.json.Decoder()


class _Sender:
    """Delivers every key twice over ``CONNECTIONS`` kept-alive connections to ``urls``: a
    delivery answered 409 or 503 is due again after its ``Retry-After``, one whose connection
    dropped after 0.2 s (on a new connection); a first delivery answered 200 makes the second
    due 0-5 s later."""

    def __init__(self, urls: list[str], keys: list[str]) -> None:
        self._targets = [urlsplit(url) for url in urls]
        self._due: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        for key in keys:
            self._due.put_nowait((key, 1))
        self._left = 2 * len(keys)
        self.done = asyncio.Event()
        self.firsts = 0
        self.answers: dict[tuple[str, int], dict[str, Any]] = {}
        self.retries: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()  # 200s per port
        self.on_first: Callable[[int], None] = lambda _count: None

    async def run(self) -> None:
        senders = [
            asyncio.create_task(self._connection(self._targets[n % len(self._targets)]))
            for n in range(CONNECTIONS)
        ]
        try:
            async with asyncio.timeout(DEADLINE_S):
                await self.done.wait()
        finally:
            for sender in senders:
                sender.cancel()
            await asyncio.gather(*senders, return_exceptions=True)

    def _later(self, delay_s: float, item: tuple[str, int]) -> None:
        asyncio.get_running_loop().call_later(delay_s, self._due.put_nowait, item)

    async def _connection(self, target: Any) -> None:
        head = (
            f"POST {target.path} HTTP/1.1\r\nHost: {target.netloc}\r\n"
            "Content-Type: application/json\r\nwebhook-id: "
        ).encode()
        streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                item = await self._due.get()
                key, attempt = item
                body = msgspec.json.encode({"id": key})
                request = b"%s%s\r\nContent-Length: %d\r\n\r\n%s" % (
                    head,
                    key.encode(),
                    len(body),
                    body,
                )
                try:
                    if streams is None:
                        streams = await asyncio.open_connection(target.hostname, target.port)
                    status, headers, answer = await _exchange(*streams, request)
                except (OSError, asyncio.IncompleteReadError, ConnectionError):
                    self.retries["transport"] += 1
                    if streams is not None:
                        streams[1].close()
                    streams = None
                    self._later(0.2, item)
                    continue
                if headers.get(b"connection") == b"close":
                    streams[1].close()
                    streams = None
                if status in _RETRIED:
                    self.retries[str(status)] += 1
                    self._later(float(headers.get(b"retry-after", b"1")), item)
                    continue
                assert status == 200, (status, answer)
                self.answers[item] = _decoder.decode(answer)
                self.answered[target.netloc] += 1
                if attempt == 1:
                    self.firsts += 1
                    self.on_first(self.firsts)
                    self._later(random.uniform(0, SECOND_WITHIN_S), (key, 2))
                self._left -= 1
                if not self._left:
                    self.done.set()
        finally:
            if streams is not None:
                streams[1].close()


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request on a kept-alive connection: the answer's status, headers and body."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head[:-4].split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    length = headers.get(b"content-length")
    assert length is not None, f"an answer without Content-Length: {head!r}"
    return int(status_line.split()[1]), headers, await reader.readexactly(int(length))


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


async def _known_everywhere(urls: list[str]) -> None:
    """Until every gateway process answers for the new connector (an empty array writes
    nothing): many fresh connections per port, which the kernel spreads over its workers."""
    deadline = time.monotonic() + 120
    for url in urls:
        target = urlsplit(url)
        request = (
            f"POST {target.path} HTTP/1.1\r\nHost: {target.netloc}\r\n"
            "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n[]"
        ).encode()
        for _ in range(16):
            while True:
                reader, writer = await asyncio.open_connection(target.hostname, target.port)
                try:
                    status, _headers, _body = await _exchange(reader, writer, request)
                finally:
                    writer.close()
                if status != 404:
                    break
                assert time.monotonic() < deadline, "a gateway never learned the connector"
                await asyncio.sleep(0.05)


async def _send_twice(
    settings: Settings, topic: str, urls: list[str], restart: Callable[[], None]
) -> None:
    """Every key twice over ``urls``; ``restart`` (blocking: in a thread) once half the keys
    were answered; then the topic holds each key once and every second answer is a duplicate."""
    await _known_everywhere(urls)
    run = uuid.uuid4().hex[:8]
    keys = [f"{run}-{i}" for i in range(REQUESTS)]
    sender = _Sender(urls, keys)
    halfway = asyncio.Event()
    sender.on_first = lambda count: halfway.set() if count == REQUESTS // 2 else None

    timeline: dict[str, float] = {}
    after_restart: Counter[str] = Counter()  # answers per port once restarted (then subtracted)

    async def restart_halfway() -> None:
        await halfway.wait()
        timeline["restart"] = time.monotonic() - started
        await asyncio.to_thread(restart)
        timeline["restarted"] = time.monotonic() - started
        after_restart.update(sender.answered)

    started = time.monotonic()
    restarting = asyncio.create_task(restart_halfway())
    try:
        await sender.run()
    finally:
        if not restarting.done():
            restarting.cancel()
    await restarting
    elapsed = time.monotonic() - started

    after_restart = sender.answered - after_restart
    # The restart was in the middle: deliveries went on, on every port, after it.
    assert all(after_restart[urlsplit(url).netloc] for url in urls), (after_restart, timeline)

    on_topic = _keys_on(settings, topic)
    twice_written = {key: n for key, n in on_topic.items() if n != 1}
    assert not twice_written, f"keys written more than once: {list(twice_written.items())[:10]}"
    assert set(on_topic) == set(keys)
    # Every second delivery found its key accepted (the first was answered 200 before it).
    not_duplicate = [k for k in keys if sender.answers[k, 2].get("duplicate") is not True]
    assert not not_duplicate, f"second deliveries not answered duplicate: {not_duplicate[:10]}"
    print(  # the figure the README quotes
        f"dedup e2e: {REQUESTS} keys x 2 over {len(urls)} port(s) in {elapsed:.1f} s, "
        f"retries {dict(sender.retries)}, answers per port {dict(sender.answered)}, {timeline}"
    )


@pytest.mark.timeout(900)
async def test_each_key_lands_once_across_two_workers_and_a_restart(
    settings: Settings, tmp_path: Path
) -> None:
    """`inlet gateway`'s 2 workers; one SIGTERMed halfway and replaced by the supervisor."""
    listening = listening_socket()
    settings = msgspec.structs.replace(
        settings, admin_token=TOKEN, gateway_port=listening.getsockname()[1]
    )
    with (
        serve(create_registry(settings)) as registry,
        gateway_instance(settings, listening, stderr=tmp_path / "gateway.log") as gateway,
    ):
        connector = await create_connector(
            registry, "dedup", dedup={"header": "webhook-id"}, partitions=3
        )

        def restart_one_worker() -> None:
            before = server_workers(gateway.pid)
            os.kill(before[0], signal.SIGTERM)
            deadline = time.monotonic() + 120
            while True:
                now = server_workers(gateway.pid)
                if len(now) == 2 and before[0] not in now:
                    return
                assert time.monotonic() < deadline, f"no worker replaced {before[0]}"
                time.sleep(0.1)

        await _send_twice(
            settings, connector["topic"], [connector["ingest_url"]], restart_one_worker
        )


@pytest.mark.timeout(900)
async def test_each_key_lands_once_across_two_instances_and_a_restart(
    settings: Settings, tmp_path: Path
) -> None:
    """Two `inlet gateway` instances (one worker each, their own data directories, as on two
    hosts behind a load balancer); one stopped and started again halfway."""
    first, second = listening_socket(), listening_socket()
    settings = msgspec.structs.replace(
        settings, admin_token=TOKEN, gateway_port=first.getsockname()[1]
    )

    def on_host(name: str) -> Settings:
        data = tmp_path / name
        data.mkdir()
        return msgspec.structs.replace(settings, data_dir=str(data))

    with (
        serve(create_registry(settings)) as registry,
        gateway_instance(
            on_host("a"), first, workers=1, stderr=tmp_path / "gateway-a.log"
        ) as gateway_a,
        gateway_instance(
            on_host("b"), second, workers=1, stderr=tmp_path / "gateway-b.log"
        ) as gateway_b,
    ):
        connector = await create_connector(
            registry, "dedup", dedup={"header": "webhook-id"}, partitions=3
        )
        path = urlsplit(connector["ingest_url"]).path
        urls = [gateway_a.url + path, gateway_b.url + path]
        await _send_twice(settings, connector["topic"], urls, gateway_b.restart)
