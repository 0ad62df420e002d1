"""Confluent wire-format Avro values, decoded with the schema their header names (parsed once).

A value's schema is the one its wire header names, so records written before a schema edit decode
with the schema they were written with. A value reads two ways:

* ``decode_typed``: what fastavro gives for Inlet's logical types (``Decimal``, ``date``, aware UTC
  ``datetime``, ``time``, ``UUID``, ``dict`` for objects, ``list`` for arrays). psycopg and pyarrow
  take them as they are, and ``msgspec.json`` encodes them; the sinks want these, and the record
  schema itself (``schema``) to make columns from.
* ``decode``: JSON values, what ``msgspec.to_builtins`` makes of the typed ones: decimals as
  strings, datetimes ISO 8601 in UTC (``Z``), dates and times ISO, uuids as strings, under the
  users' own field names (``inlet.name`` where the Avro name had to differ: ``order-id``, not
  ``order_id``); what samples and the pull feed show, so they read like what was sent.

``decode_typed_batch`` reads a whole batch: values grouped by schema id, each group read by one
call of the C reader (``_avro_reader.py``; fastavro where it is not built, or for a schema of
types it lacks), the same values ``decode_typed`` gives one by one.

The decoder looks schemas up without I/O: a reader brings the schemas its records name at hand
first (``inlet/schema_lookup.py``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import msgspec
from fastavro import parse_schema, schemaless_reader
from fastavro.schema import SchemaParseException

from inlet.codec._avro_reader import BODY_ERRORS, BatchReader
from inlet.records import HEADER_DEDUP_KEY, HEADER_RECEIVED_AT, HEADER_REQUEST_ID, wire_schema_id

Headers = list[tuple[str, bytes | None]]
# A record schema's Avro names -> (the user's name, the nested record's renames, if any).
Renames = dict[str, tuple[str, "Renames | None"]]
# What fastavro raises on a schema it cannot parse.
_SCHEMA_ERRORS = (SchemaParseException, ValueError, TypeError, KeyError)


class UnknownSchema(Exception):
    """The value names a schema id that is not at hand (not folded or fetched yet, or nowhere)."""

    def __init__(self, schema_id: int) -> None:
        super().__init__(f"schema id {schema_id} is unknown")
        self.schema_id = schema_id


class UndecodableRecord(Exception):
    """The value is not wire-format Avro that its schema can read."""


_PENDING = UndecodableRecord("not read")  # a batch's place holder, never returned


class WireDecoder:
    """Decodes values by their schema id; ``lookup`` gives an id's schema text (None: not at hand).

    One decoder is used by one thread at a time.
    """

    def __init__(self, lookup: Callable[[int], str | None], *, uuid_text: bool = False) -> None:
        """``uuid_text``: typed values hold UUIDs as their text where the C reader reads them
        (``BatchReader``), for a sink that stores text; elsewhere they are ``UUID``s."""
        self._lookup = lookup
        self._uuid_text = uuid_text
        self._parsed: dict[int, Any] = {}
        # Per record schema, its reader (other schemas, a hand-registered "string", have none).
        self._readers: dict[int, BatchReader | None] = {}
        self._json: dict[int, dict[str, Any]] = {}
        self._renames: dict[int, Renames | None] = {}

    def knows(self, schema_id: int) -> bool:
        return schema_id in self._parsed or self._lookup(schema_id) is not None

    def schema(self, schema_id: int) -> dict[str, Any]:
        """The schema of ``schema_id`` as JSON (a record schema); UnknownSchema if not at hand."""
        self._parse(schema_id)
        return self._json[schema_id]

    def decode_typed(self, value: bytes | None) -> tuple[int, dict[str, Any]]:
        """``(schema id, record)`` in Python types; UnknownSchema or UndecodableRecord."""
        schema_id, record = self._read(value)
        if not isinstance(record, dict):
            raise UndecodableRecord(f"schema {schema_id} is not a record schema")
        return schema_id, record

    def decode_typed_batch(
        self, values: list[bytes | None]
    ) -> list[tuple[int, dict[str, Any]] | UnknownSchema | UndecodableRecord]:
        """What ``decode_typed`` gives for each value, in order: ``(schema id, record)``, or the
        exception it would raise."""
        results, groups = _grouped(values)
        for schema_id, indexes in groups.items():
            try:
                reader = self._reader(schema_id)
            except (UnknownSchema, UndecodableRecord) as exc:
                for index in indexes:
                    results[index] = exc
                continue
            if reader is None:  # not a record schema: decode_typed says why, value by value
                for index in indexes:
                    try:
                        results[index] = self.decode_typed(values[index])
                    except UndecodableRecord as exc:
                        results[index] = exc
                continue
            group = values if len(indexes) == len(values) else [values[i] for i in indexes]
            rows, failures = reader.rows(group, 5)  # type: ignore[arg-type] # None: not grouped
            if group is values:
                results = [(schema_id, row) for row in rows]  # type: ignore[misc] # failures below
            else:
                for index, row in zip(indexes, rows, strict=True):
                    if row is not None:
                        results[index] = (schema_id, row)
            for at, error in failures:
                results[indexes[at]] = _unreadable(schema_id, error)
        return results

    def decode(self, value: bytes | None) -> tuple[int, Any]:
        """``(schema id, JSON value)``; UnknownSchema or UndecodableRecord when it cannot."""
        schema_id, decoded = self._read(value)
        renames = self._renames[schema_id]
        builtins = msgspec.to_builtins(decoded)
        return schema_id, builtins if renames is None else _renamed(builtins, renames)

    def _read(self, value: bytes | None) -> tuple[int, Any]:
        schema_id = _schema_id(value)
        assert value is not None  # _schema_id refused None
        reader = self._reader(schema_id)
        try:
            if reader is None:
                return schema_id, schemaless_reader(io.BytesIO(value[5:]), self._parsed[schema_id])
            return schema_id, reader.one(value, 5)
        except BODY_ERRORS as exc:
            raise _unreadable(schema_id, exc) from exc

    def _reader(self, schema_id: int) -> BatchReader | None:
        self._parse(schema_id)
        return self._readers[schema_id]

    def _parse(self, schema_id: int) -> Any:
        parsed = self._parsed.get(schema_id)
        if parsed is not None:
            return parsed
        text = self._lookup(schema_id)
        if text is None:
            raise UnknownSchema(schema_id)
        try:
            schema_json = json.loads(text)
            parsed = parse_schema(schema_json)
            record = isinstance(schema_json, dict) and schema_json.get("type") == "record"
            reader = BatchReader(schema_json, uuid_text=self._uuid_text) if record else None
        except _SCHEMA_ERRORS as exc:
            raise UndecodableRecord(f"schema {schema_id} is not a readable Avro schema") from exc
        # Ids are global and immutable: a parse is good for as long as the process lives.
        self._json[schema_id] = schema_json
        self._renames[schema_id] = users_names(schema_json)
        self._readers[schema_id] = reader
        self._parsed[schema_id] = parsed
        return parsed


_Decoded = tuple[int, dict[str, Any]] | UnknownSchema | UndecodableRecord


def _grouped(values: list[bytes | None]) -> tuple[list[_Decoded], dict[int, list[int]]]:
    """Each value's place in a batch's results (its error, or a place holder until it is read)
    and the indexes of the values of each schema id."""
    heads = {value[:5] for value in values if value is not None}
    if len(heads) == 1 and None not in values:
        # The usual batch: every value framed with one schema id, its header read once.
        try:
            schema_id = _schema_id(heads.pop())
        except UndecodableRecord:
            pass  # too short or no wire header: each value's error, below
        else:
            return [_PENDING] * len(values), {schema_id: list(range(len(values)))}
    results: list[_Decoded] = []
    groups: dict[int, list[int]] = {}
    for index, value in enumerate(values):
        try:
            schema_id = _schema_id(value)
        except UndecodableRecord as exc:
            results.append(exc)
            continue
        results.append(_PENDING)  # each one read below
        groups.setdefault(schema_id, []).append(index)
    return results, groups


def _schema_id(value: bytes | None) -> int:
    if value is None:
        raise UndecodableRecord("the record has no value")
    try:
        return wire_schema_id(value)
    except ValueError as exc:
        raise UndecodableRecord(str(exc)) from exc


def _unreadable(schema_id: int, error: Exception) -> UndecodableRecord:
    return UndecodableRecord(f"not readable with schema {schema_id}: {error!r}")


def users_names(schema: Any) -> Renames | None:
    """The renames of a record schema (or of the record of a ``["null", record]`` union); None
    when every field at every level carries the user's own name, the usual case."""
    if isinstance(schema, list):
        records = [branch for branch in schema if isinstance(branch, dict)]
        return users_names(records[0]) if len(records) == 1 else None
    if not isinstance(schema, dict) or schema.get("type") != "record":
        return None
    renames: Renames = {}
    for field in schema.get("fields", []):
        name = field["name"]
        renames[name] = (str(field.get("inlet.name", name)), users_names(field["type"]))
    if all(user == name and nested is None for name, (user, nested) in renames.items()):
        return None
    return renames


