"""Samples: what the sample worker saw per connector, and the fold of the ``_inlet_samples`` topic.

Each record's key is the connector id, its value the connector's whole ``ConnectorSamples`` as JSON
(a tombstone forgets it). The sample worker (``consumers/sample_worker.py``) is the only writer
and writes in transactions, so readers fold committed records only. Because a value holds the
counts together with the positions they were counted up to, the latest value per key is a
consistent snapshot: the worker restarts from it without counting anything twice (see
``consumers/README.md``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import msgspec

from inlet.records import RecordError
from inlet.statelog.fold import text_key
from inlet.topics import SAMPLES_TOPIC

log = logging.getLogger(__name__)

# A connector can be saved once this many valid records have arrived.
REQUIRED_SAMPLES = 50
# How many of the latest rejected records are kept, with their reasons.
RECENT_REJECTED = 100


class SampleRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One valid record, decoded with the schema it was written with (its wire header's id)."""

    partition: int
    offset: int
    schema_id: int
    schema_version: int | None  # its version under the connector's subject; None if not there
    received_at: datetime
    request_id: str | None = None
    key: str | None = None
    value: Any = None  # JSON values: decimals as strings, datetimes ISO 8601 UTC, uuids as strings
    truncated: bool = False  # the value was too large to keep; only its place is shown


class RejectedSample(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One rejected record as the gateway wrote it, and where it is on the rejected topic."""

    partition: int
    offset: int
    received_at: datetime
    request_id: str
    schema_id: int
    schema_version: int
    content_type: str
    record: Any = None
    errors: list[RecordError] = []
    truncated: bool = False
    replay_of: str | None = None  # kept again by a replay: where it was before


class ConnectorSamples(msgspec.Struct, kw_only=True):
    """A connector's sample state: the first valid records, counts, and where they were read to."""

    connector_id: str
    accepted: int = 0
    rejected: int = 0
    records: list[SampleRecord] = []  # the first REQUIRED_SAMPLES valid records, as consumed
    recent_rejected: list[RejectedSample] = []  # oldest first
    # Next offset to read, per partition of the connector's topic and of its rejected topic.
    positions: dict[int, int] = {}
    rejected_positions: dict[int, int] = {}


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(ConnectorSamples)


def encode_samples(samples: ConnectorSamples) -> bytes:
    return _encoder.encode(samples)


def decode_samples(value: bytes) -> ConnectorSamples:
    return _decoder.decode(value)


class SampleState:
    """The latest sample state per connector id.

    Values are kept as bytes and decoded when asked for: the worker rewrites a busy connector's
    state several times a second, and most of those versions are never read.
    """

    def __init__(self) -> None:
        self._raw: dict[str, bytes] = {}
        self._decoded: dict[str, ConnectorSamples] = {}

    def apply(self, topic: str, key: bytes, value: bytes | None) -> None:
        if topic != SAMPLES_TOPIC:
            return
        connector_id = text_key(topic, key)
        self._decoded.pop(connector_id, None)
        if value is None:
            self._raw.pop(connector_id, None)
        else:
            self._raw[connector_id] = value

    def get(self, connector_id: str) -> ConnectorSamples | None:
        found = self._decoded.get(connector_id)
        if found is not None:
            return found
        raw = self._raw.get(connector_id)
        if raw is None:
            return None
        try:
            found = decode_samples(raw)
        except msgspec.DecodeError:
            # A value this version cannot read must not break the connector's API; it reads as
            # "nothing seen yet" until the worker writes the next one.
            log.warning("skipping unreadable sample state", extra={"connector_id": connector_id})
            return None
        self._decoded[connector_id] = found
        return found

    def connector_ids(self) -> list[str]:
        return sorted(self._raw)

    def sample_count(self, connector_id: str) -> int:
        found = self.get(connector_id)
        return 0 if found is None else len(found.records)
