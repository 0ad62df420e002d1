"""Where readers of connector topics find the schema a record names: one choice per process.

A record names its schema by id (its wire header). Without ``schema_registry_url`` the schemas
are Inlet's own, in ``_schemas``, which the reader folds itself (``FoldedSchemas``); with it, they
are in the external registry, fetched over HTTP (``RegistrySchemas``). ``schema_lookup`` makes
the one the settings ask for, and ``schema_topics`` says whether ``_schemas`` is read at all.

Decoding never waits: ``schema_text`` and ``version_of_id`` answer from what is at hand, without
I/O. A reader first ``await``s ``load`` for what it is missing (a feed thread through its event
loop): the fold catches up, or the registry is asked. Ids and the versions that have them do not
change, so each is looked for once: what is still missing after a load is nowhere (its records
are undecodable), and is not looked for again. A load that fails (the log or the registry did
not answer) raises a retryable ``InletError`` and is tried again next time.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from typing import NamedTuple

from inlet.errors import SchemaNotFound
from inlet.model.schemas import SchemaState
from inlet.schema_registry_client import RemoteSchemaRegistry
from inlet.settings import Settings
from inlet.topics import SCHEMAS_TOPIC


class SchemaRef(NamedTuple):
    """A schema a reader needs, and the subject whose version of it it needs too (if any)."""

    schema_id: int
    subject: str | None = None


class SchemaLookup(ABC):
    def __init__(self) -> None:
        self._looked_for: set[SchemaRef] = set()

    @abstractmethod
    def schema_text(self, schema_id: int) -> str | None:
        """The schema with this id if it is at hand, else None."""

    @abstractmethod
    def version_of_id(self, subject: str, schema_id: int) -> int | None:
        """The version of ``subject`` with this schema (the latest if several), if at hand."""

    def at_hand(self, ref: SchemaRef) -> bool:
        if self.schema_text(ref.schema_id) is None:
            return False
        return ref.subject is None or self.version_of_id(ref.subject, ref.schema_id) is not None

    async def load(self, wanted: Iterable[SchemaRef]) -> None:
        """Bring what ``wanted`` names at hand, where it exists (see the module docstring)."""
        missing = {ref for ref in wanted if ref not in self._looked_for and not self.at_hand(ref)}
        if missing:
            await self._fetch(missing)
            self._looked_for |= missing

    @abstractmethod
    async def close(self) -> None:
        """Release what the lookup holds."""

    @abstractmethod
    async def _fetch(self, missing: set[SchemaRef]) -> None: ...


class FoldedSchemas(SchemaLookup):
    """Inlet's ``_schemas``, folded into ``state`` by a log reader that ``sync`` catches up."""

    def __init__(self, state: SchemaState, sync: Callable[[], Awaitable[None]]) -> None:
        super().__init__()
        self._state = state
        self._sync = sync

    def schema_text(self, schema_id: int) -> str | None:
        stored = self._state.schema_by_id(schema_id)
        return None if stored is None else stored.schema

    def version_of_id(self, subject: str, schema_id: int) -> int | None:
        return self._state.version_of_id(subject, schema_id)

    async def _fetch(self, missing: set[SchemaRef]) -> None:
        # The registry writes a schema before any record names it: a fold without it is behind.
        await self._sync()

    async def close(self) -> None:
        """Nothing to release: the fold and its reader belong to the caller."""


class RegistrySchemas(SchemaLookup):
    """The external registry's schemas (``registry/remote_schemas.py``), kept once fetched."""

    def __init__(self, registry: RemoteSchemaRegistry) -> None:
        super().__init__()
        self._registry = registry
        self._versions: dict[int, list[tuple[str, int]]] = {}  # schema id -> (subject, version)

    def schema_text(self, schema_id: int) -> str | None:
        return self._registry.cached_schema_text(schema_id)

    def version_of_id(self, subject: str, schema_id: int) -> int | None:
        numbers = [n for s, n in self._versions.get(schema_id, ()) if s == subject]
        return max(numbers, default=None)

    async def _fetch(self, missing: set[SchemaRef]) -> None:
        for schema_id, subject in missing:
            with contextlib.suppress(SchemaNotFound):  # nowhere: its records are undecodable
                if self.schema_text(schema_id) is None:
                    await self._registry.schema_text(schema_id)
                # Fetched again when a subject is missing: a new one may have taken the schema.
                if subject is not None and self.version_of_id(subject, schema_id) is None:
                    self._versions[schema_id] = await self._registry.versions_of_id(schema_id)

    async def close(self) -> None:
        await self._registry.close()


def schema_lookup(
    settings: Settings, state: SchemaState, sync: Callable[[], Awaitable[None]]
) -> SchemaLookup:
    """The external registry's schemas when ``schema_registry_url`` is set, else ``state``'s:
    the fold of ``_schemas`` (``schema_topics``) that ``sync`` catches up."""
    if settings.schema_registry_url is None:
        return FoldedSchemas(state, sync)
    return RegistrySchemas(RemoteSchemaRegistry.from_settings(settings))


def schema_topics(settings: Settings) -> list[str]:
    """The state topics that hold schemas: ``_schemas``, unless an external registry has them."""
    return [] if settings.schema_registry_url else [SCHEMAS_TOPIC]
