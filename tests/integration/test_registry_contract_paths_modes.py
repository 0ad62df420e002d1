"""Contract: Confluent Schema Registry's behaviour, over HTTP, on a registry on real Kafka.

Each test pins one documented Confluent behaviour (issue #11, items 1, 5 and 6): subject names
with any character, ``GET /``, ``GET /schemas``, ``subjectPrefix``, modes, compatibility against a
missing version, Avro's own text of a schema, ids of permanently deleted schemas, content
negotiation and Confluent's wording. One registry serves the module; every test uses its own
subjects.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from inlet.settings import Settings
from registry.app import create_app
from tests.servers import serve

pytestmark = pytest.mark.kafka

TOKEN = "inlet_admin_test-token"
V1 = {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]}
V2 = {
    "type": "record",
    "name": "R",
    "fields": [{"name": "a", "type": "int"}, {"name": "b", "type": "string", "default": ""}],
}
V1_TEXT = '{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}'


@pytest.fixture(scope="module")
def http(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    data_dir: Path = tmp_path_factory.mktemp("registry")
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap, data_dir=str(data_dir), admin_token=TOKEN
    )
    with (
        serve(create_app(settings)) as url,
        httpx.Client(base_url=url, auth=("any", TOKEN), timeout=60) as client,
    ):
        yield client


def _subject(shape: str = "s-{}") -> str:
    return shape.format(uuid.uuid4().hex[:8])


def _path(subject: str) -> str:
    return quote(subject, safe="")  # as Confluent's clients send it


def _register(http: httpx.Client, subject: str, schema: object, **extra: object) -> httpx.Response:
    text = schema if isinstance(schema, str) else json.dumps(schema)
    return http.post(f"/subjects/{_path(subject)}/versions", json={"schema": text, **extra})


def _error(response: httpx.Response, status: int, code: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code, body
    return str(body["message"])


# --- Item 1: every subject name, on every route. ---


@pytest.mark.parametrize("shape", ["com/acme/{}.proto", "100%-{}", "a%2Fb-{}", "sp ace:{}?#&+"])
def test_any_subject_name_works_on_every_route(http: httpx.Client, shape: str) -> None:
    subject = _subject(shape)
    s = _path(subject)
    schema_id = _register(http, subject, V1).json()["id"]
    assert subject in http.get("/subjects").json()
    assert http.get(f"/subjects/{s}/versions").json() == [1]
    assert http.get(f"/subjects/{s}/versions/1").json()["subject"] == subject
    assert http.get(f"/subjects/{s}/versions/latest/schema").text == V1_TEXT
    found = http.post(f"/subjects/{s}", json={"schema": json.dumps(V1)}).json()
    assert (found["subject"], found["id"]) == (subject, schema_id)
    assert http.get(f"/schemas/ids/{schema_id}/subjects").json() == [subject]
    assert http.put(f"/config/{s}", json={"compatibility": "NONE"}).json() == {
        "compatibility": "NONE"
    }
    assert http.get(f"/config/{s}").json() == {"compatibilityLevel": "NONE"}
    compat = http.post(f"/compatibility/subjects/{s}/versions/1", json={"schema": json.dumps(V2)})
    assert compat.json() == {"is_compatible": True}
    assert http.put(f"/mode/{s}", json={"mode": "READWRITE"}).json() == {"mode": "READWRITE"}
    assert http.get(f"/mode/{s}").json() == {"mode": "READWRITE"}
    assert http.delete(f"/mode/{s}").json() == {"mode": "READWRITE"}
    assert http.delete(f"/config/{s}").json() == {"compatibilityLevel": "NONE"}
    assert http.delete(f"/subjects/{s}/versions/1").json() == 1
    assert http.delete(f"/subjects/{s}/versions/1?permanent=true").json() == 1
    assert subject not in http.get("/subjects?deleted=true").json()


@pytest.mark.parametrize("shape", ["x/y/{}", "50%{}", "plain-{}"])
def test_an_unknown_subject_is_always_40401(http: httpx.Client, shape: str) -> None:
    subject = _subject(shape)
    s = _path(subject)
    body = {"schema": json.dumps(V1)}
    message = _error(http.get(f"/subjects/{s}/versions"), 404, 40401)
    assert message == f"Subject '{subject}' not found."
    _error(http.get(f"/subjects/{s}/versions/1"), 404, 40401)
    _error(http.get(f"/subjects/{s}/versions/1/schema"), 404, 40401)
    _error(http.post(f"/subjects/{s}", json=body), 404, 40401)
    _error(http.delete(f"/subjects/{s}"), 404, 40401)
    _error(http.delete(f"/subjects/{s}/versions/1"), 404, 40401)
    _error(http.delete(f"/config/{s}"), 404, 40401)
    _error(http.delete(f"/mode/{s}"), 404, 40401)
    _error(http.get(f"/config/{s}"), 404, 40408)
    _error(http.get(f"/mode/{s}"), 404, 40409)


# --- Item 5: the endpoints that were missing. ---


def test_root_answers_an_empty_object(http: httpx.Client) -> None:
    for accept in (None, "application/json", "*/*"):
        response = http.get("/", headers={"Accept": accept} if accept else {})
        assert response.status_code == 200
        assert response.json() == {}


def test_root_sends_a_browser_to_the_console(http: httpx.Client) -> None:
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    response = http.get("/", headers={"Accept": browser}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/"


def test_subjects_and_schemas_by_prefix(http: httpx.Client) -> None:
    prefix = _subject("pre-{}-")
    a, b = f"{prefix}a", f"{prefix}b"
    _register(http, a, V1)
    _register(http, a, V2)
    _register(http, b, V1)
    _register(http, _subject(), V1)
    assert http.get("/subjects", params={"subjectPrefix": prefix}).json() == [a, b]
    listed = http.get("/schemas", params={"subjectPrefix": prefix}).json()
    assert [(s["subject"], s["version"]) for s in listed] == [(a, 1), (a, 2), (b, 1)]
    assert listed[0] == {"subject": a, "version": 1, "id": listed[2]["id"], "schema": V1_TEXT}
    latest = http.get("/schemas", params={"subjectPrefix": prefix, "latestOnly": "true"}).json()
    assert [(s["subject"], s["version"]) for s in latest] == [(a, 2), (b, 1)]
    page = http.get("/schemas", params={"subjectPrefix": prefix, "offset": 1, "limit": 1}).json()
    assert [(s["subject"], s["version"]) for s in page] == [(a, 2)]
    http.delete(f"/subjects/{_path(b)}")
    assert http.get("/subjects", params={"subjectPrefix": prefix}).json() == [a]
    assert len(http.get("/schemas", params={"subjectPrefix": prefix}).json()) == 2
    with_deleted = http.get("/schemas", params={"subjectPrefix": prefix, "deleted": "true"})
    assert len(with_deleted.json()) == 3


def test_read_only_mode_refuses_writes(http: httpx.Client) -> None:
    subject = _subject()
    s = _path(subject)
    _register(http, subject, V1)
    assert http.get("/mode").json() == {"mode": "READWRITE"}
    assert http.get(f"/mode/{s}?defaultToGlobal=true").json() == {"mode": "READWRITE"}
    assert http.put(f"/mode/{s}", json={"mode": "READONLY"}).json() == {"mode": "READONLY"}
    message = _error(_register(http, subject, V2), 422, 42205)
    assert message == f"Subject {subject} is in read-only mode"
    _error(http.delete(f"/subjects/{s}"), 422, 42205)
    _error(http.delete(f"/subjects/{s}/versions/1"), 422, 42205)
    _error(http.put(f"/config/{s}", json={"compatibility": "NONE"}), 422, 42205)
    # A subject with no versions is unknown (40401) first, whatever its mode, as in Confluent.
    ghost = _path(_subject())
    assert http.put(f"/mode/{ghost}", json={"mode": "READONLY"}).status_code == 200
    _error(http.delete(f"/subjects/{ghost}"), 404, 40401)
    _error(http.delete(f"/subjects/{ghost}/versions/1"), 404, 40401)
    assert http.delete(f"/mode/{ghost}").status_code == 200
    # Reads still answer; what the subject already has is still its id.
    assert _register(http, subject, V1).json()["id"] > 0
    assert http.get(f"/subjects/{s}/versions").json() == [1]
    _error(http.put(f"/mode/{s}", json={"mode": "SIDEWAYS"}), 422, 42204)
    assert http.delete(f"/mode/{s}").json() == {"mode": "READONLY"}
    assert _register(http, subject, V2).status_code == 200


def test_import_mode_takes_explicit_ids_and_versions(http: httpx.Client) -> None:
    subject = _subject()
    s = _path(subject)
    _register(http, subject, V1)
    message = _error(_register(http, subject, V2, id=90001, version=5), 422, 42205)
    assert message == f"Subject {subject} is not in import mode"
    _error(http.put(f"/mode/{s}", json={"mode": "IMPORT"}), 422, 42205)  # it has schemas
    assert http.put(f"/mode/{s}?force=true", json={"mode": "IMPORT"}).json() == {"mode": "IMPORT"}
    incompatible = {"type": "record", "name": "R", "fields": [{"name": "a", "type": "string"}]}
    assert _register(http, subject, incompatible, id=90001, version=5).json() == {"id": 90001}
    assert http.get(f"/subjects/{s}/versions").json() == [1, 5]
    assert http.get("/schemas/ids/90001").json()["schema"] == json.dumps(
        incompatible, separators=(",", ":")
    )
    _error(_register(http, subject, V2, id=90001), 422, 42205)  # that id is another schema's
    _error(_register(http, subject, V2), 422, 42205)  # IMPORT takes explicit ids only
    http.delete(f"/mode/{s}")
    assert _register(http, subject, V2).status_code == 409  # READWRITE checks again


# --- Item 6: smaller divergences. ---


def test_compatibility_against_an_unknown_subject(http: httpx.Client) -> None:
    s = _path(_subject())
    body = {"schema": json.dumps(V1)}
    path = f"/compatibility/subjects/{s}/versions"
    message = _error(http.post(f"{path}/1", json=body), 404, 40402)
    assert message == "Version 1 not found."
    assert http.post(f"{path}/latest", json=body).json() == {"is_compatible": True}
    assert http.post(path, json=body).json() == {"is_compatible": True}


def test_schemas_are_stored_and_returned_in_avros_own_text(http: httpx.Client) -> None:
    subject = _subject()
    s = _path(subject)
    sent = {
        "fields": [{"type": {"type": "string", "name": "ignored"}, "name": "a", "doc": "d"}],
        "namespace": "com.acme",
        "name": "R",
        "type": "record",
    }
    schema_id = _register(http, subject, json.dumps(sent, indent=2)).json()["id"]
    text = (
        '{"type":"record","name":"R","namespace":"com.acme",'
        '"fields":[{"name":"a","type":"string","doc":"d"}]}'
    )
    assert http.get(f"/schemas/ids/{schema_id}").json() == {"schema": text}
    assert http.get(f"/subjects/{s}/versions/1").json()["schema"] == text
    # A name on a primitive is an attribute Avro ignores: the same schema.
    found = http.post(f"/subjects/{s}", json={"schema": text}).json()
    assert (found["version"], found["id"]) == (1, schema_id)
    assert _register(http, subject, text).json() == {"id": schema_id}
    # A primitive schema is stored as Avro writes it (its id: whichever the session gave first).
    string_id = _register(http, _subject(), '{"type": "string"}').json()["id"]
    assert http.get(f"/schemas/ids/{string_id}/schema").text == '"string"'


def test_a_permanently_deleted_schema_gets_its_old_id_back(http: httpx.Client) -> None:
    subject = _subject()
    s = _path(subject)
    unique = {"type": "record", "name": "U" + uuid.uuid4().hex, "fields": []}
    schema_id = _register(http, subject, unique).json()["id"]
    http.delete(f"/subjects/{s}")
    http.delete(f"/subjects/{s}?permanent=true")
    _error(http.get(f"/schemas/ids/{schema_id}"), 404, 40403)
    assert _register(http, subject, unique).json() == {"id": schema_id}


@pytest.mark.parametrize(
    ("accept", "answered"),
    [
        (None, "application/vnd.schemaregistry.v1+json"),
        ("*/*", "application/vnd.schemaregistry.v1+json"),
        ("application/json", "application/json"),
        ("application/vnd.schemaregistry+json", "application/vnd.schemaregistry+json"),
        ("text/plain;q=0.9, application/json;q=0.5", "application/json"),
    ],
)
def test_answers_in_the_accepted_media_type(
    http: httpx.Client, accept: str | None, answered: str
) -> None:
    headers = {"Accept": accept} if accept else {}
    assert http.get("/subjects", headers=headers).headers["content-type"] == answered
    error = http.get(f"/subjects/{_subject()}/versions", headers=headers)
    assert (error.status_code, error.headers["content-type"]) == (404, answered)


def test_the_openapi_document_lists_every_media_type_answered(http: httpx.Client) -> None:
    """What the document says a Confluent route answers in is what it answers in, each of them."""
    document = http.get("/schema/openapi.json").json()
    versions = document["paths"]["/subjects/{subject}/versions"]["get"]["responses"]
    media_types = set(versions["200"]["content"])
    assert set(versions["404"]["content"]) == media_types
    assert media_types == {
        "application/vnd.schemaregistry.v1+json",
        "application/vnd.schemaregistry+json",
        "application/json",
    }
    subject = _subject()
    assert _register(http, subject, V1).status_code == 200
    for media_type in media_types:
        for path, status in ((f"/subjects/{_path(subject)}/versions", 200), ("/subjects/-/x", 404)):
            answer = http.get(path, headers={"Accept": media_type})
            assert (answer.status_code, answer.headers["content-type"]) == (status, media_type)


def test_unsupported_media_types_are_406_and_415(http: httpx.Client) -> None:
    _error(http.get("/subjects", headers={"Accept": "text/html"}), 406, 406)
    body = json.dumps({"schema": json.dumps(V1)})
    subject = _path(_subject())
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        response = http.post(
            f"/subjects/{subject}/versions", content=body, headers={"Content-Type": content_type}
        )
        _error(response, 415, 415)
    for content_type in (
        "application/vnd.schemaregistry.v1+json",
        "application/vnd.schemaregistry+json",
        "application/json; charset=utf-8",
        "application/octet-stream",
    ):
        response = http.post(
            f"/subjects/{subject}/versions", content=body, headers={"Content-Type": content_type}
        )
        assert response.status_code == 200, (content_type, response.text)


def test_an_empty_register_body_is_empty_schema(http: httpx.Client) -> None:
    response = http.post(f"/subjects/{_path(_subject())}/versions", json={})
    assert _error(response, 422, 42201) == "Empty schema"
