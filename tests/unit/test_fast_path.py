"""The gateway's fast path answers as its Litestar routes do: same status, headers and body.

Each request goes to the gateway twice, built as ``gateway/app.py`` builds it (minus Kafka: a
fake producer): with the fast path, and without it (``gateway_fast_path=False``: plain Litestar).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
import pytest
from confluent_kafka import KafkaError
from litestar import Litestar
from litestar.enums import ScopeType
from litestar.testing import AsyncTestClient
from litestar.types import ASGIApp, Receive, Scope, Send

from gateway._fast_path import IngestDispatcher
from gateway.app import build_app
from gateway.connector_lookup import ConnectorLookup
from gateway.ingest import Ingest
from gateway.metrics import GatewayMetrics
from inlet.codec.steps import Steps
from inlet.kafka import AsyncProducer, Delivery, ProduceFailed, RecordFields
from inlet.model.connectors import Connector, ConnectorState, connector_record_value
from inlet.model.fields import FieldSpec
from inlet.model.verify import Verify, seal_secret
from inlet.problems import PROBLEM_MEDIA_TYPE
from inlet.sealing import SecretBox
from inlet.settings import Settings
from inlet.statelog.fold import CompleteState
from inlet.tokens import token_hash
from inlet.topics import CONNECTORS_TOPIC

TOKEN = "inlet_ingest_parity-test"
MAX_BODY = 1024
SETTINGS = Settings(kafka_bootstrap_servers="127.0.0.1:1", max_body_bytes=MAX_BODY)
AT = datetime(2026, 1, 1, tzinfo=UTC)
CONNECTOR = Connector(
    id="con_0123456789abcdef",
    name="parity",
    fields=[FieldSpec(name="id", type="string"), FieldSpec(name="qty", type="integer")],
    key_field="id",
    topic="parity",
    rejected_topic="parity.rejected",
    subject="parity-value",
    record_name="Parity",
    schema_id=7,
    schema_version=2,
    token_hash=token_hash(TOKEN),
    created_at=AT,
    updated_at=AT,
)
# A connector that verifies GitHub's signature: the fast path must verify as Litestar's route does.
SIGNED_TOKEN = "inlet_ingest_parity-signed"
SIGNING_SECRET = "parity secret"
BOX = SecretBox(os.urandom(32))
SIGNED = msgspec.structs.replace(
    CONNECTOR,
    id="con_fedcba9876543210",
    name="parity-signed",
    token_hash=token_hash(SIGNED_TOKEN),
    verify=Verify(
        scheme="github",
        secrets=[seal_secret(SIGNING_SECRET, connector_id="con_fedcba9876543210", box=BOX, now=AT)],
    ),
)
# Connectors whose senders wrap records in an envelope (gateway/envelopes.py).
FIREHOSE_TOKEN = "inlet_ingest_parity-firehose"
FIREHOSE = msgspec.structs.replace(
    CONNECTOR,
    id="con_f1e0000000000001",
    name="parity-firehose",
    token_hash=token_hash(FIREHOSE_TOKEN),
    envelope="firehose",
)
PUBSUB_TOKEN = "inlet_ingest_parity-pubsub"
PUBSUB = msgspec.structs.replace(
    CONNECTOR,
    id="con_f1e0000000000002",
    name="parity-pubsub",
    token_hash=token_hash(PUBSUB_TOKEN),
    envelope="pubsub-push",
)
CE_TOKEN = "inlet_ingest_parity-cloudevents"
CLOUDEVENTS = msgspec.structs.replace(
    CONNECTOR,
    id="con_f1e0000000000003",
    name="parity-cloudevents",
    token_hash=token_hash(CE_TOKEN),
    envelope="cloudevents",
)
JSON = {"content-type": "application/json"}
BEARER = {**JSON, "authorization": f"Bearer {TOKEN}"}
GOOD = b'[{"id": "a", "qty": 1}, {"id": "b", "qty": 2}]'
MIXED = b'[{"id": "a", "qty": 1}, {"id": "b", "qty": "two"}]'
BAD = b'[{"id": 1}, {"qty": 2}]'
BY_URL = f"/v1/ingest/{TOKEN}"
SIGNED_URL = f"/v1/ingest/{SIGNED_TOKEN}"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


FIREHOSE_HEADERS = {
    **JSON,
    "x-amz-firehose-request-id": "req-1",
    "x-amz-firehose-access-key": FIREHOSE_TOKEN,
}


def firehose(*datas: str) -> bytes:
    records = [{"data": data} for data in datas]
    return msgspec.json.encode({"requestId": "req-1", "timestamp": 1, "records": records})


def github_signed(body: bytes, secret: str = SIGNING_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {**JSON, "x-hub-signature-256": f"sha256={digest}"}


class FakeProducer(AsyncProducer):
    """Acknowledges each batch at once, or fails it as Kafka would while ``down``."""

    def __init__(self) -> None:  # no librdkafka producer, no poll thread
        self.produced: list[RecordFields] = []
        self.down = False

    def produce_steps(self, records: Sequence[RecordFields], delivery: Delivery) -> Steps[None]:
        yield from ()
        batch = list(records)
        if self.down:
            failed = ProduceFailed(KafkaError(KafkaError._ALL_BROKERS_DOWN), queued=len(batch))
            delivery.future.set_exception(failed)
        else:
            self.produced += batch
            delivery.future.set_result(len(batch))

    def close(self, timeout: float = 5.0) -> None:
        pass


class Handoffs:
    """Stands between the dispatcher and Litestar: the HTTP requests the fast path handed on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


