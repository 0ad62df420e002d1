"""Cloud senders' envelopes: the records inside, and the Kafka headers each record gets.

A connector with ``envelope`` set takes its senders' wrapping instead of plain records; ``unwrap``
turns the (decompressed) body and request headers into the raw JSON records the codec validates,
with each record's headers. Pure: bytes and headers in, records out, or ``EnvelopeInvalid``
naming where (400). Built against (the README's "Cloud envelopes" says the same):

* ``firehose``: Amazon Data Firehose's HTTP endpoint delivery, protocol version 1.0
  (``X-Amz-Firehose-Protocol-Version: 1.0``): ``{"requestId", "timestamp", "records":
  [{"data": base64}]}``, each record's data one JSON value or NDJSON lines. The request id comes
  from ``X-Amz-Firehose-Request-Id`` (required: Firehose always sends it; the body's ``requestId``
  must agree). Answered ``{"requestId", "timestamp"}`` (``firehose_answer``), or on failure with
  ``errorMessage`` too (``firehose_error``). Headers: ``firehose_request_id``, and
  ``firehose_source_arn`` when sent.
* ``pubsub-push``: Google Cloud Pub/Sub push, wrapped payload: ``{"message": {"data": base64,
  "attributes", "messageId", "publishTime", "orderingKey"}, "subscription"}``; ``data`` one JSON
  value or NDJSON lines. Headers: every attribute under its own name, and ``pubsub_message_id``,
  ``pubsub_publish_time``, ``pubsub_subscription``, ``pubsub_ordering_key`` when sent.
* ``cloudevents``: CloudEvents 1.0.2 over HTTP 1.0.2: structured mode
  (``application/cloudevents+json``), batched mode (``application/cloudevents-batch+json``), binary
  mode (``ce-*`` headers, the body is ``data``, and must be JSON). ``data`` (or ``data_base64``,
  holding JSON) is the record; every other attribute, extensions included, becomes the header
  ``ce_<name>`` as the CloudEvents Kafka binding names it (``ce_id``, ``ce_source``, ``ce_type``,
  ``ce_datacontenttype``…), its value as text (JSON numbers and booleans as written).

Nothing is deduplicated here; the ids a sender repeats on a retry (the Firehose request id, the
Pub/Sub message id, a CloudEvent's source and id) travel as headers so that dedup can key on them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Final, NamedTuple, TypeVar
from urllib.parse import unquote

import msgspec

from gateway.errors import EnvelopeInvalid
from inlet.codec.bodies import BodyFormat, JsonRecords, body_format, parse_body
from inlet.codec.errors import (
    BodyUnparseable,
    RecordTooLarge,
    TooManyRecords,
    UnsupportedMediaType,
)
from inlet.errors import Problem
from inlet.kafka import Headers
from inlet.model.connectors import Envelope

T = TypeVar("T")

FIREHOSE_REQUEST_ID: Final = "x-amz-firehose-request-id"
FIREHOSE_ACCESS_KEY: Final = "x-amz-firehose-access-key"
FIREHOSE_SOURCE_ARN: Final = "x-amz-firehose-source-arn"
STRUCTURED: Final = "application/cloudevents+json"
BATCH: Final = "application/cloudevents-batch+json"
CE_SPEC_VERSION: Final = "1.0"
# The context attributes every CloudEvent has (CloudEvents 1.0 "REQUIRED Attributes").
_CE_REQUIRED: Final = ("specversion", "id", "source", "type")
# The headers an attribute of a sender may not take (Inlet's own and the envelopes').
_RESERVED_PREFIXES: Final = ("inlet-", "pubsub_", "firehose_", "ce_")


class Limits(NamedTuple):
    max_record_bytes: int
    max_records: int


class Unwrapped(NamedTuple):
    """An envelope's records, and ``headers[i]``: record i's headers (often one shared list)."""

    records: JsonRecords
    headers: list[Headers]


class FirehoseAnswer(msgspec.Struct, frozen=True):
    """What Firehose counts as delivered: the request's id and the time, in ms since the epoch."""

    requestId: str  # noqa: N815 - Firehose's member names
    timestamp: int


class FirehoseError(msgspec.Struct, frozen=True):
    requestId: str  # noqa: N815
    timestamp: int
    errorMessage: str  # noqa: N815


def firehose_answer(request_id: str, now_ms: int) -> FirehoseAnswer:
    return FirehoseAnswer(requestId=request_id, timestamp=now_ms)


def firehose_error(request_id: str, now_ms: int, message: str) -> FirehoseError:
    return FirehoseError(requestId=request_id, timestamp=now_ms, errorMessage=message)


def firehose_request_id(headers: Mapping[str, str]) -> str:
    """The delivery's id, from ``X-Amz-Firehose-Request-Id`` ("" when it is missing)."""
    return headers.get(FIREHOSE_REQUEST_ID, "")


def unwrap(
    envelope: Envelope,
    body: bytes,
    headers: Mapping[str, str],
    content_type: str | None,
    limits: Limits,
) -> Unwrapped:
    """The records ``body`` holds under ``envelope``; ``headers`` by lower-case name, and
    ``body`` already decompressed."""
    if envelope == "firehose":
        return _firehose(body, headers, limits)
    if envelope == "pubsub-push":
        return _pubsub(body, limits)
    return _cloudevents(body, headers, content_type, limits)


