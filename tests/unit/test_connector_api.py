"""The connector admin API end to end over HTTP, on an in-memory log and fake topics (no Kafka)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from confluent_kafka import KafkaError
from httpx import Response
from litestar import Litestar
from litestar.testing import AsyncTestClient

from inlet.errors import (
    InletError,
    InvalidConnector,
    KafkaUnavailable,
    Problem,
    StateUnavailable,
)
from inlet.model.connectors import Connector, connector_record_value
from inlet.problems import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE
from inlet.settings import Settings
from inlet.statelog.fold import InMemoryStateLog, Record, StateFold
from inlet.tokens import INGEST_PREFIX, token_hash
from inlet.topics import CONNECTORS_TOPIC
from registry.topic_admin import TopicSpec, _topic_error
from tests.registry_app import InMemoryRegistry

T = TypeVar("T")
ADMIN_TOKEN = "inlet_admin_test-token"
GATEWAY = "https://ingest.example"
START = datetime(2026, 1, 1, tzinfo=UTC)
ORDER_FIELDS = [
    {"name": "order_id", "type": "string"},
    {"name": "total", "type": "decimal", "precision": 10, "scale": 2},
]


class FakeTopics:
    """``TopicAdmin`` in memory; ``fail_create`` makes the next create fail."""

    def __init__(self) -> None:
        self.topics: dict[str, TopicSpec] = {}
        self.fail_create: InletError | None = None

    async def create(self, topics: Sequence[TopicSpec]) -> None:
        if self.fail_create is not None:
            error, self.fail_create = self.fail_create, None
            raise error
        for topic in topics:
            assert topic.name not in self.topics
            self.topics[topic.name] = topic

    async def delete(self, names: Sequence[str]) -> None:
        for name in names:
            self.topics.pop(name, None)


class ScriptedLog(InMemoryStateLog):
    """An in-memory log where another instance can write first, or the next write can fail."""

    def __init__(self, folder: StateFold) -> None:
        super().__init__(folder)
        self.written_first: list[Record] = []
        self.fail_write: InletError | None = None

    async def transact(self, decide: Callable[[], tuple[list[Record], T]]) -> T:
        for record in self.written_first:  # committed by another instance before we caught up
            self.records.append(record)
            self.folder.apply(record.topic, record.key, record.value)
        self.written_first = []
        if self.fail_write is not None:
            decide()
            error, self.fail_write = self.fail_write, None
            raise error  # decided, but the write did not go through
        return await super().transact(decide)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.settings = Settings(data_dir=str(tmp_path), public_gateway_url=GATEWAY)
        self.topics = FakeTopics()
        self.clock = Clock()
        registry = InMemoryRegistry(
            self.settings,
            ScriptedLog,
            topics=self.topics,
            clock=self.clock,
            admin_token=ADMIN_TOKEN,
        )
        self.schemas = registry.state.schemas
        self.connectors = registry.state.connectors
        self.log = registry.log
        self.registry = registry.services.schema_registry
        self.service = registry.services.connectors
        self.app = registry.app


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


@pytest.fixture
async def client(harness: Harness) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(harness.app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        yield test_client


Client = AsyncTestClient[Litestar]


async def create(client: Client, name: str = "Orders", **extra: Any) -> dict[str, Any]:
    body = {"name": name, "fields": ORDER_FIELDS, **extra}
    response = await client.post("/v1/connectors", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def problems(response: Response, status: int, slug: str) -> list[dict[str, str]]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["type"] == PROBLEM_TYPE_BASE + slug
    found: list[dict[str, str]] = body["problems"]
    return found


def assert_nothing_made(harness: Harness) -> None:
    assert harness.topics.topics == {}
    assert harness.schemas.subjects(deleted=True) == []
    assert harness.connectors.all() == []


# --- Create and read. ---


async def test_create_makes_topics_subject_and_record(client: Client, harness: Harness) -> None:
    created = await create(client, description="shop orders", key_field="order_id")
    connector_id = created["id"]
    token = created["token"]
    assert connector_id.startswith("con_")
    assert token.startswith(INGEST_PREFIX)
    assert created["ingest_url"] == f"{GATEWAY}/v1/ingest/{token}"
    assert created["topic"] == f"inlet.{connector_id}"
    assert created["rejected_topic"] == f"inlet.{connector_id}.rejected"
    assert created["subject"] == f"inlet.{connector_id}-value"
    assert created["status"] == "awaiting_samples"
    assert created["record_name"] == "Orders"
    assert created["schema_version"] == 1
    assert created["created_at"] == created["updated_at"] == "2026-01-01T00:00:00Z"
    assert created["fields"] == ORDER_FIELDS
    assert (created["key_field"], created["description"]) == ("order_id", "shop orders")
    assert "token_hash" not in created
    # Settings defaults come from Settings; the rejected topic has one partition.
    assert harness.topics.topics == {
        created["topic"]: TopicSpec(created["topic"], 3, -1),
        created["rejected_topic"]: TopicSpec(created["rejected_topic"], 1, -1),
    }
    # The registered schema is the connector's, under its subject, through the Confluent API.
    version = (await client.get(f"/subjects/{created['subject']}/versions/latest")).json()
    assert version["id"] == created["schema_id"]
    schema = json.loads(version["schema"])
    assert schema["name"] == "Orders"
    assert [f["name"] for f in schema["fields"]] == ["order_id", "total"]
    # The gateway finds the connector by the token's hash, and the token is stored nowhere.
    assert harness.connectors.by_token_hash(token_hash(token)) is not None
    assert all(token.encode() not in (r.value or b"") for r in harness.log.records)
    # The schema version and the connector record were one write.
    assert [r.topic for r in harness.log.records] == ["_schemas", CONNECTORS_TOPIC]


async def test_create_with_explicit_settings(client: Client, harness: Harness) -> None:
    created = await create(
        client,
        partitions=6,
        replication_factor=1,
        rate_limit_per_s=25.5,
        atomic=True,
        reject_unknown_fields=True,
        on_delete="keep",
    )
    assert harness.topics.topics[created["topic"]] == TopicSpec(created["topic"], 6, 1)
    assert harness.topics.topics[created["rejected_topic"]].replication_factor == 1
    got = (await client.get(f"/v1/connectors/{created['id']}")).json()
    assert (got["partitions"], got["replication_factor"], got["rate_limit_per_s"]) == (6, 1, 25.5)
    assert (got["atomic"], got["reject_unknown_fields"], got["on_delete"]) == (True, True, "keep")


async def test_get_never_shows_the_token(client: Client, harness: Harness) -> None:
    created = await create(client)
    token = created.pop("token")
    assert created.pop("ingest_url").endswith(token)
    got = await client.get(f"/v1/connectors/{created['id']}")
    assert got.status_code == 200
    # GET one adds what the sample worker has seen (nothing here: no sample service).
    detail = got.json()
    assert detail.pop("counts") == {"accepted": 0, "rejected": 0}
    assert detail.pop("samples") == {"count": 0, "required": 50}
    assert detail == created
    listed = await client.get("/v1/connectors")
    secrets = (token, token_hash(token), "token_hash", "ingest_url")
    for text in (got.text, listed.text):
        assert not any(secret in text for secret in secrets)


async def test_unknown_id_is_404(client: Client) -> None:
    for response in (
        await client.get("/v1/connectors/con_nope"),
        await client.patch("/v1/connectors/con_nope", json={"name": "x"}),
        await client.delete("/v1/connectors/con_nope"),
        await client.post("/v1/connectors/con_nope/duplicate", json={"name": "x"}),
        await client.post("/v1/connectors/con_nope/rotate-token"),
        await client.get("/v1/connectors/con_nope/records"),
        await client.post("/v1/connectors/con_nope/rejected/replay?dry_run=true"),
    ):
        found = problems(response, 404, "connector-not-found")
        assert found == [{"field": "id", "reason": "no connector has this id"}]


async def test_a_read_that_finds_nothing_on_state_that_cannot_catch_up_is_503(
    client: Client, harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = await create(client)

    async def stuck(timeout_s: float = 10.0) -> None:
        raise StateUnavailable("the registry state did not catch up with the log")

    monkeypatch.setattr(harness.log, "sync", stuck)
    # Found in the fold: answered as ever. Not found: not a 404 it cannot stand behind.
    assert (await client.get(f"/v1/connectors/{made['id']}")).status_code == 200
    for response in (
        await client.get("/v1/connectors/con_nope"),
        await client.get(f"/v1/connectors/{made['id']}/samples"),
        await client.get("/v1/connectors/con_nope/records"),
        await client.post("/v1/connectors/con_nope/rejected/replay?dry_run=true"),
    ):
        problems(response, 503, "state-unavailable")
        assert response.headers["retry-after"] == "1"


@pytest.mark.parametrize(
    ("name", "record_name"),
    [
        ("Orders API", "Orders_API"),
        ("2fa events", "_2fa_events"),
        ("日本", "Record"),
        ("-", "Record"),
    ],
)
async def test_record_name_falls_back_when_the_name_is_not_avro(
    client: Client, harness: Harness, name: str, record_name: str
) -> None:
    created = await create(client, name=name)
    assert created["name"] == name
    assert created["record_name"] == record_name
    schema = harness.registry._state.schema_by_id(created["schema_id"])
    assert schema is not None
    assert json.loads(schema.schema)["name"] == record_name


# --- Bad input: each a precise problem, and nothing made. ---

_UNKNOWN_TYPE = [{"name": "a", "type": "money"}]
_DUPLICATES = [{"name": "a", "type": "string"}, {"name": "A", "type": "string"}]
_NULLABLE = [{"name": "a", "type": "string", "nullable": True}]


@pytest.mark.parametrize(
    ("body", "status", "slug", "field", "reason"),
    [
        ({"fields": _UNKNOWN_TYPE}, 422, "validation-failed", "fields[0].type", "money"),
        ({"fields": []}, 422, "invalid-connector", "fields", "at least one field"),
        ({"fields": _DUPLICATES}, 422, "invalid-connector", "fields[1].name", "duplicates"),
        ({"key_field": "nope"}, 422, "invalid-connector", "key_field", "no top-level field"),
        (
            {"fields": _NULLABLE, "key_field": "a"},
            422,
            "invalid-connector",
            "key_field",
            "nullable",
        ),
        ({"name": "  "}, 422, "invalid-connector", "name", "blank"),
        ({"name": "x" * 129}, 422, "invalid-connector", "name", "at most 128"),
        ({"partitions": 0}, 422, "invalid-connector", "partitions", "at least 1"),
        ({"replication_factor": 0}, 422, "invalid-connector", "replication_factor", "-1"),
        ({"rate_limit_per_s": 0}, 422, "invalid-connector", "rate_limit_per_s", "more than 0"),
        ({"on_delete": "archive"}, 422, "validation-failed", "on_delete", "archive"),
        ({"envelope": "sqs"}, 422, "validation-failed", "envelope", "sqs"),
        ({"colour": "red"}, 422, "validation-failed", "data", "unknown field `colour`"),
        (
            {"fields": [{"name": "a", "type": "string", "y": 1}]},
            422,
            "validation-failed",
            "fields[0]",
            "`y`",
        ),
    ],
)
async def test_bad_create_requests(
    client: Client,
    harness: Harness,
    body: dict[str, Any],
    status: int,
    slug: str,
    field: str,
    reason: str,
) -> None:
    response = await client.post(
        "/v1/connectors", json={"name": "Orders", "fields": ORDER_FIELDS, **body}
    )
    found = problems(response, status, slug)
    assert any(field in p["field"] and reason in p["reason"] for p in found), found
    assert_nothing_made(harness)


async def test_every_problem_is_reported_at_once(client: Client) -> None:
    body = {"name": "", "fields": [], "partitions": 0}
    found = problems(await client.post("/v1/connectors", json=body), 422, "invalid-connector")
    assert [p["field"] for p in found] == ["name", "fields", "partitions"]


async def test_malformed_json_is_400(client: Client, harness: Harness) -> None:
    response = await client.post(
        "/v1/connectors", content=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    problems(response, 400, "malformed-request")
    assert_nothing_made(harness)


async def test_a_taken_name_is_409_case_insensitively(client: Client, harness: Harness) -> None:
    await create(client, name="Orders")
    topics_before = dict(harness.topics.topics)
    response = await client.post("/v1/connectors", json={"name": "ORDERS", "fields": ORDER_FIELDS})
    assert problems(response, 409, "name-taken")[0]["field"] == "name"
    assert harness.topics.topics == topics_before  # no topics made for a name known to be taken


# --- A create that fails part-way leaves nothing behind. ---


async def test_name_taken_by_another_instance_during_create(
    client: Client, harness: Harness
) -> None:
    other = Connector(
        id="con_other",
        name="orders",
        fields=[],
        topic="inlet.con_other",
        rejected_topic="inlet.con_other.rejected",
        subject="inlet.con_other-value",
        record_name="orders",
        schema_id=99,
        schema_version=1,
        token_hash="x",
        created_at=START,
        updated_at=START,
    )
    value = connector_record_value(other)
    harness.log.written_first = [Record(CONNECTORS_TOPIC, b"con_other", value)]
    response = await client.post("/v1/connectors", json={"name": "Orders", "fields": ORDER_FIELDS})
    problems(response, 409, "name-taken")
    assert harness.topics.topics == {}  # created, then deleted again
    assert harness.schemas.subjects(deleted=True) == []
    assert [c.id for c in harness.connectors.all()] == ["con_other"]


async def test_failed_write_removes_the_topics(client: Client, harness: Harness) -> None:
    harness.log.fail_write = KafkaUnavailable("the state log write failed")
    response = await client.post("/v1/connectors", json={"name": "Orders", "fields": ORDER_FIELDS})
    problems(response, 503, "kafka-unavailable")
    assert response.headers["retry-after"] == "1"
    assert_nothing_made(harness)
    assert harness.log.records == []


async def test_failed_topic_creation_writes_nothing(client: Client, harness: Harness) -> None:
    harness.topics.fail_create = InvalidConnector(
        "Kafka refused the connector's topics",
        problems=[Problem(field="replication_factor", reason="too few brokers")],
    )
    response = await client.post(
        "/v1/connectors", json={"name": "Orders", "fields": ORDER_FIELDS, "replication_factor": 5}
    )
    assert problems(response, 422, "invalid-connector")[0]["field"] == "replication_factor"
    assert_nothing_made(harness)


def test_kafka_topic_errors_become_domain_errors() -> None:
    refused = _topic_error(
        [("t", KafkaError(KafkaError.INVALID_REPLICATION_FACTOR, "3 > 1 broker")), ("u", None)]
    )
    assert isinstance(refused, InvalidConnector)
    assert refused.problems[0].field == "replication_factor"
    down = _topic_error([("t", KafkaError(KafkaError._TRANSPORT, "down")), ("u", None)])
    assert isinstance(down, KafkaUnavailable)
    assert down.retryable
    assert "u: timed out" in down.message


# --- Listing. ---


async def test_pagination(client: Client, harness: Harness) -> None:
    ids = []
    for n in range(5):
        ids.append((await create(client, name=f"c{n}"))["id"])
        harness.clock.advance(1)
    first = (await client.get("/v1/connectors", params={"limit": 2})).json()
    assert [c["id"] for c in first["data"]] == ids[:2]
    # Deleting a listed connector does not move the next page.
    assert (await client.delete(f"/v1/connectors/{ids[0]}")).status_code == 204
    second = (
        await client.get("/v1/connectors", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    assert [c["id"] for c in second["data"]] == ids[2:4]
    last = (
        await client.get("/v1/connectors", params={"limit": 2, "cursor": second["next_cursor"]})
    ).json()
    assert last == {"data": [last["data"][0]], "next_cursor": None}
    assert last["data"][0]["id"] == ids[4]
    everything = (await client.get("/v1/connectors")).json()
    assert [c["id"] for c in everything["data"]] == ids[1:]
    assert everything["next_cursor"] is None


async def test_an_exact_last_page_has_no_cursor(client: Client) -> None:
    await create(client, name="a")
    await create(client, name="b")
    page = (await client.get("/v1/connectors", params={"limit": 2})).json()
    assert len(page["data"]) == 2
    assert page["next_cursor"] is None
    assert (await client.get("/v1/connectors")).json() == {
        "data": page["data"],
        "next_cursor": None,
    }


@pytest.mark.parametrize("limit", ["0", "201", "ten"])
async def test_bad_limits(client: Client, limit: str) -> None:
    response = await client.get("/v1/connectors", params={"limit": limit})
    assert problems(response, 422, "validation-failed")[0]["field"] == "limit"


@pytest.mark.parametrize(
    "cursor",
    [
        "%%%",
        base64.urlsafe_b64encode(b'["2026-01-01T00:00:00", "x"]').decode(),  # no time zone
        base64.urlsafe_b64encode(b'{"a": 1}').decode(),
    ],
)
async def test_bad_cursors(client: Client, cursor: str) -> None:
    response = await client.get("/v1/connectors", params={"cursor": cursor})
    assert problems(response, 400, "invalid-cursor")[0]["field"] == "cursor"


async def test_max_page_size(client: Client) -> None:
    response = await client.get("/v1/connectors", params={"limit": 200})
    assert response.json() == {"data": [], "next_cursor": None}


# --- PATCH. ---


async def test_patch_name_description_and_settings(client: Client, harness: Harness) -> None:
    created = await create(client)
    harness.clock.advance(60)
    changes = {
        "name": "Shop orders",
        "description": "from the shop",
        "atomic": True,
        "reject_unknown_fields": True,
        "rate_limit_per_s": 10,
        "on_delete": "keep",
        "partitions": 3,  # unchanged: allowed
    }
    response = await client.patch(f"/v1/connectors/{created['id']}", json=changes)
    assert response.status_code == 200, response.text
    patched = response.json()
    for key in ("name", "description", "atomic", "reject_unknown_fields", "on_delete"):
        assert patched[key] == changes[key]
    assert patched["rate_limit_per_s"] == 10
    assert patched["updated_at"] == "2026-01-01T00:01:00Z"
    assert patched["created_at"] == created["created_at"]
    # A rename keeps the schema: the record name was fixed at creation.
    assert (patched["record_name"], patched["schema_id"], patched["schema_version"]) == (
        "Orders",
        created["schema_id"],
        1,
    )
    assert "token" not in patched
    assert harness.connectors.by_name("shop orders") is not None
    assert harness.connectors.by_name("Orders") is None
    cleared = await client.patch(f"/v1/connectors/{created['id']}", json={"rate_limit_per_s": None})
    assert cleared.json()["rate_limit_per_s"] is None


async def test_an_envelope_is_set_changed_and_cleared(client: Client, harness: Harness) -> None:
    created = await create(client)
    assert created["envelope"] is None
    url = f"/v1/connectors/{created['id']}"
    for envelope in ("firehose", "pubsub-push", "cloudevents", None):
        patched = await client.patch(url, json={"envelope": envelope})
        assert patched.status_code == 200, patched.text
        assert patched.json()["envelope"] == envelope
        stored = harness.connectors.get(created["id"])
        assert stored is not None
        assert stored.envelope == envelope
    made = await client.post(
        "/v1/connectors",
        json={"name": "Firehose", "fields": ORDER_FIELDS, "envelope": "firehose"},
    )
    assert made.status_code == 201, made.text
    assert made.json()["envelope"] == "firehose"


async def test_patch_without_changes_writes_nothing(client: Client, harness: Harness) -> None:
    created = await create(client)
    written = len(harness.log.records)
    harness.clock.advance(60)
    for body in ({}, {"name": "Orders", "fields": ORDER_FIELDS}):
        response = await client.patch(f"/v1/connectors/{created['id']}", json=body)
        assert response.status_code == 200
        assert response.json()["updated_at"] == created["updated_at"]
    assert len(harness.log.records) == written


async def test_patch_names(client: Client) -> None:
    first = await create(client, name="Orders")
    await create(client, name="Refunds")
    url = f"/v1/connectors/{first['id']}"
    assert problems(await client.patch(url, json={"name": "refunds"}), 409, "name-taken")
    # Its own name in another case is not taken.
    assert (await client.patch(url, json={"name": "ORDERS"})).json()["name"] == "ORDERS"
    found = problems(await client.patch(url, json={"name": ""}), 422, "invalid-connector")
    assert found[0]["field"] == "name"


async def test_patch_compatible_fields_registers_a_new_version(
    client: Client, harness: Harness
) -> None:
    created = await create(client)
    fields = [*ORDER_FIELDS, {"name": "note", "type": "string", "nullable": True}]
    response = await client.patch(f"/v1/connectors/{created['id']}", json={"fields": fields})
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["fields"] == fields
    assert patched["schema_version"] == 2
    assert patched["schema_id"] != created["schema_id"]
    assert harness.schemas.versions(created["subject"]) == [1, 2]
    # The same fields again: no new version.
    again = await client.patch(f"/v1/connectors/{created['id']}", json={"fields": fields})
    assert again.json()["schema_version"] == 2
    assert harness.schemas.versions(created["subject"]) == [1, 2]


async def test_patch_incompatible_fields_is_409_and_changes_nothing(
    client: Client, harness: Harness
) -> None:
    created = await create(client)
    before = harness.connectors.get(created["id"])
    written = len(harness.log.records)
    fields = [*ORDER_FIELDS, {"name": "customer", "type": "string"}]  # required, no default
    response = await client.patch(
        f"/v1/connectors/{created['id']}", json={"fields": fields, "name": "Renamed"}
    )
    found = problems(response, 409, "incompatible-schema")
    assert found
    assert all(p["field"] == "fields" for p in found)
    assert any("customer" in p["reason"] for p in found)
    assert harness.connectors.get(created["id"]) == before
    assert len(harness.log.records) == written
    assert harness.schemas.versions(created["subject"]) == [1]


async def test_patch_follows_the_subject_compatibility_level(client: Client) -> None:
    created = await create(client)
    level = await client.put(f"/config/{created['subject']}", json={"compatibility": "NONE"})
    assert level.status_code == 200
    fields = [{"name": "something_else", "type": "integer"}]
    response = await client.patch(f"/v1/connectors/{created['id']}", json={"fields": fields})
    assert response.status_code == 200, response.text
    assert response.json()["schema_version"] == 2


async def test_patch_key_field(client: Client) -> None:
    created = await create(client, key_field="order_id")
    url = f"/v1/connectors/{created['id']}"
    assert (await client.patch(url, json={"key_field": None})).json()["key_field"] is None
    assert (await client.patch(url, json={"key_field": "order_id"})).json()["key_field"] == (
        "order_id"
    )
    nullable = [{"name": "order_id", "type": "string", "nullable": True}, ORDER_FIELDS[1]]
    found = problems(await client.patch(url, json={"fields": nullable}), 422, "invalid-connector")
    assert found == [
        {
            "field": "key_field",
            "reason": "field 'order_id' is nullable; a key must always be present",
        }
    ]
    found = problems(
        await client.patch(url, json={"key_field": "total2"}), 422, "invalid-connector"
    )
    assert found[0]["field"] == "key_field"


@pytest.mark.parametrize(
    ("body", "slug", "field"),
    [
        ({"partitions": 12}, "invalid-connector", "partitions"),
        ({"replication_factor": 3}, "invalid-connector", "replication_factor"),
        ({"fields": []}, "invalid-connector", "fields"),
        ({"fields": _UNKNOWN_TYPE}, "validation-failed", "fields[0].type"),
        ({"rate_limit_per_s": -1}, "invalid-connector", "rate_limit_per_s"),
        ({"envelope": "kinesis"}, "validation-failed", "envelope"),
        ({"token_hash": "mine"}, "validation-failed", "data"),
        ({"status": "saved"}, "validation-failed", "data"),
    ],
)
async def test_bad_patches(
    client: Client, harness: Harness, body: dict[str, Any], slug: str, field: str
) -> None:
    created = await create(client)
    before = harness.connectors.get(created["id"])
    response = await client.patch(f"/v1/connectors/{created['id']}", json=body)
    assert problems(response, 422, slug)[0]["field"] == field
    assert harness.connectors.get(created["id"]) == before


# --- DELETE. ---


async def test_delete_removes_topics_and_subject_and_frees_the_name(
    client: Client, harness: Harness
) -> None:
    created = await create(client)
    response = await client.delete(f"/v1/connectors/{created['id']}")
    assert response.status_code == 204
    assert response.content == b""
    problems(await client.get(f"/v1/connectors/{created['id']}"), 404, "connector-not-found")
    assert harness.connectors.by_token_hash(token_hash(created["token"])) is None
    assert harness.topics.topics == {}
    # The subject is soft-deleted: its schema id still resolves.
    assert harness.schemas.versions(created["subject"]) == []
    assert harness.schemas.versions(created["subject"], deleted=True) == [1]
    assert (await client.get(f"/schemas/ids/{created['schema_id']}")).status_code == 200
    # The name is free again.
    again = await create(client)
    assert again["id"] != created["id"]


@pytest.mark.parametrize(
    ("on_delete", "query", "kept"),
    [
        ("keep", None, True),
        ("delete", "keep", True),
        ("keep", "delete", False),
        ("delete", None, False),
    ],
)
async def test_delete_topic_policy(
    client: Client, harness: Harness, on_delete: str, query: str | None, kept: bool
) -> None:
    created = await create(client, on_delete=on_delete)
    params = {} if query is None else {"topics": query}
    response = await client.delete(f"/v1/connectors/{created['id']}", params=params)
    assert response.status_code == 204
    assert harness.connectors.get(created["id"]) is None
    assert (created["topic"] in harness.topics.topics) is kept
    assert (created["rejected_topic"] in harness.topics.topics) is kept
    # Kept topics keep a live subject: their data needs it.
    assert bool(harness.schemas.versions(created["subject"])) is kept


async def test_delete_with_a_bad_topics_policy(client: Client, harness: Harness) -> None:
    created = await create(client)
    response = await client.delete(f"/v1/connectors/{created['id']}", params={"topics": "archive"})
    assert problems(response, 422, "validation-failed")[0]["field"] == "topics"
    assert harness.connectors.get(created["id"]) is not None


async def test_delete_after_the_subject_was_deleted_elsewhere(
    client: Client, harness: Harness
) -> None:
    created = await create(client)
    assert (await client.delete(f"/subjects/{created['subject']}")).status_code == 200
    assert (await client.delete(f"/v1/connectors/{created['id']}")).status_code == 204
    assert harness.topics.topics == {}


async def test_delete_succeeds_when_topic_deletion_fails(
    client: Client, harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    created = await create(client)

    async def refuse(names: Sequence[str]) -> None:
        raise KafkaUnavailable("no")

    harness.topics.delete = refuse  # type: ignore[method-assign]
    response = await client.delete(f"/v1/connectors/{created['id']}")
    assert response.status_code == 204  # the connector is gone; the log names the topics
    assert harness.connectors.get(created["id"]) is None
    assert any("could not delete topics" in r.getMessage() for r in caplog.records)


# --- Duplicate. ---


async def test_duplicate(client: Client, harness: Harness) -> None:
    source = await create(client, key_field="order_id", partitions=4, atomic=True)
    harness.clock.advance(5)
    response = await client.post(f"/v1/connectors/{source['id']}/duplicate", json={"name": "Copy"})
    assert response.status_code == 201, response.text
    copy = response.json()
    for key in ("id", "token", "ingest_url", "topic", "rejected_topic", "subject", "created_at"):
        assert copy[key] != source[key], key
    assert copy["name"] == "Copy"
    assert copy["ingest_url"] == f"{GATEWAY}/v1/ingest/{copy['token']}"
    for key in ("fields", "key_field", "partitions", "atomic", "record_name", "schema_id"):
        assert copy[key] == source[key], key
    assert copy["status"] == "awaiting_samples"
    assert copy["schema_version"] == 1
    assert harness.topics.topics[copy["topic"]].partitions == 4
    assert harness.schemas.subjects() == sorted([source["subject"], copy["subject"]])
    # Both tokens work, each for its own connector.
    for made in (source, copy):
        found = harness.connectors.by_token_hash(token_hash(made["token"]))
        assert found is not None
        assert found.id == made["id"]


async def test_duplicate_of_a_saved_connector_awaits_samples(
    client: Client, harness: Harness
) -> None:
    source = await create(client)
    saved = harness.connectors.get(source["id"])
    assert saved is not None
    value = connector_record_value(
        Connector(**{**{f: getattr(saved, f) for f in saved.__struct_fields__}, "status": "saved"})
    )
    harness.connectors.apply(CONNECTORS_TOPIC, saved.id.encode(), value)
    copy = await client.post(f"/v1/connectors/{source['id']}/duplicate", json={"name": "Copy"})
    assert copy.json()["status"] == "awaiting_samples"


async def test_bad_duplicates(client: Client, harness: Harness) -> None:
    source = await create(client)
    url = f"/v1/connectors/{source['id']}/duplicate"
    assert problems(await client.post(url, json={"name": "ORDERS"}), 409, "name-taken")
    assert problems(await client.post(url, json={"name": " "}), 422, "invalid-connector")
    extra = await client.post(url, json={"name": "Copy", "fields": []})
    assert problems(extra, 422, "validation-failed")
    assert problems(await client.post(url, json={}), 422, "validation-failed")
    assert len(harness.connectors.all()) == 1
    assert len(harness.topics.topics) == 2


# --- Token rotation. ---


async def test_rotate_without_grace_ends_the_old_token(client: Client, harness: Harness) -> None:
    created = await create(client)
    harness.clock.advance(10)
    response = await client.post(f"/v1/connectors/{created['id']}/rotate-token")
    assert response.status_code == 200, response.text
    rotated = response.json()
    assert rotated["token"] != created["token"]
    assert rotated["ingest_url"] == f"{GATEWAY}/v1/ingest/{rotated['token']}"
    assert rotated["previous_token_expires_at"] is None
    assert rotated["updated_at"] == "2026-01-01T00:00:10Z"
    assert harness.connectors.by_token_hash(token_hash(created["token"])) is None
    assert harness.connectors.by_token_hash(token_hash(rotated["token"])) is not None
    got = await client.get(f"/v1/connectors/{created['id']}")
    assert rotated["token"] not in got.text


async def test_rotate_with_grace_keeps_the_old_token_for_a_while(
    client: Client, harness: Harness
) -> None:
    created = await create(client)
    url = f"/v1/connectors/{created['id']}/rotate-token"
    rotated = (await client.post(url, json={"grace_period_s": 60})).json()
    assert rotated["previous_token_expires_at"] == "2026-01-01T00:01:00Z"
    old, new = token_hash(created["token"]), token_hash(rotated["token"])
    assert harness.connectors.by_token_hash(old, now=START + timedelta(seconds=59)) is not None
    assert harness.connectors.by_token_hash(old, now=START + timedelta(seconds=60)) is None
    assert harness.connectors.by_token_hash(new, now=START + timedelta(days=1)) is not None
    # Rotating again replaces the previous token: only the last one has a grace period.
    again = (await client.post(url, json={"grace_period_s": 0})).json()
    assert harness.connectors.by_token_hash(new, now=START) is None
    assert harness.connectors.by_token_hash(old, now=START) is None
    assert harness.connectors.by_token_hash(token_hash(again["token"])) is not None


@pytest.mark.parametrize("body", [{"grace_period_s": -1}, {"grace_period_s": 86401}, {"x": 1}])
async def test_bad_rotations(client: Client, harness: Harness, body: dict[str, Any]) -> None:
    created = await create(client)
    response = await client.post(f"/v1/connectors/{created['id']}/rotate-token", json=body)
    problems(response, 422, "validation-failed")
    assert harness.connectors.by_token_hash(token_hash(created["token"])) is not None


async def test_rotate_accepts_the_maximum_grace(client: Client) -> None:
    created = await create(client)
    url = f"/v1/connectors/{created['id']}/rotate-token"
    rotated = (await client.post(url, json={"grace_period_s": 86400})).json()
    assert rotated["previous_token_expires_at"] == "2026-01-02T00:00:00Z"


# --- Authentication. ---


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", f"Token {ADMIN_TOKEN}", "Basic !!!", ADMIN_TOKEN],
)
async def test_admin_token_is_required(harness: Harness, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with AsyncTestClient(harness.app) as anonymous:
        response = await anonymous.get("/v1/connectors", headers=headers)
        problems(response, 401, "unauthorized")
        create_response = await anonymous.post(
            "/v1/connectors", json={"name": "x", "fields": ORDER_FIELDS}, headers=headers
        )
        assert create_response.status_code == 401
    assert_nothing_made(harness)


async def test_basic_auth_with_the_token_as_password(harness: Harness) -> None:
    credentials = base64.b64encode(f"anyone:{ADMIN_TOKEN}".encode()).decode()
    async with AsyncTestClient(harness.app) as basic:
        response = await basic.get(
            "/v1/connectors", headers={"Authorization": f"Basic {credentials}"}
        )
    assert response.status_code == 200
    assert response.json() == {"data": [], "next_cursor": None}


@pytest.mark.parametrize(
    "path", ["/subjects", "/schemas/ids/1", "/schemas/types", "/config", "/v1/connectors"]
)
async def test_every_api_path_needs_the_token_but_docs_and_health_do_not(
    harness: Harness, path: str
) -> None:
    async with AsyncTestClient(harness.app) as anonymous:
        assert (await anonymous.get(path)).status_code == 401
        assert (await anonymous.get("/schema/openapi.json")).status_code != 401
