"""Schemas kept in another Confluent-compatible registry (Confluent, Karapace, Apicurio, Redpanda).

With ``INLET_SCHEMA_REGISTRY_URL`` set (and ``INLET_SCHEMA_REGISTRY_BASIC_AUTH=user:password`` if
it wants credentials), connectors' schemas are registered there instead of in Inlet's own
``_schemas``: ``RemoteSchemaStore`` is the ``SchemaStore`` (``registry/schema_store.py``) that
``ConnectorService`` uses, on the HTTP client ``RemoteSchemaRegistry``
(``inlet/schema_registry_client.py``, which also maps the other registry's errors).

The order of a registration, outside the connector's Kafka transaction:

1. Lookup. A schema the subject already has is used as is and never undone (``created=False``).
2. Register. A 409 is followed by the verbose compatibility check, whose messages become the
   ``IncompatibleSchema`` reasons: the check runs only when needed and the verdict is the
   registering registry's own, under its compatibility level.
3. Lookup again, for the version (a register answer carries only the id).

If the connector's transaction then fails, ``undo`` deletes the version (soft, then permanently:
no data was written with it), but only a version step 2 created. A failure between the steps can
leave an unused version behind, never a connector without its schema.
"""

from __future__ import annotations

import contextlib
import logging

from inlet.errors import InletError, SchemaRegistryFailed, SubjectNotFound, SubjectSoftDeleted
from inlet.schema_registry_client import RemoteSchemaRegistry
from inlet.settings import Settings
from inlet.statelog.fold import Record
from registry.schema_store import Registration

log = logging.getLogger(__name__)


class RemoteSchemaStore:
    """``SchemaStore`` on ``RemoteSchemaRegistry``: register before the transaction, undo after."""

    def __init__(self, registry: RemoteSchemaRegistry) -> None:
        self.registry = registry

    @classmethod
    def from_settings(cls, settings: Settings) -> RemoteSchemaStore:
        return cls(RemoteSchemaRegistry.from_settings(settings))

    async def prepare(self, subject: str, schema_text: str) -> Registration:
        found = await self.registry.lookup(subject, schema_text)
        if found is not None:
            return Registration(subject, schema_text, found.id, found.version)
        await self.registry.register(subject, schema_text)
        found = await self.registry.lookup(subject, schema_text)
        if found is None:
            raise SchemaRegistryFailed(
                f"the schema registry at {self.registry.url} registered a schema under "
                f"{subject!r} but does not find it there"
            )
        return Registration(subject, schema_text, found.id, found.version, created=True)

    def plan(self, registration: Registration) -> tuple[list[Record], int, int]:
        if registration.schema_id == 0:
            raise RuntimeError("a remote schema is registered by prepare(), before plan()")
        return [], registration.schema_id, registration.version

    async def undo(self, registration: Registration) -> None:
        if not registration.created:
            return  # the version was there before: others may use it
        subject, version = registration.subject, registration.version
        try:
            await self.registry.delete_version(subject, version)
            await self.registry.delete_version(subject, version, permanent=True)
        except InletError:
            log.warning(
                "could not delete a schema version no connector uses",
                extra={"subject": subject, "version": version},
                exc_info=True,
            )

    def plan_delete_subject(self, subject: str) -> list[Record]:
        return []  # nothing on Inlet's log: the subject goes after the commit

    async def finish_delete_subject(self, subject: str) -> None:
        # Already deleted in the registry: nothing more to do for the subject.
        with contextlib.suppress(SubjectNotFound, SubjectSoftDeleted):
            await self.registry.delete_subject(subject)

    async def close(self) -> None:
        await self.registry.close()