def _renamed(value: Any, renames: Renames) -> Any:
    if not isinstance(value, dict):  # null, for an absent optional object
        return value
    renamed = {}
    for key, item in value.items():
        name, nested = renames.get(key, (key, None))
        renamed[name] = item if nested is None else _renamed(item, nested)
    return renamed


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


def feed_header_values(headers: Headers) -> tuple[int | None, str | None, str | None]:
    """``header_values`` and ``dedup_key`` of ``headers``, in one pass (the feeds' per record)."""
    received_at: int | None = None
    request_id: str | None = None
    key: str | None = None
    for name, value in headers:
        if name == HEADER_RECEIVED_AT:
            if value:
                try:
                    received_at = int(value)
                except ValueError:
                    received_at = None
        elif name == HEADER_REQUEST_ID:
            if value:
                request_id = value.decode(errors="replace")
        elif name == HEADER_DEDUP_KEY and value is not None and key is None:
            key = value.decode(errors="replace")
    return received_at, request_id, key


def dedup_key(headers: Headers | None) -> str | None:
    """The idempotency key the gateway wrote a record under (``HEADER_DEDUP_KEY``), if any."""
    for name, value in headers or []:
        if name == HEADER_DEDUP_KEY and value is not None:
            return value.decode(errors="replace")
    return None
