"""The registry app as production wires it (``registry/wiring.py``), on an in-memory log: no Kafka.

Unit tests build the services and the HTTP app through ``InMemoryRegistry`` instead of assembling
controllers, guards and error handlers themselves, so they drive what ``create_app`` serves.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Generic, TypeVar

from litestar import Litestar
from litestar.testing import TestClient

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

_CSRF_FIELD = re.compile(r'name="_csrf_token" value="([^"]+)"')


def csrf_field(page: str) -> str:
    """The CSRF token a console form carries (its ``_csrf_token`` field)."""
    found = _CSRF_FIELD.search(page)
    assert found, page
    return found.group(1)


@contextmanager
def signed_in_console(
    tmp_path: Path, headers: dict[str, str] | None = None
) -> Iterator[TestClient[Litestar]]:
    """A client of the in-memory registry app, signed in to the console with the admin token."""
    html = headers or {"Accept": "text/html"}
    registry = InMemoryRegistry(Settings(data_dir=str(tmp_path)), InMemoryStateLog)
    with TestClient(registry.app) as client:
        csrf = csrf_field(client.get("/console/sign-in", headers=html).text)
        signed_in = client.post(
            "/console/sign-in",
            data={"token": ADMIN_TOKEN, "_csrf_token": csrf},
            headers=html,
            follow_redirects=False,
        )
        assert signed_in.status_code == 303, signed_in.text
        yield client


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
