"""Envelopes unwrap as their senders' published specifications write them.

The bodies are the specifications' own examples: Amazon Data Firehose's "HTTP endpoint delivery
request and response specifications" (protocol 1.0), Google Pub/Sub's push "wrapped" payload, and
CloudEvents 1.0.2's JSON format and HTTP binding examples.
"""

from __future__ import annotations

import base64
import json

import msgspec
import pytest

from gateway.envelopes import Limits, firehose_answer, firehose_error, unwrap
from gateway.errors import EnvelopeInvalid
from inlet.codec.errors import TooManyRecords
from inlet.model.connectors import Connector, connector_record_value

LIMITS = Limits(max_record_bytes=1024, max_records=10)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def records(unwrapped_records: list[msgspec.Raw]) -> list[object]:
    return [json.loads(bytes(r)) for r in unwrapped_records]


# Firehose's own example request (the data values changed to JSON records).
FIREHOSE_ID = "ed4acda5-034f-9f42-bba1-f29aea6d7d8f"
FIREHOSE_HEADERS = {
    "x-amz-firehose-protocol-version": "1.0",
    "x-amz-firehose-request-id": FIREHOSE_ID,
    "x-amz-firehose-source-arn": "arn:aws:firehose:us-east-1:123456789:deliverystream/testStream",
    "x-amz-firehose-access-key": "my-access-key",
}


def firehose_body(*datas: bytes, request_id: str = FIREHOSE_ID) -> bytes:
    return json.dumps(
        {
            "requestId": request_id,
            "timestamp": 1578090901599,
            "records": [{"data": b64(d)} for d in datas],
        }
    ).encode()


def test_firehose_records_are_json_or_ndjson_with_the_request_id() -> None:
    body = firehose_body(b'{"id": "a"}', b'{"id": "b"}\n{"id": "c"}\n', b'{\n  "id": "d"\n}')
    got = unwrap("firehose", body, FIREHOSE_HEADERS, "application/json", LIMITS)
    assert records(got.records.records) == [{"id": "a"}, {"id": "b"}, {"id": "c"}, {"id": "d"}]
    assert got.headers[0] == [
        ("firehose_request_id", FIREHOSE_ID),
        ("firehose_source_arn", FIREHOSE_HEADERS["x-amz-firehose-source-arn"]),
    ]
    assert len(got.headers) == 4


def test_firehose_answers_in_its_format() -> None:
    assert msgspec.json.decode(
        msgspec.json.encode(firehose_answer(FIREHOSE_ID, 1578090903599))
    ) == {
        "requestId": FIREHOSE_ID,
        "timestamp": 1578090903599,
    }
    error = msgspec.json.decode(msgspec.json.encode(firehose_error(FIREHOSE_ID, 1, "bad")))
    assert error == {"requestId": FIREHOSE_ID, "timestamp": 1, "errorMessage": "bad"}


@pytest.mark.parametrize(
    ("body", "headers", "field"),
    [
        (firehose_body(b'{"id": "a"}'), {}, "X-Amz-Firehose-Request-Id"),
        (firehose_body(b'{"id": "a"}', request_id="other"), FIREHOSE_HEADERS, "requestId"),
        (
            json.dumps({"requestId": FIREHOSE_ID, "timestamp": 1, "records": [{"data": "%%"}]}),
            FIREHOSE_HEADERS,
            "records[0].data",
        ),
        (firehose_body(b'{"id": "a"}', b"not json"), FIREHOSE_HEADERS, "records[1].data"),
        (
            json.dumps({"requestId": FIREHOSE_ID, "timestamp": 1, "records": [{}]}),
            FIREHOSE_HEADERS,
            "records[0].data",
        ),
        (
            json.dumps({"requestId": FIREHOSE_ID, "timestamp": 1, "records": [{"data": 1}]}),
            FIREHOSE_HEADERS,
            "records[0].data",
        ),
        (b"{", FIREHOSE_HEADERS, "body"),
    ],
)
def test_a_malformed_firehose_request_names_where(
    body: str | bytes, headers: dict[str, str], field: str
) -> None:
    raw = body.encode() if isinstance(body, str) else body
    with pytest.raises(EnvelopeInvalid) as caught:
        unwrap("firehose", raw, headers, "application/json", LIMITS)
    assert [p.field for p in caught.value.problems] == [field]


def test_firehose_records_count_against_the_request_limit() -> None:
    body = firehose_body(b"\n".join(b'{"id": "x"}' for _ in range(11)))
    with pytest.raises(EnvelopeInvalid):  # over the limit inside one record's NDJSON
        unwrap("firehose", body, FIREHOSE_HEADERS, "application/json", LIMITS)
    body = firehose_body(*[b'{"id": "x"}'] * 11)
    with pytest.raises(TooManyRecords):
        unwrap("firehose", body, FIREHOSE_HEADERS, "application/json", LIMITS)


# Pub/Sub's push example (https://cloud.google.com/pubsub/docs/push#receive_push).
PUBSUB = {
    "message": {
        "attributes": {"key": "value"},
        "data": b64(b'{"id": "a", "qty": 1}'),
        "messageId": "2070443601311540",
        "message_id": "2070443601311540",
        "publishTime": "2021-02-26T19:13:55.749Z",
        "publish_time": "2021-02-26T19:13:55.749Z",
    },
    "subscription": "projects/myproject/subscriptions/mysubscription",
}


