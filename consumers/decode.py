"""Confluent wire-format Avro values to JSON values, each schema parsed once per schema id.

A value's schema is the one its wire header names, so records written before a schema edit decode
with the schema they were written with. The JSON values are what ``msgspec.to_builtins`` makes of
fastavro's logical types: decimals as strings, datetimes ISO 8601 in UTC (``Z``), dates and times
ISO, uuids as strings.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import msgspec
from fastavro import parse_schema, schemaless_reader
from fastavro.schema import SchemaParseException

from inlet.records import wire_schema_id

# What fastavro raises on a body that does not match its schema (truncated, garbage, bad UTF-8).
_BODY_ERRORS = (EOFError, ValueError, IndexError, TypeError, KeyError, OverflowError)


class UnknownSchema(Exception):
    """The value names a schema id this process has not folded (yet)."""

    def __init__(self, schema_id: int) -> None:
        super().__init__(f"schema id {schema_id} is unknown")
        self.schema_id = schema_id


class UndecodableRecord(Exception):
    """The value is not wire-format Avro that its schema can read."""


class WireDecoder:
    """Decodes values by their schema id; ``schema_text`` looks an id's schema up (or None)."""

    def __init__(self, schema_text: Callable[[int], str | None]) -> None:
        self._schema_text = schema_text
        self._parsed: dict[int, Any] = {}

    def knows(self, schema_id: int) -> bool:
        return schema_id in self._parsed or self._schema_text(schema_id) is not None

    def decode(self, value: bytes) -> tuple[int, Any]:
        """``(schema id, JSON value)``; UnknownSchema or UndecodableRecord when it cannot."""
        try:
            schema_id = wire_schema_id(value)
        except ValueError as exc:
            raise UndecodableRecord(str(exc)) from exc
        parsed = self._schema(schema_id)
        try:
            decoded = schemaless_reader(io.BytesIO(value[5:]), parsed, None)
        except _BODY_ERRORS as exc:
            raise UndecodableRecord(f"not readable with schema {schema_id}: {exc!r}") from exc
        return schema_id, msgspec.to_builtins(decoded)

    def _schema(self, schema_id: int) -> Any:
        parsed = self._parsed.get(schema_id)
        if parsed is not None:
            return parsed
        text = self._schema_text(schema_id)
        if text is None:
            raise UnknownSchema(schema_id)
        try:
            parsed = parse_schema(json.loads(text))
        except (SchemaParseException, ValueError, TypeError, KeyError) as exc:
            raise UndecodableRecord(f"schema {schema_id} is not a readable Avro schema") from exc
        # Ids are global and immutable: a parse is good for as long as the process lives.
        self._parsed[schema_id] = parsed
        return parsed
