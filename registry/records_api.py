"""The pull feed: ``GET /v1/connectors/{id}/records?cursor=&limit=``, a connector's records by page.

Each request reads with a short-lived consumer (librdkafka, in a worker thread) that ``assign``s
the connector topic's partitions at the cursor's offsets (no group: nothing is stored server-side),
and returns at most ``limit`` records, decoded with the schema their wire header names, each with
its partition and offset. ``next_cursor`` holds, per partition, the offset after the last record
returned (or after the transaction markers read past), so paging from no cursor until a page
comes back empty returns every record exactly once; the same cursor later returns what arrived
since. Cursors are opaque to clients: base64url JSON ``{"c": connector id, "p": {partition:
next offset}}``. A cursor behind the topic's retention starts at the oldest record still kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, NamedTuple

import msgspec
from confluent_kafka import Consumer, KafkaException, Message
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter

from inlet.codec.wire import (
    Headers,
    UndecodableRecord,
    UnknownSchema,
    WireDecoder,
    dedup_key,
    header_values,
)
from inlet.errors import KafkaUnavailable
from inlet.kafka import ConfigValue, client_config
from inlet.model.connectors import ConnectorState
from inlet.schema_lookup import SchemaLookup, SchemaRef
from inlet.settings import Settings
from inlet.statelog.fold import StateLog
from inlet.topic_reads import read_from
from registry.cursors import CursorCodec, invalid_cursor

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# How long a page waits for records known to be there (end offsets) to arrive: a short wait,
# never a long poll; a caught-up reader gets an empty page at once.
FETCH_WAIT_S = 2.0
# Assigned partitions only, so the group id is never joined (librdkafka wants one all the same).
_CONSUMER: dict[str, ConfigValue] = {
    "group.id": "inlet-registry-records",
    "enable.auto.commit": False,
    "enable.partition.eof": True,  # "caught up" without waiting out the wait
    "isolation.level": "read_committed",  # an aborted (atomic) request's records never show
}


class _Cursor(msgspec.Struct, frozen=True):
    c: str  # the connector: a cursor of one connector is refused by another
    p: dict[int, int]  # partition -> next offset


_CURSORS = CursorCodec(_Cursor)


def encode_cursor(connector_id: str, positions: dict[int, int]) -> str:
    return _CURSORS.encode(_Cursor(connector_id, dict(sorted(positions.items()))))


def decode_cursor(connector_id: str, cursor: str | None) -> dict[int, int]:
    """Per partition, the next offset to read; empty (from the start) when ``cursor`` is None."""
    if cursor is None:
        return {}
    decoded = _CURSORS.decode(cursor)
    if decoded.c != connector_id or any(o < 0 or p < 0 for p, o in decoded.p.items()):
        raise invalid_cursor("not a next_cursor this API returned for this connector")
    return decoded.p


class PulledRecord(msgspec.Struct, frozen=True, kw_only=True):
    partition: int
    offset: int
    key: str | None = None
    received_at: datetime | None = None
    request_id: str | None = None
    # The idempotency key the gateway wrote it under (a connector with ``dedup``): a request
    # key on several records as ``<key>#<n>``.
    dedup_key: str | None = None
    schema_id: int | None = None
    value: Any = None
    error: str | None = None  # set (and value null) when the record cannot be decoded


class TypedRecord(NamedTuple):
    """A record as a pipeline's sink takes it (``inlet.sink_layout.SinkInput``)."""

    partition: int
    offset: int
    received_at_ms: int | None
    schema_id: int
    value: dict[str, Any]
    dedup_key: str | None = None


class RecordPage(msgspec.Struct, frozen=True):
    records: list[PulledRecord]
    next_cursor: str