# --- Shared pieces. ---


def _invalid(field: str, reason: str, what: str) -> EnvelopeInvalid:
    return EnvelopeInvalid(f"not a {what}: {field} {reason}", problems=[Problem(field, reason)])


def _decode(decoder: msgspec.json.Decoder[T], body: bytes, what: str) -> T:
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise _invalid(_path(exc), _reason(exc), what) from exc
    except msgspec.DecodeError as exc:
        raise _invalid("body", f"is not JSON ({exc})", what) from exc


def _path(exc: msgspec.ValidationError) -> str:
    # msgspec says "Expected `str`, got `int` - at `$.records[0].data`".
    text = str(exc)
    _, at, where = text.rpartition(" - at `")
    path = where.rstrip("`").removeprefix("$").removeprefix(".") if at else ""
    _, missing, name = text.partition("missing required field `")
    if missing:
        name = name.split("`", 1)[0]
        path = f"{path}.{name}" if path else name
    return path or "body"


def _reason(exc: msgspec.ValidationError) -> str:
    return str(exc).split(" - at `", 1)[0]


def _unbase64(text: str, field: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _invalid(field, "is not base64", what) from exc


_RAW: Final = msgspec.json.Decoder(msgspec.Raw)


def _json_records(data: bytes, field: str, what: str, limits: Limits) -> list[msgspec.Raw]:
    """``data`` as records: one JSON value, else NDJSON lines (``field`` names it in errors)."""
    try:
        record = _RAW.decode(data)
    except msgspec.DecodeError:
        pass
    else:
        if len(data) > limits.max_record_bytes:
            reason = f"is over the {limits.max_record_bytes:,}-byte record limit"
            raise _invalid(field, reason, what)
        return [record]
    try:
        parsed = parse_body(
            data,
            "application/x-ndjson",
            max_body_bytes=len(data),
            max_record_bytes=limits.max_record_bytes,
            max_records=limits.max_records,
        )
    except (BodyUnparseable, RecordTooLarge, TooManyRecords) as exc:
        raise _invalid(field, f"is neither one JSON value nor NDJSON ({exc})", what) from exc
    if not isinstance(parsed, JsonRecords) or not parsed.records:
        raise _invalid(field, "holds no record", what)
    return parsed.records


def _batch(records: list[msgspec.Raw], headers: list[Headers], limits: Limits) -> Unwrapped:
    if len(records) > limits.max_records:
        raise TooManyRecords(limits.max_records)
    size = sum(len(record) for record in records)
    batch = JsonRecords(BodyFormat.NDJSON, records, body_bytes=size)
    return Unwrapped(batch, headers)


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


# --- Firehose. ---


class _FirehoseRecord(msgspec.Struct, frozen=True):
    data: str


class _FirehoseRequest(msgspec.Struct, frozen=True):
    requestId: str  # noqa: N815
    timestamp: int
    records: list[_FirehoseRecord]


_FIREHOSE: Final = msgspec.json.Decoder(_FirehoseRequest)
_FIREHOSE_WHAT: Final = "Firehose delivery request"


def _firehose(body: bytes, headers: Mapping[str, str], limits: Limits) -> Unwrapped:
    what = _FIREHOSE_WHAT
    request_id = firehose_request_id(headers)
    if not request_id:
        raise _invalid("X-Amz-Firehose-Request-Id", "is a required header", what)
    request = _decode(_FIREHOSE, body, what)
    if request.requestId != request_id:
        raise _invalid("requestId", "differs from the X-Amz-Firehose-Request-Id header", what)
    common: Headers = [("firehose_request_id", request_id)]
    if arn := headers.get(FIREHOSE_SOURCE_ARN):
        common.append(("firehose_source_arn", arn))
    records: list[msgspec.Raw] = []
    for index, record in enumerate(request.records):
        field = f"records[{index}].data"
        records += _json_records(_unbase64(record.data, field, what), field, what, limits)
        if len(records) > limits.max_records:
            raise TooManyRecords(limits.max_records)
    return _batch(records, [common] * len(records), limits)


# --- Pub/Sub push. ---


class _PubsubMessage(msgspec.Struct, frozen=True):
    data: str | None = None
    attributes: dict[str, str] = msgspec.field(default_factory=dict)
    messageId: str | None = None  # noqa: N815
    publishTime: str | None = None  # noqa: N815
    orderingKey: str | None = None  # noqa: N815
    # The snake_case spellings Pub/Sub sends beside the camelCase ones: read, not needed.
    message_id: str | None = None
    publish_time: str | None = None


class _PubsubPush(msgspec.Struct, frozen=True):
    message: _PubsubMessage
    subscription: str | None = None
    deliveryAttempt: int | None = None  # noqa: N815


_PUBSUB: Final = msgspec.json.Decoder(_PubsubPush)
_PUBSUB_WHAT: Final = "Pub/Sub push request"


def _pubsub(body: bytes, limits: Limits) -> Unwrapped:
    what = _PUBSUB_WHAT
    push = _decode(_PUBSUB, body, what)
    message = push.message
    if not message.data:
        raise _invalid("message.data", "is required: a message without data holds no record", what)
    data = _unbase64(message.data, "message.data", what)
    records = _json_records(data, "message.data", what, limits)
    headers: Headers = []
    for name, value in message.attributes.items():
        if name.startswith(_RESERVED_PREFIXES):
            raise _invalid(f"message.attributes.{name}", "names a header Inlet writes", what)
        headers.append((name, value))
    known = {
        "pubsub_message_id": message.messageId or message.message_id,
        "pubsub_publish_time": message.publishTime or message.publish_time,
        "pubsub_subscription": push.subscription,
        "pubsub_ordering_key": message.orderingKey,
    }
    headers += [(name, value) for name, value in known.items() if value]
    return _batch(records, [headers] * len(records), limits)


# --- CloudEvents. ---

_EVENT: Final = msgspec.json.Decoder(dict[str, msgspec.Raw])
_EVENTS: Final = msgspec.json.Decoder(list[dict[str, msgspec.Raw]])
_ATTRIBUTE: Final = msgspec.json.Decoder(str | int | float | bool | None)
_CE_WHAT: Final = "CloudEvent"


def _cloudevents(
    body: bytes, headers: Mapping[str, str], content_type: str | None, limits: Limits
) -> Unwrapped:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type == STRUCTURED:
        event = _decode(_EVENT, body, _CE_WHAT)
        record, attributes = _structured(event, "")
        return _batch([record], [attributes], limits)
    if media_type == BATCH:
        events = _decode(_EVENTS, body, "CloudEvents batch")
        pairs = [_structured(event, f"[{index}].") for index, event in enumerate(events)]
        return _batch([record for record, _ in pairs], [attrs for _, attrs in pairs], limits)
    if "ce-specversion" in headers:
        return _batch([_binary_data(body, content_type)], [_binary(headers, content_type)], limits)
    raise _invalid(
        "Content-Type",
        f"is not {STRUCTURED} or {BATCH}, and no ce-specversion header makes it binary mode",
        _CE_WHAT,
    )


def _structured(event: dict[str, msgspec.Raw], at: str) -> tuple[msgspec.Raw, Headers]:
    attributes: dict[str, str] = {}
    for name, raw in event.items():
        if name in ("data", "data_base64"):
            continue
        try:
            value = _ATTRIBUTE.decode(raw)
        except msgspec.ValidationError as exc:
            raise _invalid(f"{at}{name}", "is not a string, number or boolean", _CE_WHAT) from exc
        if value is not None:  # null: the attribute is absent (CloudEvents JSON format 3.1)
            attributes[name] = _text(value)
    _check_context(attributes, at, "")
    if "data" in event:
        record = event["data"]
    elif "data_base64" in event:
        encoded = _ATTRIBUTE.decode(event["data_base64"])
        if not isinstance(encoded, str):
            raise _invalid(f"{at}data_base64", "is not a string", _CE_WHAT)
        data = _unbase64(encoded, f"{at}data_base64", _CE_WHAT)
        try:
            record = _RAW.decode(data)
        except msgspec.DecodeError as exc:
            raise _invalid(f"{at}data_base64", "does not hold JSON", _CE_WHAT) from exc
    else:
        raise _invalid(f"{at}data", "is required: an event without data holds no record", _CE_WHAT)
    return record, [(f"ce_{name}", value) for name, value in attributes.items()]


def _check_context(attributes: Mapping[str, str], at: str, prefix: str) -> None:
    for name in _CE_REQUIRED:
        if not attributes.get(name):
            field = f"{prefix}{name}" if prefix else f"{at}{name}"
            raise _invalid(field, "is required", _CE_WHAT)
    if attributes["specversion"] != CE_SPEC_VERSION:
        field = f"{prefix}specversion" if prefix else f"{at}specversion"
        raise _invalid(field, f"is not {CE_SPEC_VERSION}", _CE_WHAT)


def _binary(headers: Mapping[str, str], content_type: str | None) -> Headers:
    attributes: dict[str, str] = {}
    for name, value in headers.items():
        if name.startswith("ce-") and len(name) > len("ce-"):
            # Header values are percent-encoded (CloudEvents HTTP binding 3.1.3.2).
            attributes[name[len("ce-") :]] = unquote(value)
    _check_context(attributes, "", "ce-")
    if content_type:
        attributes["datacontenttype"] = content_type
    return [(f"ce_{name}", value) for name, value in attributes.items()]


def _binary_data(body: bytes, content_type: str | None) -> msgspec.Raw:
    try:
        kind: BodyFormat | None = body_format(content_type)
    except UnsupportedMediaType:
        kind = None
    if kind is not BodyFormat.JSON:
        raise _invalid("Content-Type", "must be JSON: the event's data is the record", _CE_WHAT)
    try:
        return _RAW.decode(body)
    except msgspec.DecodeError as exc:
        raise _invalid("body", f"is not JSON ({exc})", _CE_WHAT) from exc
