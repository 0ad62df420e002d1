"""Connectors: the definition users make, and the fold of the ``_inlet_connectors`` topic.

Each record's key is the connector id, its value the whole definition as JSON; a tombstone deletes.
Every registry and gateway instance folds the same log into the same ``ConnectorState``; the
gateway looks ingest tokens up here (by hash: the token itself is never stored).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Literal

import msgspec

from inlet.errors import ConnectorNotFound, Problem
from inlet.model.dedup import Dedup
from inlet.model.fields import FieldSpec
from inlet.model.verify import Verify
from inlet.statelog.fold import CorruptRecord, StateLog, StateReader, confirm_absent, text_key
from inlet.topics import CONNECTORS_TOPIC

Status = Literal["awaiting_samples", "saved"]
TopicPolicy = Literal["delete", "keep"]
# The wrapping a cloud sender puts around records (``gateway/envelopes.py`` unwraps it).
Envelope = Literal["firehose", "pubsub-push", "cloudevents"]


def new_connector_id() -> str:
    """URL-safe and a valid Avro/Kafka name part: ``con_`` and 16 hex digits (64 random bits)."""
    return "con_" + secrets.token_hex(8)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Connector(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A connector as stored on the log (the API's view drops ``token_hash`` and friends)."""

    id: str
    name: str
    description: str = ""
    fields: list[FieldSpec]
    key_field: str | None = None
    status: Status = "awaiting_samples"
    topic: str
    rejected_topic: str
    subject: str
    # The Avro record name, fixed at creation so a rename does not change the schema.
    record_name: str
    schema_id: int
    schema_version: int
    token_hash: str
    # After a rotation with a grace period, the old token keeps working until this moment.
    previous_token_hash: str | None = None
    previous_token_expires_at: datetime | None = None
    # Ingest behaviour.
    reject_unknown_fields: bool = False
    atomic: bool = False
    rate_limit_per_s: float | None = None
    partitions: int = 3
    replication_factor: int = -1
    on_delete: TopicPolicy = "delete"
    # Signature verification (``inlet/model/verify.py``); None: the ingest URL alone admits.
    # Records written before it existed have none.
    verify: Verify | None = None
    # The envelope the connector's senders wrap records in; None: the body holds the records.
    # Records written before it existed have none.
    envelope: Envelope | None = None
    # Idempotency keys (``inlet/model/dedup.py``); None: a retry is written again.
    # Records written before it existed have none.
    dedup: Dedup | None = None
    created_at: datetime
    updated_at: datetime


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Connector)


def connector_record_value(connector: Connector) -> bytes:
    return _encoder.encode(connector)


class ConnectorState:
    """The current connectors, by id, by name (case-insensitive) and by token hash."""

    def __init__(self) -> None:
        self.by_id: dict[str, Connector] = {}
        self._by_name: dict[str, str] = {}
        self._by_token_hash: dict[str, str] = {}

    def apply(self, topic: str, key: bytes, value: bytes | None) -> None:
        if topic != CONNECTORS_TOPIC:
            return
        connector_id = text_key(topic, key)
        old = self.by_id.pop(connector_id, None)
        if old is not None:
            self._by_name.pop(old.name.casefold(), None)
            self._by_token_hash.pop(old.token_hash, None)
            if old.previous_token_hash:
                self._by_token_hash.pop(old.previous_token_hash, None)
        if value is None:
            return
        try:
            connector = _decoder.decode(value)
        except msgspec.DecodeError as exc:
            # The connector is gone as far as this fold knows (on every instance alike): a token
            # it had stops working, rather than opening a definition nobody can read.
            raise CorruptRecord(f"connector {connector_id!r}: {exc}") from exc
        self.by_id[connector_id] = connector
        self._by_name[connector.name.casefold()] = connector_id
        self._by_token_hash[connector.token_hash] = connector_id
        if connector.previous_token_hash:
            self._by_token_hash[connector.previous_token_hash] = connector_id

    def get(self, connector_id: str) -> Connector | None:
        return self.by_id.get(connector_id)

    async def confirmed(self, connector_id: str, log: StateLog | StateReader) -> Connector:
        """The connector; when this fold does not have it, only once ``log`` confirmed that on
        caught-up state (``ConnectorNotFound``), else ``StateUnavailable``: never a 404 from a
        fold that is behind."""
        if connector_id not in self.by_id:
            await confirm_absent(log)
        return self.require(connector_id)

    def require(self, connector_id: str) -> Connector:
        """The connector, or ``ConnectorNotFound``: the one answer every API gives for it."""
        connector = self.by_id.get(connector_id)
        if connector is None:
            raise ConnectorNotFound(
                f"connector {connector_id!r} not found",
                problems=[Problem(field="id", reason="no connector has this id")],
            )
        return connector

    def by_name(self, name: str) -> Connector | None:
        connector_id = self._by_name.get(name.casefold())
        return None if connector_id is None else self.by_id.get(connector_id)

    def by_token_hash(self, token_hash: str, now: datetime | None = None) -> Connector | None:
        """The connector this token opens, honouring a rotated token's grace period."""
        connector_id = self._by_token_hash.get(token_hash)
        connector = None if connector_id is None else self.by_id.get(connector_id)
        if connector is None or connector.token_hash == token_hash:
            return connector
        expires = connector.previous_token_expires_at
        if expires is not None and (now or utc_now()) < expires:
            return connector
        return None

    def all(self) -> list[Connector]:
        """Connectors in creation order (then id, so the order is total)."""
        return sorted(self.by_id.values(), key=lambda c: (c.created_at, c.id))