class RecordReader:
    """Reads pages of a connector's topic; one per registry instance (its decoder is shared)."""

    def __init__(
        self,
        settings: Settings,
        connectors: ConnectorState,
        schemas: SchemaLookup,
        log: StateLog,
    ) -> None:
        self._settings = settings
        self._connectors = connectors
        self._schemas = schemas
        self._log = log  # to confirm an unknown connector on caught-up state
        self._decoder = WireDecoder(schemas.schema_text)

    async def page(self, connector_id: str, cursor: str | None, limit: int) -> RecordPage:
        connector = await self._connectors.confirmed(connector_id, self._log)
        start = decode_cursor(connector_id, cursor)
        try:
            messages, positions = await asyncio.to_thread(self._read, connector.topic, start, limit)
        except KafkaException as exc:
            raise KafkaUnavailable(f"could not read {connector.topic}: {exc}") from exc
        records = [await self._record(m) for m in messages]
        return RecordPage(records, encode_cursor(connector_id, positions))

    def _read(
        self, topic: str, start: dict[int, int], limit: int, *, only: bool = False
    ) -> tuple[list[Message], dict[int, int]]:
        """Up to ``limit`` records from ``start`` on (``only``: of its partitions only), and
        where each partition now stands.

        Blocking (librdkafka): runs in a worker thread.
        """
        consumer = Consumer(
            client_config(self._settings, client_id="inlet-registry-records", **_CONSUMER)
        )
        try:
            messages, positions, _finished = read_from(
                consumer, topic, start, limit, FETCH_WAIT_S, only_started=only
            )
        finally:
            consumer.close()
        return messages, positions

    async def typed(self, topic: str, at: Iterable[tuple[int, int]]) -> list[TypedRecord]:
        """The records of ``topic`` at ``at`` (partition, offset), decoded as a pipeline's feed
        decodes them (``decode_typed``), in (partition, offset) order. A record no longer kept
        (retention) or that cannot be decoded is left out, as a feed sends it to dead letters."""
        wanted = set(at)
        firsts: dict[int, int] = {}
        for partition, offset in wanted:
            firsts[partition] = min(offset, firsts.get(partition, offset))
        if not wanted:
            return []
        # At most every offset from each partition's first to its last wanted one.
        lasts = {p: max(o for q, o in wanted if q == p) for p in firsts}
        limit = sum(lasts[p] - first + 1 for p, first in firsts.items())
        try:
            messages, _ = await asyncio.to_thread(self._read, topic, firsts, limit, only=True)
        except KafkaException as exc:
            raise KafkaUnavailable(f"could not read {topic}: {exc}") from exc
        found: list[TypedRecord] = []
        for message in messages:
            partition, offset = message.partition() or 0, message.offset() or 0
            if (partition, offset) not in wanted:
                continue
            try:
                schema_id, value = await self._decode_typed(message.value())
            except (UnknownSchema, UndecodableRecord):
                continue
            headers = _headers(message)
            received_at_ms, _ = header_values(headers)
            key = dedup_key(headers)
            found.append(TypedRecord(partition, offset, received_at_ms, schema_id, value, key))
        return found

    async def schema(self, schema_id: int) -> dict[str, Any]:
        """The schema of ``schema_id`` as JSON (a record schema), as a feed's decoder reads it."""
        try:
            return self._decoder.schema(schema_id)
        except UnknownSchema:
            await self._schemas.load([SchemaRef(schema_id)])
            return self._decoder.schema(schema_id)

    async def _record(self, message: Message) -> PulledRecord:
        headers = _headers(message)
        received_at_ms, request_id = header_values(headers)
        raw_key = message.key()
        key = None if raw_key is None else raw_key.decode("utf-8", "replace")
        base = PulledRecord(
            partition=message.partition() or 0,
            offset=message.offset() or 0,
            key=key,
            received_at=None
            if received_at_ms is None
            else datetime.fromtimestamp(received_at_ms / 1000, UTC),
            request_id=request_id,
            dedup_key=dedup_key(headers),
        )
        try:
            schema_id, value = await self._decode(message.value())
        except (UnknownSchema, UndecodableRecord) as exc:
            return msgspec.structs.replace(base, error=str(exc))
        return msgspec.structs.replace(base, schema_id=schema_id, value=value)

    async def _decode(self, value: bytes | None) -> tuple[int, Any]:
        try:
            return self._decoder.decode(value)
        except UnknownSchema as exc:
            # Registered before the record was written, the schema may not be at hand yet.
            await self._schemas.load([SchemaRef(exc.schema_id)])
            return self._decoder.decode(value)

    async def _decode_typed(self, value: bytes | None) -> tuple[int, dict[str, Any]]:
        try:
            return self._decoder.decode_typed(value)
        except UnknownSchema as exc:
            await self._schemas.load([SchemaRef(exc.schema_id)])
            return self._decoder.decode_typed(value)


def _headers(message: Message) -> Headers:
    found = message.headers() or []
    pairs = found.items() if isinstance(found, dict) else found
    return [(k, v.encode() if isinstance(v, str) else v) for k, v in pairs]


class RecordsController(Controller):
    path = "/v1/connectors"

    @get("/{connector_id:str}/records")
    async def records(
        self,
        record_reader: NamedDependency[RecordReader],
        connector_id: FromPath[str],
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        cursor: FromQuery[str | None] = None,
    ) -> RecordPage:
        return await record_reader.page(connector_id, cursor, limit)
