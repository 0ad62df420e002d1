"""Kafka topics for connectors: a small protocol, and its implementation on confluent-kafka.

The connector service creates and deletes topics only through ``TopicAdmin``, so unit tests use an
in-memory fake and only this module talks to Kafka's admin API. Its errors are wrapped here: a
request Kafka refuses (too many replicas, bad partition count) is the caller's ``InvalidConnector``;
anything else is ``KafkaUnavailable``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from inlet.errors import InletError, InvalidConnector, KafkaUnavailable, Problem
from inlet.kafka import client_config
from inlet.record_size import topic_config
from inlet.settings import Settings


class TopicSpec(NamedTuple):
    name: str
    partitions: int
    replication_factor: int  # -1: the broker's default


class TopicAdmin(Protocol):
    async def create(self, topics: Sequence[TopicSpec]) -> None:
        """Create every topic, or none: on failure those made are deleted again, then it raises."""
        ...

    async def delete(self, names: Sequence[str]) -> None:
        """Delete the topics; a topic that is already gone is not an error."""
        ...


class KafkaTopicAdmin:
    """``TopicAdmin`` on confluent-kafka's AdminClient; its blocking calls run in a thread."""

    def __init__(self, settings: Settings, *, timeout_s: float = 30.0) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._admin: AdminClient | None = None

    def _client(self) -> AdminClient:
        # Made on first use: building the service must not need a reachable (or configured) Kafka.
        if self._admin is None:
            config = client_config(self._settings, client_id="inlet-registry-topics")
            self._admin = AdminClient(config)
        return self._admin

    async def create(self, topics: Sequence[TopicSpec]) -> None:
        await asyncio.to_thread(self._create, list(topics))

    async def delete(self, names: Sequence[str]) -> None:
        await asyncio.to_thread(self._delete, list(names))

    def _create(self, topics: list[TopicSpec]) -> None:
        # Every topic made here holds connector records: it takes what the gateway's producer may
        # send, no less (inlet/record_size.py).
        config = topic_config(self._settings.max_message_bytes)
        futures = self._client().create_topics(
            [NewTopic(t.name, t.partitions, t.replication_factor, config=config) for t in topics],
            operation_timeout=self._timeout_s,
            request_timeout=self._timeout_s,
        )
        created: list[str] = []
        failures: list[tuple[str, KafkaError | None]] = []
        for name, future in futures.items():
            try:
                future.result(self._timeout_s)
            except KafkaException as exc:
                failures.append((name, exc.args[0]))
            except TimeoutError:
                failures.append((name, None))
            else:
                created.append(name)
        if failures:
            if created:
                self._delete(created)
            raise _topic_error(failures)

    def _delete(self, names: list[str]) -> None:
        futures = self._client().delete_topics(
            names, operation_timeout=self._timeout_s, request_timeout=self._timeout_s
        )
        for name, future in futures.items():
            try:
                future.result(self._timeout_s)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise KafkaUnavailable(f"could not delete topic {name}: {exc}") from exc
            except TimeoutError as exc:
                raise KafkaUnavailable(f"deleting topic {name} timed out") from exc


def _topic_error(failures: list[tuple[str, KafkaError | None]]) -> InletError:
    """A caller's mistake (partitions, replication) as a problem; anything else is Kafka's."""
    for _, error in failures:
        if error is None:
            continue
        if error.code() == KafkaError.INVALID_REPLICATION_FACTOR:
            problem = Problem(field="replication_factor", reason=error.str())
        elif error.code() == KafkaError.INVALID_PARTITIONS:
            problem = Problem(field="partitions", reason=error.str())
        else:
            continue
        return InvalidConnector("Kafka refused the connector's topics", problems=[problem])
    details = "; ".join(f"{n}: {'timed out' if e is None else e.str()}" for n, e in failures)
    return KafkaUnavailable(f"could not create topics: {details}")