@dataclass
class Gateway:
    app: ASGIApp
    producer: FakeProducer


def gateway(*, fast_path: bool) -> Gateway:
    """The gateway as ``create_app`` builds it, with its lifespan's Kafka parts replaced."""
    settings = msgspec.structs.replace(SETTINGS, gateway_fast_path=fast_path)
    connectors = ConnectorState()
    for connector in (CONNECTOR, SIGNED, FIREHOSE, PUBSUB, CLOUDEVENTS):
        connectors.apply(CONNECTORS_TOPIC, connector.id.encode(), connector_record_value(connector))
    metrics = GatewayMetrics()
    producer = FakeProducer()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.ingest = Ingest(
            settings,
            ConnectorLookup(connectors, CompleteState()),
            producer,
            metrics,
            box=lambda: BOX,
        )
        yield

    return Gateway(build_app(settings, metrics, lifespan), producer)


@dataclass(frozen=True)
class Case:
    status: int
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    fast: bool = True  # answered by the fast path, not handed to Litestar
    kafka_down: bool = False
    firehose: bool = False  # answered in Firehose's format


def big(size: int) -> bytes:
    """A JSON array of ``size`` bytes (blanks inside), every record valid."""
    body = b"[" + b" " * (size - len(GOOD)) + GOOD[1:]
    assert len(body) == size
    return body


