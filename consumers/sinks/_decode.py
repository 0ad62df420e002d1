"""Connector records off Kafka, decoded: wire format -> Python values, schemas parsed once per id.

Values are what fastavro gives for Inlet's logical types (``Decimal``, ``date``, aware UTC
``datetime``, ``time``, ``UUID``, ``dict`` for objects, ``list`` for arrays): psycopg and pyarrow
take them as they are, and ``msgspec.json`` encodes them (decimals as strings, times as RFC 3339).

``consumers.decode.WireDecoder`` gives JSON values (what the pull feed and samples show); sinks need
the typed values instead, and the record schema itself, to make columns from. The two share their
errors.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any, NamedTuple

import fastavro
from fastavro.schema import SchemaParseException

from consumers.decode import UndecodableRecord, UnknownSchema
from inlet.records import HEADER_RECEIVED_AT, HEADER_REQUEST_ID, wire_schema_id

__all__ = ["FeedRecord", "Headers", "UndecodableRecord", "UnknownSchema", "WireDecoder"]

Headers = list[tuple[str, bytes | None]]
# What fastavro raises on a body its schema cannot read (truncated, garbage, bad UTF-8), and on a
# schema it cannot parse.
_BODY_ERRORS = (EOFError, ValueError, IndexError, TypeError, KeyError, OverflowError)
_SCHEMA_ERRORS = (SchemaParseException, ValueError, TypeError, KeyError)


class FeedRecord(NamedTuple):
    """One record of a connector topic, decoded, with where it came from."""

    partition: int
    offset: int
    key: bytes | None
    headers: Headers
    raw: bytes | None  # the value as on Kafka, kept for the dead-letter topic
    received_at_ms: int | None
    request_id: str | None
    schema_id: int
    value: dict[str, Any]


class WireDecoder:
    """Decodes wire-format values to typed values; ``lookup`` gives a schema's text by id."""

    def __init__(self, lookup: Callable[[int], str | None]) -> None:
        self._lookup = lookup
        self._parsed: dict[int, Any] = {}
        self._json: dict[int, dict[str, Any]] = {}

    def schema(self, schema_id: int) -> dict[str, Any]:
        """The schema of ``schema_id`` as JSON (a record schema); UnknownSchema if none."""
        if schema_id not in self._json:
            text = self._lookup(schema_id)
            if text is None:
                raise UnknownSchema(schema_id)
            try:
                parsed_json = json.loads(text)
                self._parsed[schema_id] = fastavro.parse_schema(parsed_json)
            except _SCHEMA_ERRORS as exc:
                raise UndecodableRecord(f"schema {schema_id} is not a readable schema") from exc
            # Ids are global and immutable: a parse is good for as long as the process lives.
            self._json[schema_id] = parsed_json
        return self._json[schema_id]

    def decode(self, value: bytes | None) -> tuple[int, dict[str, Any]]:
        """The schema id and the record of a wire-format value."""
        if value is None:
            raise UndecodableRecord("the record has no value")
        try:
            schema_id = wire_schema_id(value)
        except ValueError as exc:
            raise UndecodableRecord(str(exc)) from exc
        self.schema(schema_id)
        try:
            body = io.BytesIO(value[5:])
            record = fastavro.schemaless_reader(body, self._parsed[schema_id], None)
        except _BODY_ERRORS as exc:
            raise UndecodableRecord(f"not a record of schema {schema_id}: {exc}") from exc
        if not isinstance(record, dict):
            raise UndecodableRecord(f"schema {schema_id} is not a record schema")
        return schema_id, record


def header_values(headers: Headers | None) -> tuple[int | None, str | None]:
    """The received-at time (ms) and request id Inlet's gateway put on a record, if any."""
    received_at: int | None = None
    request_id: str | None = None
    for name, value in headers or []:
        if name == HEADER_RECEIVED_AT and value:
            try:
                received_at = int(value)
            except ValueError:
                received_at = None
        elif name == HEADER_REQUEST_ID and value:
            request_id = value.decode(errors="replace")
    return received_at, request_id
