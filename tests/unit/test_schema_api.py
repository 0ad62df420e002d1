"""The Confluent-compatible HTTP API over an in-memory log, and the registry's error table."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import Litestar, get, post
from litestar.params import JSONBody
from litestar.testing import TestClient

from inlet.errors import (
    KafkaUnavailable,
    Problem,
    StateUnavailable,
    StoreTimeout,
    SubjectNotFound,
)
from inlet.model.schemas import SchemaVersion, canonical_json, schema_record
from inlet.settings import Settings
from inlet.statelog.fold import InMemoryStateLog
from tests.registry_app import ADMIN_TOKEN, InMemoryRegistry

MEDIA = "application/vnd.schemaregistry.v1+json"
SUBJECT = "inlet.abc-value"
V1 = {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]}
V2 = {
    "type": "record",
    "name": "R",
    "fields": [{"name": "a", "type": "int"}, {"name": "b", "type": "string", "default": ""}],
}
V2_NO_DEFAULT = {
    "type": "record",
    "name": "R",
    "fields": [{"name": "a", "type": "int"}, {"name": "b", "type": "string"}],
}

Client = TestClient[Litestar]


class _Body(msgspec.Struct):
    name: str


@get("/v1/missing")
async def _admin_missing() -> None:
    raise SubjectNotFound("no such thing", problems=[Problem("subject", "unknown")])


@get("/v1/kafka-down")
async def _admin_kafka_down() -> None:
    raise KafkaUnavailable("Kafka is unavailable")


@get("/v1/slow")
async def _admin_slow() -> None:
    raise StoreTimeout("no confirmation in time")


@post("/v1/things")
async def _admin_post(data: JSONBody[_Body]) -> str:
    return data.name


@get("/v1/boom")
async def _admin_boom() -> None:
    raise RuntimeError("secret detail")


@get("/boom")
async def _confluent_boom() -> None:
    raise RuntimeError("secret detail")


@pytest.fixture
def registry(tmp_path: Path) -> InMemoryRegistry[InMemoryStateLog]:
    return InMemoryRegistry(Settings(data_dir=str(tmp_path)), InMemoryStateLog)


@pytest.fixture
def log(registry: InMemoryRegistry[InMemoryStateLog]) -> InMemoryStateLog:
    return registry.log


@pytest.fixture
def client(registry: InMemoryRegistry[InMemoryStateLog]) -> Iterator[Client]:
    # The registry app, plus admin and Confluent routes that fail the ways its handlers can.
    for handler in (
        _admin_missing,
        _admin_kafka_down,
        _admin_slow,
        _admin_post,
        _admin_boom,
        _confluent_boom,
    ):
        registry.app.register(handler)
    with TestClient(registry.app) as test_client:
        test_client.headers["Content-Type"] = MEDIA
        test_client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        yield test_client


def _register(client: Client, schema: object, subject: str = SUBJECT, **extra: Any) -> Any:
    body = {"schema": schema if isinstance(schema, str) else json.dumps(schema), **extra}
    return client.post(f"/subjects/{subject}/versions", json=body)


def _id(client: Client, schema: object, subject: str = SUBJECT) -> int:
    response = _register(client, schema, subject)
    assert response.status_code == 200, response.text
    schema_id = response.json()["id"]
    assert isinstance(schema_id, int)
    return schema_id


def _error(response: Any, status: int, code: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == MEDIA
    body = response.json()
    assert body["error_code"] == code
    assert set(body) == {"error_code", "message"}
    message = body["message"]
    assert isinstance(message, str)
    return message


# --- Registration. ---


def test_register_is_idempotent_and_writes_once(client: Client, log: InMemoryStateLog) -> None:
    response = _register(client, V1)
    assert response.status_code == 200
    assert response.headers["content-type"] == MEDIA
    assert response.json() == {"id": 1}
    # The same schema, formatted differently, is the same schema.
    assert _id(client, json.dumps(V1, indent=2)) == 1
    assert len(log.records) == 1


def test_ids_are_global_and_versions_per_subject(client: Client) -> None:
    assert _id(client, V1) == 1
    assert _id(client, V2) == 2
    assert _id(client, V2, "other-value") == 2
    assert _id(client, V1, "other-value") == 1
    assert _id(client, '"string"', "third") == 3
    assert client.get(f"/subjects/{SUBJECT}/versions").json() == [1, 2]
    assert client.get("/subjects/other-value/versions").json() == [1, 2]
    assert client.get("/subjects").json() == ["inlet.abc-value", "other-value", "third"]
    assert client.get("/schemas/ids/2/subjects").json() == [SUBJECT, "other-value"]
    assert client.get("/schemas/ids/2/versions").json() == [
        {"subject": SUBJECT, "version": 2},
        {"subject": "other-value", "version": 1},
    ]


def test_get_version_and_raw_schema_return_avros_text(client: Client) -> None:
    _id(client, json.dumps(V1, indent=1))
    _id(client, V1, "other-value")  # the same schema, other spelling: one id, one text
    text = '{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}'
    expected = {"subject": SUBJECT, "version": 1, "id": 1, "schema": text}
    for version in ("1", "latest", "-1"):
        response = client.get(f"/subjects/{SUBJECT}/versions/{version}")
        assert response.status_code == 200
        assert response.headers["content-type"] == MEDIA
        assert response.json() == expected
    assert client.get(f"/subjects/{SUBJECT}/versions/1/schema").text == text
    assert client.get("/subjects/other-value/versions/1").json()["schema"] == text
    assert client.get("/schemas/ids/1").json() == {"schema": text}
    assert client.get("/schemas/ids/1?subject=other-value").json() == {"schema": text}
    assert client.get("/schemas/ids/1/schema").text == text


def test_normalize_stores_the_canonical_text(client: Client) -> None:
    path = f"/subjects/{SUBJECT}/versions"
    response = client.post(f"{path}?normalize=true", json={"schema": json.dumps(V2, indent=2)})
    assert response.status_code == 200
    stored = client.get(f"{path}/1").json()["schema"]
    assert stored == json.dumps(V2, separators=(",", ":"))  # V2 is in Avro's key order


def test_incompatible_schema_is_409_with_reasons(client: Client, log: InMemoryStateLog) -> None:
    _id(client, V1)
    message = _error(_register(client, V2_NO_DEFAULT), 409, 409)
    assert "incompatible" in message
    assert "'b'" in message
    assert len(log.records) == 1


def test_subject_level_overrides_global(client: Client) -> None:
    _id(client, V1)
    assert client.put(f"/config/{SUBJECT}", json={"compatibility": "NONE"}).json() == {
        "compatibility": "NONE"
    }
    assert _id(client, V2_NO_DEFAULT) == 2


@pytest.mark.parametrize(
    "schema",
    [
        "{not json",
        '{"type": "record", "name": "R", "fields": [{"name": "a", "type": "strng"}]}',
        '{"type": "enum", "name": "E", "symbols": [1]}',
        '{"type": "array"}',
    ],
)
def test_invalid_avro_is_42201(client: Client, schema: str) -> None:
    assert _error(_register(client, schema), 422, 42201).startswith("Invalid")


def test_other_schema_types_and_references_are_42201(client: Client) -> None:
    _error(_register(client, V1, schemaType="PROTOBUF"), 422, 42201)
    references = [{"name": "x", "subject": "x", "version": 1}]
    _error(_register(client, V1, references=references), 422, 42201)
    assert client.get("/schemas/types").json() == ["AVRO"]


def test_malformed_and_invalid_bodies_are_422(client: Client) -> None:
    response = client.post(f"/subjects/{SUBJECT}/versions", content=b"{nope")
    _error(response, 422, 422)
    _error(client.post(f"/subjects/{SUBJECT}/versions", json={"schema": 5}), 422, 422)
    assert _error(client.post(f"/subjects/{SUBJECT}/versions", json={}), 422, 42201) == (
        "Empty schema"
    )


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/vnd.schemaregistry+json"]
)
def test_accepts_plain_json_media_types(client: Client, content_type: str) -> None:
    response = client.post(
        f"/subjects/{SUBJECT}/versions",
        content=json.dumps({"schema": json.dumps(V1)}),
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == MEDIA


def test_subjects_with_url_encoded_characters(client: Client) -> None:
    assert _id(client, V1, "ctx%3Aname%20with%20space") == 1
    assert client.get("/subjects").json() == ["ctx:name with space"]
    assert client.get("/subjects/ctx%3Aname%20with%20space/versions").json() == [1]


# --- Reads and lookups. ---


def test_version_errors(client: Client) -> None:
    _error(client.get("/subjects/nope/versions"), 404, 40401)
    _error(client.get("/subjects/nope/versions/1"), 404, 40401)
    _id(client, V1)
    _error(client.get(f"/subjects/{SUBJECT}/versions/2"), 404, 40402)
    for bad in ("0", "-2", "one", "1.5", str(2**31)):
        _error(client.get(f"/subjects/{SUBJECT}/versions/{bad}"), 422, 42202)
    _error(client.get("/schemas/ids/99"), 404, 40403)
    _error(client.get("/schemas/ids/99/subjects"), 404, 40403)
    _error(client.get("/schemas/ids/99/versions"), 404, 40403)


def test_lookup(client: Client) -> None:
    _id(client, V1)
    _id(client, V2)
    response = client.post(f"/subjects/{SUBJECT}", json={"schema": json.dumps(V1, indent=3)})
    assert response.status_code == 200
    compact = json.dumps(V1, separators=(",", ":"))
    assert response.json() == {"subject": SUBJECT, "version": 1, "id": 1, "schema": compact}
    _error(client.post("/subjects/nope", json={"schema": json.dumps(V1)}), 404, 40401)
    _error(client.post(f"/subjects/{SUBJECT}", json={"schema": '"string"'}), 404, 40403)
    _error(client.post(f"/subjects/{SUBJECT}", json={"schema": "{"}), 422, 42201)


# --- Deletes. ---


def test_soft_then_permanent_version_delete(client: Client) -> None:
    _id(client, V1)
    _id(client, V2)
    _error(client.delete(f"/subjects/{SUBJECT}/versions/1?permanent=true"), 404, 40407)
    response = client.delete(f"/subjects/{SUBJECT}/versions/1")
    assert response.status_code == 200
    assert response.json() == 1
    _error(client.delete(f"/subjects/{SUBJECT}/versions/1"), 404, 40406)
    assert client.get(f"/subjects/{SUBJECT}/versions").json() == [2]
    assert client.get(f"/subjects/{SUBJECT}/versions?deleted=true").json() == [1, 2]
    _error(client.get(f"/subjects/{SUBJECT}/versions/1"), 404, 40402)
    assert client.get(f"/subjects/{SUBJECT}/versions/1?deleted=true").json()["id"] == 1
    assert client.get("/schemas/ids/1").status_code == 200  # soft-deleted ids still resolve
    assert client.delete(f"/subjects/{SUBJECT}/versions/1?permanent=true").json() == 1
    _error(client.get(f"/subjects/{SUBJECT}/versions/1?deleted=true"), 404, 40402)
    _error(client.get("/schemas/ids/1"), 404, 40403)
    _error(client.delete(f"/subjects/{SUBJECT}/versions/7"), 404, 40402)
    _error(client.delete("/subjects/nope/versions/1"), 404, 40401)
    _error(client.delete(f"/subjects/{SUBJECT}/versions/x"), 422, 42202)


def test_delete_latest_soft_deletes_the_latest_live_version(client: Client) -> None:
    _id(client, V1)
    _id(client, V2)
    assert client.delete(f"/subjects/{SUBJECT}/versions/latest").json() == 2
    assert client.delete(f"/subjects/{SUBJECT}/versions/latest").json() == 1
    _error(client.delete(f"/subjects/{SUBJECT}/versions/latest"), 404, 40402)


def test_soft_then_permanent_subject_delete(client: Client) -> None:
    _id(client, V1)
    _id(client, V2)
    _error(client.delete(f"/subjects/{SUBJECT}?permanent=true"), 404, 40405)
    response = client.delete(f"/subjects/{SUBJECT}")
    assert response.status_code == 200
    assert response.json() == [1, 2]
    _error(client.delete(f"/subjects/{SUBJECT}"), 404, 40404)
    assert client.get("/subjects").json() == []
    assert client.get("/subjects?deleted=true").json() == [SUBJECT]
    _error(client.get(f"/subjects/{SUBJECT}/versions"), 404, 40401)
    assert client.get(f"/subjects/{SUBJECT}/versions?deleted=true").json() == [1, 2]
    assert client.delete(f"/subjects/{SUBJECT}?permanent=true").json() == [1, 2]
    assert client.get("/subjects?deleted=true").json() == []
    _error(client.delete(f"/subjects/{SUBJECT}"), 404, 40401)


def test_reregistering_a_soft_deleted_schema_keeps_its_id_with_a_new_version(
    client: Client,
) -> None:
    _id(client, V1)
    client.delete(f"/subjects/{SUBJECT}")
    assert _id(client, V1) == 1
    assert client.get(f"/subjects/{SUBJECT}/versions").json() == [2]
    assert client.get(f"/subjects/{SUBJECT}/versions/latest").json()["id"] == 1


def test_permanently_deleted_schemas_get_their_id_back_and_ids_are_not_reused(
    client: Client,
) -> None:
    _id(client, V1)
    client.delete(f"/subjects/{SUBJECT}")
    client.delete(f"/subjects/{SUBJECT}?permanent=true")
    assert _id(client, V2, "other-value") == 2  # a new schema never gets a freed id
    assert _id(client, V1) == 1  # the same schema gets its own back, as in a running Confluent
    assert client.get(f"/subjects/{SUBJECT}/versions").json() == [1]


def test_an_id_holding_another_schema_is_not_given_with_its_text(
    client: Client, log: InMemoryStateLog
) -> None:
    # A log another writer made: id 1 stored with V1, and then with V2 too.
    for version in (
        SchemaVersion("a", 1, 1, json.dumps(V1)),
        SchemaVersion("b", 1, 1, json.dumps(V2)),
    ):
        record = schema_record(version)
        log.folder.apply(record.topic, record.key, record.value)
    assert _id(client, V2, "c") == 2  # V2 under 1 would read as V1
    assert client.get("/schemas/ids/2").json()["schema"] == canonical_json(V2)


# --- Compatibility levels. ---


def test_global_config(client: Client) -> None:
    assert client.get("/config").json() == {"compatibilityLevel": "BACKWARD"}
    response = client.put("/config", json={"compatibility": "full"})
    assert response.status_code == 200
    assert response.json() == {"compatibility": "FULL"}
    assert client.get("/config").json() == {"compatibilityLevel": "FULL"}
    assert client.delete("/config").json() == {"compatibilityLevel": "FULL"}
    assert client.get("/config").json() == {"compatibilityLevel": "BACKWARD"}
    _error(client.put("/config", json={"compatibility": "SIDEWAYS"}), 422, 42203)
    _error(client.put("/config", json={}), 422, 42203)


def test_subject_config(client: Client) -> None:
    _error(client.get(f"/config/{SUBJECT}"), 404, 40408)
    assert client.get(f"/config/{SUBJECT}?defaultToGlobal=true").json() == {
        "compatibilityLevel": "BACKWARD"
    }
    _error(client.delete(f"/config/{SUBJECT}"), 404, 40401)
    client.put(f"/config/{SUBJECT}", json={"compatibility": "FORWARD_TRANSITIVE"})
    assert client.get(f"/config/{SUBJECT}").json() == {"compatibilityLevel": "FORWARD_TRANSITIVE"}
    assert client.get("/config").json() == {"compatibilityLevel": "BACKWARD"}
    assert client.delete(f"/config/{SUBJECT}").json() == {
        "compatibilityLevel": "FORWARD_TRANSITIVE"
    }
    _error(client.get(f"/config/{SUBJECT}"), 404, 40408)
    _id(client, V1)
    _error(client.delete(f"/config/{SUBJECT}"), 404, 40408)


def test_deleting_a_subject_forgets_its_level(client: Client) -> None:
    _id(client, V1)
    client.put(f"/config/{SUBJECT}", json={"compatibility": "NONE"})
    client.delete(f"/subjects/{SUBJECT}/versions/1")
    _error(client.get(f"/config/{SUBJECT}"), 404, 40408)


# --- The compatibility endpoint. ---


def test_compatibility_endpoint(client: Client, log: InMemoryStateLog) -> None:
    _id(client, V1)
    path = f"/compatibility/subjects/{SUBJECT}/versions"
    response = client.post(f"{path}/latest", json={"schema": json.dumps(V2)})
    assert response.status_code == 200
    assert response.headers["content-type"] == MEDIA
    assert response.json() == {"is_compatible": True}
    response = client.post(f"{path}/1", json={"schema": json.dumps(V2_NO_DEFAULT)})
    assert response.json() == {"is_compatible": False}
    response = client.post(f"{path}/1?verbose=true", json={"schema": json.dumps(V2_NO_DEFAULT)})
    body = response.json()
    assert body["is_compatible"] is False
    assert body["messages"]
    assert client.post(path, json={"schema": json.dumps(V2)}).json() == {"is_compatible": True}
    verbose = client.post(f"{path}/latest?verbose=true", json={"schema": json.dumps(V2)}).json()
    assert verbose == {"is_compatible": True, "messages": []}
    assert len(log.records) == 1  # checking writes nothing
    _error(client.post(f"{path}/9", json={"schema": json.dumps(V2)}), 404, 40402)
    _error(client.post(f"{path}/zero", json={"schema": json.dumps(V2)}), 422, 42202)
    nope = "/compatibility/subjects/nope/versions"
    assert client.post(f"{nope}/latest", json={"schema": json.dumps(V2)}).json() == {
        "is_compatible": True
    }
    _error(client.post(f"{nope}/1", json={"schema": json.dumps(V2)}), 404, 40402)
    _error(client.post(f"{path}/latest", json={"schema": "{"}), 422, 42201)


# --- The error table. ---


def test_a_read_that_finds_nothing_on_state_that_cannot_catch_up_is_503_not_404(
    client: Client, log: InMemoryStateLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema_id = _id(client, V1)

    async def stuck(timeout_s: float = 10.0) -> None:
        raise StateUnavailable("the registry state did not catch up with the log")

    monkeypatch.setattr(log, "sync", stuck)
    # Found in the fold: answered as ever, without waiting for the log.
    assert client.get(f"/schemas/ids/{schema_id}").status_code == 200
    assert client.get(f"/subjects/{SUBJECT}/versions/1").status_code == 200
    # Not found: a 404 only a caught-up fold could stand behind, so 503 (Confluent's 50303).
    for path in (
        f"/schemas/ids/{schema_id + 1}",
        f"/schemas/ids/{schema_id + 1}/subjects",
        f"/schemas/ids/{schema_id + 1}/versions",
        "/subjects/inlet.nobody-value/versions",
        "/subjects/inlet.nobody-value/versions/1",
        f"/subjects/{SUBJECT}/versions/2",
        "/config/inlet.nobody-value",
    ):
        _error(client.get(path), 503, 50303)
    _error(client.post("/subjects/inlet.nobody-value", json={"schema": json.dumps(V1)}), 503, 50303)
    _error(
        client.post(
            "/compatibility/subjects/inlet.nobody-value/versions/1",
            json={"schema": json.dumps(V2)},
        ),
        503,
        50303,
    )


def test_an_unresolvable_reference_on_state_that_cannot_catch_up_is_503_not_42201(
    client: Client, log: InMemoryStateLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unresolvable reference is "not found" in disguise: a lookup or compatibility check
    answers 42201 only on caught-up state, as a read answers 404 (``SchemaRegistry._read``)."""
    _id(client, V1)
    refs = [{"name": "com.acme.Nowhere", "subject": "inlet.nowhere-value", "version": 1}]
    body = {"schema": json.dumps(V1), "references": refs}
    lookup = f"/subjects/{SUBJECT}"
    check = f"/compatibility/subjects/{SUBJECT}/versions/latest"
    # Caught up: the reference is truly unknown, Confluent's 42201.
    assert "No schema reference found" in _error(client.post(lookup, json=body), 422, 42201)
    assert "No schema reference found" in _error(client.post(check, json=body), 422, 42201)

    async def stuck(timeout_s: float = 10.0) -> None:
        raise StateUnavailable("the registry state did not catch up with the log")

    monkeypatch.setattr(log, "sync", stuck)
    _error(client.post(lookup, json=body), 503, 50303)
    _error(client.post(check, json=body), 503, 50303)
    # A schema that is itself invalid needs no caught-up state to be refused.
    bad = {"schema": json.dumps({"type": "record"}), "references": refs[:0]}
    _error(client.post(lookup, json=bad), 422, 42201)