CASES = {
    "405 GET by URL": Case(405, "GET", BY_URL, {}, fast=False),
    "405 PUT by header": Case(405, "PUT", "/v1/ingest", BEARER, GOOD, fast=False),
    "400 bad mode": Case(400, "POST", BY_URL + "?mode=sometimes", JSON, GOOD, fast=False),
    "200 other query parameters": Case(
        200, "POST", BY_URL + "?mode=atomic&x=1", JSON, GOOD, fast=False
    ),
    "200 trailing slash": Case(200, "POST", BY_URL + "/", JSON, GOOD, fast=False),
    "200 header route, trailing slash": Case(200, "POST", "/v1/ingest/", BEARER, GOOD, fast=False),
    "400 invalid host": Case(400, "POST", BY_URL, {**JSON, "host": "a b"}, GOOD, fast=False),
    "200 unusual host": Case(200, "POST", BY_URL, {**JSON, "host": "u@gw"}, GOOD, fast=False),
    "413 over the cap": Case(413, "POST", BY_URL, JSON, big(MAX_BODY + 1)),
    "200 at the cap": Case(200, "POST", BY_URL, JSON, big(MAX_BODY)),
    "413 by header": Case(413, "POST", "/v1/ingest", BEARER, big(MAX_BODY + 1)),
    "413 decompressed": Case(
        413, "POST", BY_URL, {**JSON, "content-encoding": "gzip"}, gzip.compress(big(MAX_BODY * 8))
    ),
    "415 media type": Case(415, "POST", BY_URL, {"content-type": "text/plain"}, b"a"),
    "400 unparseable": Case(400, "POST", BY_URL, JSON, b'[{"id": '),
    "400 unparseable gzip": Case(400, "POST", BY_URL, {**JSON, "content-encoding": "gzip"}, b"x"),
    "404 unknown token by URL": Case(404, "POST", "/v1/ingest/inlet_ingest_nope", JSON, GOOD),
    "404 unknown token by header": Case(
        404, "POST", "/v1/ingest", {**JSON, "authorization": "Bearer inlet_ingest_nope"}, GOOD
    ),
    "404 no token": Case(404, "POST", "/v1/ingest", JSON, GOOD),
    "422 all invalid by URL": Case(422, "POST", BY_URL, JSON, BAD),
    "422 all invalid by header": Case(422, "POST", "/v1/ingest", BEARER, BAD),
    "422 atomic": Case(422, "POST", BY_URL + "?mode=atomic", JSON, MIXED),
    "200 by URL": Case(200, "POST", BY_URL, JSON, GOOD),
    "200 by header": Case(200, "POST", "/v1/ingest", BEARER, GOOD),
    "200 by Basic auth": Case(
        200,
        "POST",
        "/v1/ingest",
        {**JSON, "authorization": "Basic " + base64.b64encode(f"x:{TOKEN}".encode()).decode()},
        GOOD,
    ),
    "200 partial": Case(200, "POST", BY_URL + "?mode=partial", JSON, MIXED),
    "200 partial by header": Case(200, "POST", "/v1/ingest?mode=partial", BEARER, MIXED),
    "200 NDJSON": Case(
        200, "POST", BY_URL, {"content-type": "application/x-ndjson"}, b'{"id": "a", "qty": 1}\n'
    ),
    "200 empty batch": Case(200, "POST", BY_URL, JSON, b"[]"),
    "503 Kafka down": Case(503, "POST", BY_URL, JSON, GOOD, kafka_down=True),
    "200 signed": Case(200, "POST", SIGNED_URL, github_signed(GOOD), GOOD),
    "200 signed, by header": Case(
        200,
        "POST",
        "/v1/ingest",
        {**github_signed(GOOD), "authorization": f"Bearer {SIGNED_TOKEN}"},
        GOOD,
    ),
    "401 unsigned": Case(401, "POST", SIGNED_URL, JSON, GOOD),
    "401 mis-signed": Case(401, "POST", SIGNED_URL, github_signed(GOOD, "other"), GOOD),
    "401 tampered": Case(401, "POST", SIGNED_URL, github_signed(GOOD), MIXED),
    "200 firehose by access key": Case(
        200,
        "POST",
        "/v1/ingest",
        FIREHOSE_HEADERS,
        firehose(b64(b'{"id": "a", "qty": 1}'), b64(b'{"id": "b", "qty": 2}\n{"id": "c"}')),
        firehose=True,
    ),
    "400 firehose bad base64": Case(
        400, "POST", "/v1/ingest", FIREHOSE_HEADERS, firehose("%%"), firehose=True
    ),
    "422 firehose all invalid": Case(
        422, "POST", "/v1/ingest", FIREHOSE_HEADERS, firehose(b64(b'{"id": 1}')), firehose=True
    ),
    "413 firehose over the cap": Case(
        413, "POST", "/v1/ingest", FIREHOSE_HEADERS, b" " * (MAX_BODY + 1), firehose=True
    ),
    "503 firehose, Kafka down": Case(
        503,
        "POST",
        "/v1/ingest",
        FIREHOSE_HEADERS,
        firehose(b64(b'{"id": "a", "qty": 1}')),
        kafka_down=True,
        firehose=True,
    ),
    "404 access key of a plain connector": Case(
        404, "POST", "/v1/ingest", {**FIREHOSE_HEADERS, "x-amz-firehose-access-key": TOKEN}, GOOD
    ),
    "200 pubsub push": Case(
        200,
        "POST",
        f"/v1/ingest/{PUBSUB_TOKEN}",
        JSON,
        msgspec.json.encode(
            {
                "message": {"data": b64(b'{"id": "a", "qty": 1}'), "messageId": "1"},
                "subscription": "s",
            }
        ),
    ),
    "400 pubsub push without data": Case(
        400, "POST", f"/v1/ingest/{PUBSUB_TOKEN}", JSON, b'{"message": {}}'
    ),
    "200 structured cloudevent": Case(
        200,
        "POST",
        f"/v1/ingest/{CE_TOKEN}",
        {"content-type": "application/cloudevents+json"},
        b'{"specversion": "1.0", "id": "1", "source": "/s", "type": "t",'
        b' "data": {"id": "a", "qty": 1}}',
    ),
    "200 binary cloudevent": Case(
        200,
        "POST",
        f"/v1/ingest/{CE_TOKEN}",
        {**JSON, "ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"},
        b'{"id": "a", "qty": 1}',
    ),
    "400 cloudevent without its context": Case(
        400, "POST", f"/v1/ingest/{CE_TOKEN}", JSON, b'{"id": "a"}'
    ),
    "401 signed, Litestar's route": Case(
        401, "POST", SIGNED_URL + "/", github_signed(GOOD, "other"), GOOD, fast=False
    ),
}


