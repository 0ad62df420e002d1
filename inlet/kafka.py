"""Kafka clients: the one function that builds client settings, and an asyncio-friendly producer.

Every Kafka client in Inlet gets its settings from ``client_config`` so that security, timeouts and
identity are decided in one place. Delivery reports are handed to asyncio futures from librdkafka's
poll thread: nothing blocks the event loop, and nothing calls ``flush()`` on it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient

from inlet.settings import Settings

log = logging.getLogger("inlet.kafka")

ConfigValue = str | int | float | bool
# librdkafka's own log lines go through Python logging, so they come out as structured lines too.
_rdkafka_log = logging.getLogger("inlet.rdkafka")


class KafkaNotConfigured(RuntimeError):
    pass


def client_config(
    settings: Settings, *, client_id: str, **overrides: ConfigValue
) -> dict[str, Any]:
    """librdkafka settings for any Inlet client (producer, consumer, admin)."""
    if not settings.kafka_bootstrap_servers:
        raise KafkaNotConfigured("KAFKA_BOOTSTRAP_SERVERS is not set and no local broker runs")
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "client.id": client_id,
        # Loopback clusters answer fast; fail a dead connection quickly instead of hanging.
        "socket.connection.setup.timeout.ms": 5000,
        "reconnect.backoff.max.ms": 1000,
        "logger": _rdkafka_log,
    }
    config.update(overrides)
    return config


def aiokafka_config(settings: Settings, *, client_id: str) -> dict[str, Any]:
    """The same settings, spelled for aiokafka (which the registry's log readers use)."""
    base = client_config(settings, client_id=client_id)
    return {"bootstrap_servers": base["bootstrap.servers"], "client_id": base["client.id"]}


def producer_config(
    settings: Settings, *, client_id: str, **overrides: ConfigValue
) -> dict[str, Any]:
    """A durable producer: idempotent, acks from every in-sync replica."""
    return client_config(
        settings,
        client_id=client_id,
        **{
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": "lz4",
            "linger.ms": 5,
            "delivery.timeout.ms": int(settings.produce_timeout_s * 1000),
            **overrides,
        },
    )


class ProduceFailed(Exception):
    """Kafka did not take a record; ``retryable`` when it may succeed later."""

    def __init__(self, error: KafkaError) -> None:
        super().__init__(error.str())
        self.error = error
        self.retryable = error.retriable() or error.code() in (
            KafkaError._MSG_TIMED_OUT,
            KafkaError._TRANSPORT,
            KafkaError._ALL_BROKERS_DOWN,
        )


class AsyncProducer:
    """One confluent-kafka producer per process, with a poll thread resolving asyncio futures."""

    def __init__(self, config: Mapping[str, ConfigValue]) -> None:
        self._producer = Producer(dict(config))
        self._closing = threading.Event()
        self._poller = threading.Thread(target=self._poll_loop, name="kafka-poll", daemon=True)
        self._poller.start()

    def _poll_loop(self) -> None:
        while not self._closing.is_set():
            self._producer.poll(0.1)

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: list[tuple[str, str | bytes | None]] | None = None,
        partition: int = -1,
    ) -> asyncio.Future[Message]:
        """Enqueue a record; the returned future resolves once Kafka acknowledged it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Message] = loop.create_future()

        def _on_delivery(err: KafkaError | None, msg: Message) -> None:
            loop.call_soon_threadsafe(_settle, future, err, msg)

        while True:
            try:
                self._producer.produce(
                    topic,
                    value,
                    key,
                    partition=partition,
                    headers=headers,
                    on_delivery=_on_delivery,
                )
            except BufferError:
                # The local queue is full: let the poll thread drain it, then try again.
                self._producer.poll(0.05)
                continue
            except KafkaException as exc:
                raise ProduceFailed(exc.args[0]) from exc
            return future

    def close(self, timeout: float = 5.0) -> None:
        """Flush what is queued (call off the event loop) and stop the poll thread."""
        self._producer.flush(timeout)
        self._closing.set()
        self._poller.join(timeout=1.0)


def _settle(future: asyncio.Future[Message], err: KafkaError | None, msg: Message) -> None:
    if future.done():
        return
    if err is not None:
        future.set_exception(ProduceFailed(err))
    else:
        future.set_result(msg)


class KafkaHealth:
    """Whether Kafka answers a metadata request, refreshed in the background for /health."""

    def __init__(self, settings: Settings, *, interval_s: float = 2.0) -> None:
        self._admin = AdminClient(client_config(settings, client_id="inlet-health"))
        self._interval_s = interval_s
        self.ok = False
        self._task: asyncio.Task[None] | None = None

    def check_now(self, timeout_s: float = 2.0) -> bool:
        try:
            self._admin.list_topics(timeout=timeout_s)
        except KafkaException:
            self.ok = False
        else:
            self.ok = True
        return self.ok

    async def _run(self) -> None:
        while True:
            was_ok = self.ok
            await asyncio.to_thread(self.check_now)
            if was_ok != self.ok:
                log.warning("kafka reachability changed", extra={"kafka_ok": self.ok})
            await asyncio.sleep(self._interval_s)

    async def start_checked(self) -> None:
        """Check once now (so /health is right from the first request), then keep checking."""
        await asyncio.to_thread(self.check_now)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
