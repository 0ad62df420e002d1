"""What Inlet writes to a connector's topics, as every reader (consumers, tests, users) sees it.

The connector topic holds valid records: Avro in the Confluent wire format (magic byte 0, 4-byte
big-endian schema id, Avro binary body), key = the ``key_field`` value (UTF-8) or none, and the
headers below. The rejected topic holds one ``RejectedRecord`` (JSON) per invalid record.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec

HEADER_REQUEST_ID = "inlet-request-id"
HEADER_RECEIVED_AT = "inlet-received-at"  # milliseconds since the epoch, ASCII digits
# On a record of a connector with ``dedup``: the idempotency key it was written under, as the
# sender sent it (a request-level key on every record of the request; else the record's own).
HEADER_DEDUP_KEY = "inlet-dedup-key"
# On a record a replay wrote: the rejected record it came from, "<partition>:<offset>".
HEADER_REPLAY_OF = "inlet-replay-of"

WIRE_MAGIC = 0


def wire_frame(schema_id: int, avro_body: bytes) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + avro_body


def wire_schema_id(value: bytes) -> int:
    """The schema id of a wire-format value; ValueError when it is not one."""
    if len(value) < 5 or value[0] != WIRE_MAGIC:
        raise ValueError("not a Confluent wire-format value")
    return int.from_bytes(value[1:5], "big")


class RecordErrorCode(StrEnum):
    """What is wrong with one value of one record; stable, part of the API."""

    MISSING_FIELD = "missing_field"
    NULL_NOT_ALLOWED = "null_not_allowed"
    WRONG_TYPE = "wrong_type"
    INVALID_VALUE = "invalid_value"  # bad format, out of range, too many places, not a symbol
    UNKNOWN_FIELD = "unknown_field"
    # Valid, but larger encoded than a Kafka record may be (INLET_MAX_MESSAGE_BYTES).
    RECORD_TOO_LARGE = "record_too_large"


# gc=False: made by the ten thousand for a large invalid batch, and holding only strings and
# numbers (no cycle can pass through one), they need not be walked by every collection that
# batch sets off (bench/hostile_bench.py, ndjson-mixed).
class RecordError(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    """One problem with one record.

    ``pointer`` is a JSON Pointer into the batch (``/3/customer/e-mail``), always starting with the
    record's index, also for a body that held one object. ``field`` is the path of the user's field
    names joined by dots (``customer.e-mail``), or None when the record itself is wrong (not an
    object). ``line`` is the record's first line for NDJSON and CSV bodies.
    """

    index: int
    pointer: str
    field: str | None
    code: RecordErrorCode
    message: str
    line: int | None = None


class RejectedRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An invalid record kept for replay: the record as sent, and every reason it failed.

    ``replay_of``: set when a replay found it still invalid and kept it again, with its new
    reasons: the ``<partition>:<offset>`` of the record it was before (not counted twice).
    """

    connector_id: str
    request_id: str
    received_at_ms: int
    schema_id: int
    schema_version: int
    content_type: str
    record: Any  # the record as decoded from the body (CSV rows as objects of strings)
    errors: list[RecordError]
    replay_of: str | None = None
