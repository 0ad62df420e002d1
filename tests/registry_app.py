"""The registry app as production wires it (``registry/wiring.py``), on an in-memory log: no Kafka.

Unit tests build the services and the HTTP app through ``InMemoryRegistry`` instead of assembling
controllers, guards and error handlers themselves, so they drive what ``create_app`` serves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Generic, TypeVar

from inlet.model.connectors import utc_now
from inlet.schema_lookup import schema_lookup
from inlet.settings import Settings
from inlet.statelog.fold import InMemoryStateLog, StateFold
from inlet.tokens import token_hash
from registry.records_api import RecordReader
from registry.remote_schemas import RemoteSchemaStore
from registry.replay import RejectedReplayer
from registry.topic_admin import TopicAdmin, TopicSpec
from registry.wiring import RegistryParts, RegistryState, Services, build_app

L = TypeVar("L", bound=InMemoryStateLog)

ADMIN_TOKEN = "inlet_admin_test-token"


class MemoryTopics:
    """``TopicAdmin`` in memory."""

    def __init__(self) -> None:
        self.topics: dict[str, TopicSpec] = {}

    async def create(self, topics: Sequence[TopicSpec]) -> None:
        self.topics.update((t.name, t) for t in topics)

    async def delete(self, names: Sequence[str]) -> None:
        for name in names:
            self.topics.pop(name, None)


class InMemoryRegistry(Generic[L]):
    """One registry instance: its state, an in-memory ``log`` on that state's fold, its services
    and its app, whose admin token is ``admin_token``.

    The pull feed's reader and the replayer are the real ones: they reach Kafka only when a request
    uses them, which no unit test makes.
    """

    def __init__(
        self,
        settings: Settings,
        log: Callable[[StateFold], L],
        *,
        topics: TopicAdmin | None = None,
        remote_schemas: RemoteSchemaStore | None = None,
        clock: Callable[[], datetime] = utc_now,
        admin_token: str = ADMIN_TOKEN,
    ) -> None:
        self.settings = settings
        self.state = RegistryState(settings)
        self.log = log(self.state.fold())
        self.topics = topics or MemoryTopics()
        lookup = schema_lookup(settings, self.state.schemas, self.log.sync)
        parts = RegistryParts(
            log=self.log,
            topics=self.topics,
            remote_schemas=remote_schemas,
            record_reader=RecordReader(settings, self.state.connectors, lookup, self.log),
            replayer=RejectedReplayer(settings, self.state.connectors, self.log),
        )
        self.services = Services(settings, self.state, parts, clock=clock)
        self.app = build_app(self.services, admin_token_hash=token_hash(admin_token))