def test_pubsub_push_attributes_and_message_id_become_headers() -> None:
    got = unwrap("pubsub-push", json.dumps(PUBSUB).encode(), {}, "application/json", LIMITS)
    assert records(got.records.records) == [{"id": "a", "qty": 1}]
    assert got.headers == [
        [
            ("key", "value"),
            ("pubsub_message_id", "2070443601311540"),
            ("pubsub_publish_time", "2021-02-26T19:13:55.749Z"),
            ("pubsub_subscription", "projects/myproject/subscriptions/mysubscription"),
        ]
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"data": "!!"}, "message.data"),
        ({"data": None}, "message.data"),
        ({"data": b64(b"nope")}, "message.data"),
        ({"attributes": {"inlet-request-id": "x"}}, "message.attributes.inlet-request-id"),
        ({"attributes": {"key": 1}}, "message.attributes[...]"),  # msgspec's word for a key
    ],
)
def test_a_malformed_pubsub_push_names_where(change: dict[str, object], field: str) -> None:
    body = {**PUBSUB, "message": {**PUBSUB["message"], **change}}  # type: ignore[dict-item]
    with pytest.raises(EnvelopeInvalid) as caught:
        unwrap("pubsub-push", json.dumps(body).encode(), {}, "application/json", LIMITS)
    assert [p.field for p in caught.value.problems] == [field]


# CloudEvents 1.0.2 JSON format's example (formats/json-format.md 3.1), data as JSON.
EVENT = {
    "specversion": "1.0",
    "type": "com.example.someevent",
    "source": "/mycontext",
    "id": "A234-1234-1234",
    "time": "2018-04-05T17:31:00Z",
    "comexampleextension1": "value",
    "comexampleothervalue": 5,
    "datacontenttype": "application/json",
    "data": {"id": "a", "qty": 2},
}


def test_a_structured_cloudevent_is_its_data_with_ce_headers() -> None:
    got = unwrap(
        "cloudevents", json.dumps(EVENT).encode(), {}, "application/cloudevents+json", LIMITS
    )
    assert records(got.records.records) == [{"id": "a", "qty": 2}]
    assert dict(got.headers[0]) == {
        "ce_specversion": "1.0",
        "ce_type": "com.example.someevent",
        "ce_source": "/mycontext",
        "ce_id": "A234-1234-1234",
        "ce_time": "2018-04-05T17:31:00Z",
        "ce_comexampleextension1": "value",
        "ce_comexampleothervalue": "5",
        "ce_datacontenttype": "application/json",
    }


def test_a_cloudevents_batch_gives_each_record_its_own_headers() -> None:
    second = {**EVENT, "id": "B", "data": None}
    del second["data"]
    second["data_base64"] = b64(b'{"id": "b"}')
    body = json.dumps([EVENT, second]).encode()
    got = unwrap("cloudevents", body, {}, "application/cloudevents-batch+json", LIMITS)
    assert records(got.records.records) == [{"id": "a", "qty": 2}, {"id": "b"}]
    assert [dict(h)["ce_id"] for h in got.headers] == ["A234-1234-1234", "B"]


def test_a_binary_cloudevent_reads_ce_headers() -> None:
    # The HTTP binding's binary-mode example (http-protocol-binding.md 3.1.4).
    headers = {
        "ce-specversion": "1.0",
        "ce-type": "com.example.someevent",
        "ce-time": "2018-04-05T03:56:24Z",
        "ce-id": "1234-1234-1234",
        "ce-source": "/mycontext/subcontext",
        "ce-comexampleextension1": "value%20with%20space",
        "content-type": "application/json; charset=utf-8",
    }
    body = b'{"id": "a"}'
    got = unwrap("cloudevents", body, headers, headers["content-type"], LIMITS)
    assert records(got.records.records) == [{"id": "a"}]
    assert dict(got.headers[0]) == {
        "ce_specversion": "1.0",
        "ce_type": "com.example.someevent",
        "ce_time": "2018-04-05T03:56:24Z",
        "ce_id": "1234-1234-1234",
        "ce_source": "/mycontext/subcontext",
        "ce_comexampleextension1": "value with space",
        "ce_datacontenttype": "application/json; charset=utf-8",
    }


@pytest.mark.parametrize(
    ("body", "content_type", "headers", "field"),
    [
        ({**EVENT, "id": ""}, "application/cloudevents+json", {}, "id"),
        ({**EVENT, "specversion": "0.3"}, "application/cloudevents+json", {}, "specversion"),
        (
            {k: v for k, v in EVENT.items() if k != "data"},
            "application/cloudevents+json",
            {},
            "data",
        ),
        (
            [EVENT, {**EVENT, "source": None}],
            "application/cloudevents-batch+json",
            {},
            "[1].source",
        ),
        ({"id": "a"}, "application/json", {}, "Content-Type"),
        ({"id": "a"}, "application/json", {"ce-specversion": "1.0", "ce-id": "x"}, "ce-source"),
        (
            {"id": "a"},
            "text/csv",
            {"ce-specversion": "1.0", "ce-id": "x", "ce-source": "s", "ce-type": "t"},
            "Content-Type",
        ),
    ],
)
def test_a_malformed_cloudevent_names_where(
    body: object, content_type: str, headers: dict[str, str], field: str
) -> None:
    with pytest.raises(EnvelopeInvalid) as caught:
        unwrap("cloudevents", json.dumps(body).encode(), headers, content_type, LIMITS)
    assert [p.field for p in caught.value.problems] == [field]


def test_connectors_on_the_log_from_before_envelopes_have_none() -> None:
    old = {
        "id": "con_0123456789abcdef",
        "name": "old",
        "fields": [{"name": "id", "type": "string"}],
        "topic": "old",
        "rejected_topic": "old.rejected",
        "subject": "old-value",
        "record_name": "Old",
        "schema_id": 1,
        "schema_version": 1,
        "token_hash": "x",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    connector = msgspec.json.decode(json.dumps(old).encode(), type=Connector)
    assert connector.envelope is None
    # And a connector without one writes none: the record is what it was.
    assert b"envelope" not in connector_record_value(connector)