def test_unknown_route_is_a_confluent_error(client: Client) -> None:
    _error(client.get("/nowhere"), 404, 404)


def test_unexpected_errors_are_500_without_details(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="registry._http_errors"):
        message = _error(client.get("/boom"), 500, 500)
        problem = client.get("/v1/boom")
    assert "secret" not in message
    assert problem.status_code == 500
    assert "secret" not in problem.text
    assert problem.json()["type"] == "https://inlet.dev/problems/internal-error"
    logged = [r for r in caplog.records if r.exc_info]
    assert len(logged) == 2


def test_admin_paths_answer_problem_json(client: Client) -> None:
    response = client.get("/v1/missing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "https://inlet.dev/problems/subject-not-found",
        "title": "Subject not found",
        "status": 404,
        "detail": "no such thing",
        "code": "subject_not_found",
        "problems": [{"field": "subject", "reason": "unknown"}],
    }


def test_retryable_kafka_errors_are_503_with_retry_after(client: Client) -> None:
    response = client.get("/v1/kafka-down")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["code"] == "kafka_unavailable"
    slow = client.get("/v1/slow")
    assert slow.status_code == 500
    assert "retry-after" not in slow.headers
    assert slow.json()["type"] == "https://inlet.dev/problems/store-timeout"


def test_admin_validation_and_malformed_bodies(client: Client) -> None:
    invalid = client.post("/v1/things", json={"name": 3})
    assert invalid.status_code == 422
    assert invalid.headers["content-type"] == "application/problem+json"
    assert invalid.json()["problems"] == [{"field": "name", "reason": "Expected `str`, got `int`"}]
    malformed = client.post("/v1/things", content=b"{oops")
    assert malformed.status_code == 400
    assert malformed.json()["type"] == "https://inlet.dev/problems/malformed-request"