async def answer(built: Gateway, case: Case) -> tuple[int, dict[str, str], bytes]:
    built.producer.down = case.kafka_down
    # A request id of our own, echoed on success: otherwise a random one per answer.
    headers = {**case.headers, "x-request-id": "parity-1"}
    async with AsyncTestClient(built.app) as client:
        response = await client.request(case.method, case.path, headers=headers, content=case.body)
    content = response.content
    if case.firehose:  # the time of the answer differs, and is checked here
        answered = msgspec.json.decode(content)
        assert answered.pop("requestId") == "req-1"
        assert isinstance(answered.pop("timestamp"), int)
        assert ("errorMessage" in answered) == (response.status_code != 200)
        content = msgspec.json.encode(answered)
    return response.status_code, dict(response.headers), content


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_the_fast_path_answers_as_litestar_does(case: Case) -> None:
    fast, litestar = gateway(fast_path=True), gateway(fast_path=False)
    assert isinstance(fast.app, IngestDispatcher)
    assert isinstance(litestar.app, Litestar)
    handoffs = fast.app.app = Handoffs(fast.app.app)

    fast_answer = await answer(fast, case)

    assert handoffs.paths == ([] if case.fast else [case.path.partition("?")[0]])
    assert fast_answer == await answer(litestar, case)
    status, headers, _ = fast_answer
    assert status == case.status
    media_type = "application/json" if status == 200 or case.firehose else PROBLEM_MEDIA_TYPE
    assert headers["content-type"] == media_type
    sent = [kafka_records(app.producer) for app in (fast, litestar)]
    assert sent[0] == sent[1]
    assert bool(sent[0]) == (status == 200 and case.body != b"[]")


def kafka_records(producer: FakeProducer) -> list[tuple[str, object, bytes | None]]:
    """What reached Kafka, but for the time received (in the headers and rejected records)."""
    out: list[tuple[str, object, bytes | None]] = []
    for topic, value, key, _headers, _partition in producer.produced:
        if topic == CONNECTOR.rejected_topic:
            rejected = msgspec.json.decode(value or b"")
            del rejected["received_at_ms"]
            out.append((topic, rejected, key))
        else:
            out.append((topic, value, key))
    return out


async def test_other_routes_are_litestars() -> None:
    built = gateway(fast_path=True)
    assert isinstance(built.app, IngestDispatcher)
    handoffs = built.app.app = Handoffs(built.app.app)
    async with AsyncTestClient(built.app) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert "inlet_ingest_requests" in response.text
    assert handoffs.paths == ["/metrics"]
