"""Where connectors' schemas live: the seam ``ConnectorService`` registers them through.

Two stores, chosen by the ``schema_registry_url`` setting:

* ``LocalSchemaStore`` (unset, the default): Inlet's own registry on ``_schemas``. Registration is
  planned inside the connector's ``StateLog.transact`` decision and written in the same
  transaction, so a connector and its schema version commit together or not at all.
* ``RemoteSchemaStore`` (``registry/remote_schemas.py``): another Confluent-compatible registry.
  Its writes cannot join a Kafka transaction, so they are ordered around it, the way topics are:
  the schema is registered *before* the transaction (a connector only ever points at a version
  that exists), and if the transaction fails the registration is undone, provided this call
  created that version; a subject is deleted *after* the connector's tombstone commits.

So a registration has three steps, each a no-op where a store does not need it: ``prepare``
(before the transaction), ``plan`` (inside its decision, on caught-up state) and ``undo`` (after
it failed for sure). Deleting a subject has two: ``plan_delete_subject`` (inside the decision) and
``finish_delete_subject`` (after the commit).
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple, Protocol

from inlet.errors import SubjectNotFound, SubjectSoftDeleted
from inlet.statelog.fold import Record
from registry.schemas import SchemaRegistry


class Registration(NamedTuple):
    """A schema to register under a subject and, once registered, where it landed."""

    subject: str
    schema_text: str
    schema_id: int = 0  # 0 until registered (the remote store registers in ``prepare``)
    version: int = 0
    created: bool = False  # ``prepare`` made this version, so ``undo`` may remove it


class SchemaStore(Protocol):
    async def prepare(self, subject: str, schema_text: str) -> Registration:
        """Before the transaction: whatever must happen outside it (IncompatibleSchema...)."""
        ...

    def plan(self, registration: Registration) -> tuple[list[Record], int, int]:
        """Inside the decision: the records to write with the connector's, the id and version."""
        ...

    async def undo(self, registration: Registration) -> None:
        """After the transaction failed for sure: remove what ``prepare`` made, if anything."""
        ...

    def plan_delete_subject(self, subject: str) -> list[Record]:
        """Inside the delete's decision: the records that (soft-)delete ``subject``, if any."""
        ...

    async def finish_delete_subject(self, subject: str) -> None:
        """After the delete committed: delete ``subject`` where the transaction could not."""
        ...

    async def close(self) -> None: ...


class LocalSchemaStore:
    """Inlet's own registry: everything happens in the connector's transaction."""

    def __init__(self, registry: SchemaRegistry) -> None:
        self._registry = registry

    async def prepare(self, subject: str, schema_text: str) -> Registration:
        return Registration(subject, schema_text)

    def plan(self, registration: Registration) -> tuple[list[Record], int, int]:
        return self._registry.plan_register(registration.subject, registration.schema_text)

    async def undo(self, registration: Registration) -> None:
        return None  # nothing was written outside the transaction

    def plan_delete_subject(self, subject: str) -> list[Record]:
        # Already deleted through the registry API: nothing more to do for the subject.
        with contextlib.suppress(SubjectNotFound, SubjectSoftDeleted):
            return self._registry.plan_delete_subject(subject)[0]
        return []

    async def finish_delete_subject(self, subject: str) -> None:
        return None

    async def close(self) -> None:
        return None
