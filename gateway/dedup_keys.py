"""Idempotency keys: where a request's come from, how they are hashed, how a landing is packed.

Pure. ``request_key`` and ``record_keys`` read a connector's ``dedup`` setting
(``inlet/model/dedup.py``) against a request: a header (request-level), a JSON Pointer into each
record (record-level), or the envelope's ids (Firehose's request id and Pub/Sub's message id per
request, a CloudEvent's ``source`` + ``id`` per event).

* **Digest**: BLAKE2b-128 of ``connector id NUL kind NUL key`` (kind ``r``: a request's key,
  ``k``: a record's); the index and the dedup topic hold only digests, never a sender's text.
  A request key's record *i* has the digest BLAKE2b-128 of ``request digest + i`` (4 bytes).
* **Value** (``DedupIndex``'s 64-bit integer): for a record, where it landed, ``partition << 48 |
  offset``; for a request key, how many records the request wrote (each record's landing is
  under its own digest: one index entry per record, so a duplicate's answer gives each one back
  however the partitioner spread them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Final

import msgspec

from gateway.envelopes import FIREHOSE_REQUEST_ID
from inlet.codec.bodies import CsvRecords, RecordBatch
from inlet.kafka import Headers
from inlet.model.dedup import Dedup, pointer_tokens

DIGEST_BYTES: Final = 16
_OFFSET_BITS: Final = 48
_OFFSET_MASK: Final = (1 << _OFFSET_BITS) - 1
# A record key accepted without a known landing (the answer then names no partition and offset).
UNKNOWN_LANDING: Final = (1 << 64) - 1
_decoder: Final = msgspec.json.Decoder()


def digest(connector_id: str, kind: bytes, key: str) -> bytes:
    text = key.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(
        connector_id.encode() + b"\0" + kind + b"\0" + text, digest_size=DIGEST_BYTES
    ).digest()


def request_digest(connector_id: str, key: str) -> bytes:
    return digest(connector_id, b"r", key)


def record_digest(connector_id: str, key: str) -> bytes:
    return digest(connector_id, b"k", key)


def nth_record_digest(request: bytes, index: int) -> bytes:
    """The digest under which a request key's record ``index`` keeps its landing."""
    return hashlib.blake2b(request + index.to_bytes(4, "big"), digest_size=DIGEST_BYTES).digest()


def pack_landing(partition: int, offset: int) -> int:
    return (partition << _OFFSET_BITS) | (offset & _OFFSET_MASK)


def unpack_landing(value: int) -> tuple[int, int] | None:
    if value == UNKNOWN_LANDING:
        return None
    return value >> _OFFSET_BITS, value & _OFFSET_MASK


def request_key(
    dedup: Dedup,
    envelope: str | None,
    headers: Mapping[str, str],
    record_headers: Sequence[Headers] | None,
) -> str | None:
    """The request's key, or None (none configured, or the request does not carry it: then it is
    processed as any other, not deduplicated)."""
    if dedup.header is not None:
        return headers.get(dedup.header) or None
    if dedup.envelope and envelope == "firehose":
        return headers.get(FIREHOSE_REQUEST_ID) or None
    if dedup.envelope and envelope == "pubsub-push" and record_headers:
        return _header(record_headers[0], "pubsub_message_id")
    return None


def record_keys(
    dedup: Dedup, envelope: str | None, batch: RecordBatch, record_headers: Sequence[Headers] | None
) -> list[str | None] | None:
    """Each record's key (None where a record has none), or None when the setting has no
    record-level key."""
    if dedup.pointer is not None:
        tokens = pointer_tokens(dedup.pointer)
        if isinstance(batch, CsvRecords):
            column = tokens[0] if len(tokens) == 1 else None
            return [None if column is None else row.get(column) or None for row in batch.rows]
        return [_pointed(raw, tokens) for raw in batch.records]
    if dedup.envelope and envelope == "cloudevents" and record_headers is not None:
        keys: list[str | None] = []
        for headers in record_headers:
            source, event_id = _header(headers, "ce_source"), _header(headers, "ce_id")
            keys.append(None if source is None or event_id is None else f"{source}\n{event_id}")
        return keys
    return None


def _header(headers: Headers, name: str) -> str | None:
    for key, value in headers:
        if key == name and isinstance(value, str) and value:
            return value
    return None


def _pointed(raw: msgspec.Raw, tokens: tuple[str, ...]) -> str | None:
    """The string or integer at ``tokens`` in the record (RFC 6901), as text; else None."""
    try:
        value: object = _decoder.decode(raw)
    except msgspec.DecodeError:
        return None
    for step in tokens:
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and step.isdigit() and (step == "0" or step[0] != "0"):
            index = int(step)
            value = value[index] if index < len(value) else None
        else:
            return None
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, int):
        return str(value)
    return None
