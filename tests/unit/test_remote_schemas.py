"""Schemas in an external Confluent-compatible registry, without Kafka or sockets.

The "external" registry is Inlet's own registry app (``tests/registry_app.py``, on an in-memory
log) reached through ``httpx.ASGITransport``; error mapping is driven by ``httpx.MockTransport``.
"""

from __future__ import annotations

import base64
import functools
import io
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
import msgspec
import pytest
from fastavro import parse_schema, schemaless_writer
from litestar.testing import AsyncTestClient

from consumers.sampler import Sampler, version_in_subject
from inlet.codec.wire import UnknownSchema, WireDecoder
from inlet.errors import (
    IncompatibleSchema,
    InletError,
    InvalidSchema,
    KafkaUnavailable,
    SchemaRegistryFailed,
    SchemaRegistryUnavailable,
    SubjectNotFound,
)
from inlet.model.connectors import Connector
from inlet.model.fields import FieldSpec
from inlet.model.schemas import SchemaState, SchemaVersion, schema_record
from inlet.records import wire_frame
from inlet.schema_lookup import (
    FoldedSchemas,
    RegistrySchemas,
    SchemaRef,
    schema_lookup,
    schema_topics,
)
from inlet.schema_registry_client import RemoteSchemaRegistry
from inlet.settings import Settings, SettingsError, load_settings
from inlet.statelog.fold import InMemoryStateLog, Record, StateFold
from inlet.topics import CONNECTORS_TOPIC, SCHEMAS_TOPIC, connector_subject
from registry.connector_service import ConnectorChanges, NewConnector
from registry.remote_schemas import RemoteSchemaStore
from tests.registry_app import ADMIN_TOKEN, InMemoryRegistry, MemoryTopics
from tests.unit.test_samples import Msg  # a consumed record as the sampler reads it

T = TypeVar("T")
TOKEN = "inlet_admin_remote-test"
URL = "http://schemas.example:8081"
AT = datetime(2026, 1, 1, tzinfo=UTC)
Fields = list[dict[str, object]]
FIELDS: Fields = [{"name": "id", "type": "string"}, {"name": "total", "type": "integer"}]
MORE_FIELDS: Fields = [*FIELDS, {"name": "note", "type": "string", "nullable": True}]
BREAKING_FIELDS: Fields = [{"name": "id", "type": "integer"}]


def _fields(raw: Fields) -> list[FieldSpec]:
    return msgspec.convert(raw, list[FieldSpec])


# --- The external registry: Inlet's own Confluent API, in memory. ---


class ExternalRegistry:
    def __init__(self, tmp_path: Path) -> None:
        registry = InMemoryRegistry(
            Settings(data_dir=str(tmp_path)), InMemoryStateLog, admin_token=TOKEN
        )
        self.registry = registry.services.schema_registry
        self.app = registry.app
        self.down = False
        self.requests: list[str] = []
        # Litestar types its ASGI callable more narrowly than httpx's generic one.
        self._asgi = httpx.ASGITransport(app=cast("Any", self.app))

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(f"{request.method} {request.url.path}")
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return await self._asgi.handle_async_request(request)

    def client(self, basic_auth: str | None = f"inlet:{TOKEN}") -> RemoteSchemaRegistry:
        return RemoteSchemaRegistry(URL, basic_auth, transport=httpx.MockTransport(self.handle))


class FailingLog(InMemoryStateLog):
    """Inlet's own log; ``fail_next`` makes the next transaction fail after deciding."""

    def __init__(self, folder: StateFold) -> None:
        super().__init__(folder)
        self.fail_next = False

    async def transact(self, decide: Callable[[], tuple[list[Record], T]]) -> T:
        if self.fail_next:
            self.fail_next = False
            decide()
            raise KafkaUnavailable("the state log write failed")
        return await super().transact(decide)


class Inlet:
    """An Inlet registry whose schemas live in ``external``."""

    def __init__(self, external: ExternalRegistry, tmp_path: Path) -> None:
        self.external = external
        self.topics = MemoryTopics()
        self.store = RemoteSchemaStore(external.client())
        registry = InMemoryRegistry(
            Settings(data_dir=str(tmp_path)),
            FailingLog,
            topics=self.topics,
            remote_schemas=self.store,
            clock=lambda: AT,
        )
        self.connectors = registry.state.connectors
        self.log = registry.log
        self.service = registry.services.connectors
        self.app = registry.app

    async def patch(self, connector_id: str, fields: Fields) -> Connector:
        return await self.service.update(connector_id, ConnectorChanges(fields=_fields(fields)))

    async def create(self, name: str = "orders") -> str:
        issued = await self.service.create(NewConnector(name=name, fields=_fields(FIELDS)))
        return issued.connector.id


@pytest.fixture
def external(tmp_path: Path) -> ExternalRegistry:
    return ExternalRegistry(tmp_path / "external")


@pytest.fixture
async def inlet(external: ExternalRegistry, tmp_path: Path) -> AsyncIterator[Inlet]:
    made = Inlet(external, tmp_path / "inlet")
    yield made
    await made.store.close()


# --- The connector lifecycle against the external registry. ---


async def test_create_registers_in_the_external_registry_and_writes_no_schemas_record(
    inlet: Inlet, external: ExternalRegistry
) -> None:
    connector = inlet.connectors.by_id[await inlet.create()]
    latest = await external.registry.get_version(connector.subject, "latest")
    assert (latest.schema_id, latest.version) == (connector.schema_id, connector.schema_version)
    assert latest.version == 1
    assert {r.topic for r in inlet.log.records} == {CONNECTORS_TOPIC}


async def test_a_duplicate_has_its_own_subject_with_the_same_schema_id(
    inlet: Inlet, external: ExternalRegistry
) -> None:
    source = inlet.connectors.by_id[await inlet.create()]
    copy = (await inlet.service.duplicate(source.id, "orders-copy")).connector
    assert copy.subject != source.subject
    assert (copy.schema_id, copy.schema_version) == (source.schema_id, 1)
    assert await external.registry.versions(copy.subject) == [1]


async def test_patch_registers_a_compatible_version_and_refuses_an_incompatible_one(
    inlet: Inlet, external: ExternalRegistry
) -> None:
    connector_id = await inlet.create()
    evolved = await inlet.patch(connector_id, MORE_FIELDS)
    assert evolved.schema_version == 2
    latest = await external.registry.get_version(evolved.subject, "latest")
    assert (latest.schema_id, latest.version) == (evolved.schema_id, 2)

    with pytest.raises(IncompatibleSchema) as refused:
        await inlet.patch(connector_id, BREAKING_FIELDS)
    assert refused.value.problems, "the external registry's reasons, one problem each"
    assert {p.field for p in refused.value.problems} == {"fields"}
    assert await external.registry.versions(evolved.subject) == [1, 2]
    assert inlet.connectors.by_id[connector_id] == evolved


async def test_patch_with_the_same_fields_writes_nothing_anywhere(
    inlet: Inlet, external: ExternalRegistry
) -> None:
    connector_id = await inlet.create()
    before = inlet.connectors.by_id[connector_id]
    after = await inlet.patch(connector_id, FIELDS)
    assert after == before
    assert await external.registry.versions(before.subject) == [1]


async def test_a_failed_create_takes_back_its_topics_and_its_subject(
    inlet: Inlet, external: ExternalRegistry
) -> None:
    inlet.log.fail_next = True
    with pytest.raises(KafkaUnavailable):
        await inlet.create()
    assert inlet.topics.topics == {}
    assert await external.registry.subjects(deleted=True) == []


async def test_a_failed_patch_takes_back_the_version_it_created(
    inlet: Inlet, external: ExternalRegistry
) -> None:
    connector_id = await inlet.create()
    subject = inlet.connectors.by_id[connector_id].subject
    inlet.log.fail_next = True
    with pytest.raises(KafkaUnavailable):
        await inlet.patch(connector_id, MORE_FIELDS)
    assert await external.registry.versions(subject, deleted=True) == [1]
    assert inlet.connectors.by_id[connector_id].schema_version == 1
    # The same change again registers it anew.
    again = await inlet.patch(connector_id, MORE_FIELDS)
    assert again.schema_version == 2


async def test_a_failed_patch_keeps_a_version_it_did_not_create(
    inlet: Inlet, external: ExternalRegistry
) -> None:
    connector_id = await inlet.create()
    subject = inlet.connectors.by_id[connector_id].subject
    await inlet.patch(connector_id, MORE_FIELDS)
    await inlet.patch(connector_id, FIELDS)
    inlet.log.fail_next = True  # back to version 2's fields, which the subject already has
    with pytest.raises(KafkaUnavailable):
        await inlet.patch(connector_id, MORE_FIELDS)
    assert await external.registry.versions(subject) == [1, 2]


async def test_an_unreachable_registry_is_retryable_and_leaves_nothing_behind(
    inlet: Inlet, external: ExternalRegistry
) -> None:
    external.down = True
    with pytest.raises(SchemaRegistryUnavailable) as failed:
        await inlet.create()
    assert failed.value.retryable
    assert URL in failed.value.message
    assert inlet.topics.topics == {}
    assert inlet.connectors.all() == []


async def test_delete_follows_the_topic_policy(inlet: Inlet, external: ExternalRegistry) -> None:
    deleted = inlet.connectors.by_id[await inlet.create("deleted")]
    kept = inlet.connectors.by_id[await inlet.create("kept")]
    await inlet.service.delete(deleted.id)
    await inlet.service.delete(kept.id, topics="keep")
    assert await external.registry.subjects() == [kept.subject]
    assert await external.registry.subjects(deleted=True) == sorted([deleted.subject, kept.subject])


async def test_delete_tolerates_a_subject_already_deleted_or_a_registry_down(
    inlet: Inlet, external: ExternalRegistry
) -> None:
    first = inlet.connectors.by_id[await inlet.create("first")]
    second = inlet.connectors.by_id[await inlet.create("second")]
    await external.registry.delete_subject(first.subject)
    await inlet.service.delete(first.id)
    external.down = True
    await inlet.service.delete(second.id)  # the connector goes; the log names the subject
    assert inlet.connectors.all() == []


# --- The client: requests and error mapping. ---


def _mock(
    answer: Callable[[httpx.Request], httpx.Response],
    url: str = URL,
    basic_auth: str | None = None,
) -> RemoteSchemaRegistry:
    return RemoteSchemaRegistry(url, basic_auth, transport=httpx.MockTransport(answer))


def _confluent(status: int, code: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error_code": code, "message": message})


async def test_requests_keep_the_base_path_quote_the_subject_and_send_basic_auth() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"subject": "a/b", "version": 3, "id": 7, "schema": "{}"})

    client = _mock(answer, "https://reg.example/apis/ccompat/v7", "user:pa:ss")
    found = await client.lookup("a/b", '"string"')
    assert found is not None
    assert (found.version, found.id) == (3, 7)
    request = seen[0]
    assert request.url.raw_path == b"/apis/ccompat/v7/subjects/a%2Fb"
    assert request.headers["content-type"] == "application/vnd.schemaregistry.v1+json"
    assert json.loads(request.content) == {"schema": '"string"'}
    credentials = base64.b64decode(request.headers["authorization"].removeprefix("Basic "))
    assert credentials == b"user:pa:ss"
    await client.close()


async def test_lookup_misses_are_none_and_other_404s_are_errors() -> None:
    for code in (40401, 40403):
        client = _mock(lambda _, code=code: _confluent(404, code, "not found"))  # type: ignore[misc]
        assert await client.lookup("s", "{}") is None
    wrong_url = _mock(lambda _: httpx.Response(404, text="<html>Not Found</html>"))
    with pytest.raises(SchemaRegistryFailed, match="answered 404"):
        await wrong_url.lookup("s", "{}")


async def test_a_409_carries_the_reasons_of_the_verbose_compatibility_check() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/compatibility/"):
            assert request.url.params["verbose"] == "true"
            assert request.url.path == "/compatibility/subjects/s/versions/latest"
            return httpx.Response(
                200, json={"is_compatible": False, "messages": ["field id: int is not a string"]}
            )
        return _confluent(409, 409, "Schema being registered is incompatible")

    with pytest.raises(IncompatibleSchema) as refused:
        await _mock(answer).register("s", "{}")
    assert refused.value.reasons == ["field id: int is not a string"]


async def test_a_409_without_a_verbose_answer_keeps_the_registry_message() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/compatibility/"):
            return httpx.Response(500)
        return httpx.Response(409, json={"message": "incompatible"})

    with pytest.raises(IncompatibleSchema) as refused:
        await _mock(answer).register("s", "{}")
    assert refused.value.reasons == ["incompatible"]


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (_confluent(422, 42201, "Invalid schema"), InvalidSchema),
        (httpx.Response(422, text="unprocessable"), InvalidSchema),
        (_confluent(404, 40401, "Subject 's' not found."), SubjectNotFound),
        (_confluent(500, 50001, "Error in the backend data store"), SchemaRegistryUnavailable),
        (httpx.Response(502, text="bad gateway"), SchemaRegistryUnavailable),
        (httpx.Response(429), SchemaRegistryUnavailable),
        (_confluent(401, 40101, "Unauthorized"), SchemaRegistryFailed),
        (httpx.Response(403), SchemaRegistryFailed),
        (httpx.Response(418), SchemaRegistryFailed),
        (httpx.Response(200, text="not json"), SchemaRegistryFailed),
    ],
)
async def test_answers_become_domain_errors(
    response: httpx.Response, error: type[InletError]
) -> None:
    with pytest.raises(error) as raised:
        await _mock(lambda _: response).register("s", "{}")
    assert raised.value.retryable == (error is SchemaRegistryUnavailable)


async def test_messages_name_the_registry_without_its_credentials() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = _mock(refuse, "http://user:s3cret@reg.example:8081")
    with pytest.raises(SchemaRegistryUnavailable) as failed:
        await client.register("s", "{}")
    assert "reg.example:8081" in failed.value.message
    assert "s3cret" not in failed.value.message
    forbidden = _mock(lambda _: httpx.Response(401), basic_auth="user:s3cret")
    with pytest.raises(SchemaRegistryFailed) as refused:
        await forbidden.register("s", "{}")
    assert "s3cret" not in refused.value.message
    assert "INLET_SCHEMA_REGISTRY_BASIC_AUTH" in refused.value.message


async def test_schemas_by_id_are_fetched_once() -> None:
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(200, json={"schema": '"string"'})

    client = _mock(answer)
    assert await client.schema_text(5) == '"string"'
    assert await client.schema_text(5) == '"string"'
    assert calls == ["/schemas/ids/5"]


async def test_credentials_in_the_url_are_sent_as_basic_auth_not_in_the_url() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": 1})

    client = _mock(answer, "http://us%40er:pa%3Ass@reg.example:8081/prefix")
    await client.register("s", "{}")
    assert str(seen[0].url) == "http://reg.example:8081/prefix/subjects/s/versions"
    credentials = base64.b64decode(seen[0].headers["authorization"].removeprefix("Basic "))
    assert credentials == b"us@er:pa:ss"
    await client.close()


def test_basic_auth_must_be_user_and_password() -> None:
    with pytest.raises(SettingsError, match="user:password"):
        RemoteSchemaRegistry(URL, "just-a-token")


def test_the_registry_credentials_never_show_in_repr() -> None:
    settings = load_settings(
        {
            "INLET_SCHEMA_REGISTRY_URL": "https://u:url-secret@reg.example/apis/ccompat/v7",
            "INLET_SCHEMA_REGISTRY_BASIC_AUTH": "user:auth-secret",
        }
    )
    assert settings.schema_registry_basic_auth == "user:auth-secret"
    shown = repr(settings)
    assert "url-secret" not in shown
    assert "auth-secret" not in shown
    assert "reg.example/apis/ccompat/v7" in shown


# --- Inlet's own Confluent paths, when the schemas are elsewhere. ---


async def test_confluent_paths_answer_where_the_schemas_are(inlet: Inlet) -> None:
    async with AsyncTestClient(inlet.app) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        for method, path in [
            ("GET", "/subjects"),
            ("POST", "/subjects/s/versions"),
            ("GET", "/subjects/s/versions/latest"),
            ("GET", "/schemas/ids/1"),
            ("PUT", "/config"),
            ("GET", "/config/s"),
            ("POST", "/compatibility/subjects/s/versions/latest"),
        ]:
            answer = await client.request(method, path, json={"schema": "{}"})
            assert answer.status_code == 404, (method, path)
            assert answer.json()["error_code"] == 40460
            assert URL in answer.json()["message"]


# --- Readers (samples, feeds, the pull feed) find schemas there: ``inlet.schema_lookup``. ---

ORDER = '{"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}'
CONNECTOR = "con_00000000000000cc"


def _order(schema_id: int, order_id: str) -> bytes:
    body = io.BytesIO()
    schemaless_writer(body, parse_schema(json.loads(ORDER)), {"id": order_id})
    return wire_frame(schema_id, body.getvalue())


async def test_samples_decode_and_version_records_with_the_external_registrys_schemas(
    external: ExternalRegistry,
) -> None:
    subject = connector_subject(CONNECTOR)
    schema_id = await external.registry.register(subject, ORDER)
    schemas = RegistrySchemas(external.client())
    sampler = Sampler(
        WireDecoder(schemas.schema_text), functools.partial(version_in_subject, schemas)
    )
    record = Msg(0, 0, _order(schema_id, "o-1"))

    # What the sample worker does with a batch: load what is missing, then sample.
    assert sampler.missing_schema(CONNECTOR, record) == schema_id
    await schemas.load([SchemaRef(schema_id, subject)])
    assert sampler.missing_schema(CONNECTOR, record) is None
    assert sampler.add_valid(CONNECTOR, record)
    state = sampler.state(CONNECTOR)
    assert state is not None
    sample = state.records[0]
    assert (sample.schema_id, sample.schema_version, sample.value) == (schema_id, 1, {"id": "o-1"})
    assert external.requests == [
        f"GET /schemas/ids/{schema_id}",
        f"GET /schemas/ids/{schema_id}/versions",
    ]

    # At hand from now on: the next load asks nothing.
    await schemas.load([SchemaRef(schema_id, subject)])
    assert len(external.requests) == 2
    await schemas.close()


async def test_a_subject_that_takes_the_schema_later_gets_its_version(
    external: ExternalRegistry,
) -> None:
    first, second = connector_subject(CONNECTOR), connector_subject("con_00000000000000dd")
    schema_id = await external.registry.register(first, ORDER)
    schemas = RegistrySchemas(external.client())
    await schemas.load([SchemaRef(schema_id, first)])
    # A duplicate connector: the same schema (and id) under its own subject.
    assert await external.registry.register(second, ORDER) == schema_id
    assert schemas.version_of_id(second, schema_id) is None
    await schemas.load([SchemaRef(schema_id, second)])
    assert schemas.version_of_id(second, schema_id) == 1
    await schemas.close()


async def test_a_schema_that_is_nowhere_stays_unknown_and_is_asked_for_once(
    external: ExternalRegistry,
) -> None:
    schemas = RegistrySchemas(external.client())
    decoder = WireDecoder(schemas.schema_text)
    await schemas.load([SchemaRef(404)])
    with pytest.raises(UnknownSchema):
        decoder.decode_typed(_order(404, "o-1"))
    await schemas.load([SchemaRef(404)])
    assert external.requests == ["GET /schemas/ids/404"]
    await schemas.close()


async def test_a_registry_down_fails_the_load_retryably_and_the_next_load_asks_again(
    external: ExternalRegistry,
) -> None:
    schema_id = await external.registry.register("orders-value", ORDER)
    schemas = RegistrySchemas(external.client())
    external.down = True
    with pytest.raises(SchemaRegistryUnavailable) as down:
        await schemas.load([SchemaRef(schema_id)])
    assert down.value.retryable
    external.down = False
    await schemas.load([SchemaRef(schema_id)])
    assert WireDecoder(schemas.schema_text).decode(_order(schema_id, "o-2")) == (
        schema_id,
        {"id": "o-2"},
    )
    await schemas.close()


async def test_without_an_external_registry_readers_catch_their_fold_up(tmp_path: Path) -> None:
    state = SchemaState()
    syncs: list[int] = []

    async def sync() -> None:  # the log reader catching up: here, the schema arrives
        syncs.append(1)
        record = schema_record(SchemaVersion("orders-value", 1, 11, ORDER))
        state.apply(record.topic, record.key, record.value)

    local = Settings(data_dir=str(tmp_path))
    schemas = schema_lookup(local, state, sync)
    assert isinstance(schemas, FoldedSchemas)
    assert schema_topics(local) == [SCHEMAS_TOPIC]
    await schemas.load([SchemaRef(11, "orders-value")])
    assert (schemas.schema_text(11), schemas.version_of_id("orders-value", 11)) == (ORDER, 1)
    await schemas.load([SchemaRef(11, "orders-value"), SchemaRef(99)])  # 99: nowhere
    await schemas.load([SchemaRef(99)])
    assert len(syncs) == 2

    remote = Settings(data_dir=str(tmp_path), schema_registry_url=URL)
    elsewhere = schema_lookup(remote, SchemaState(), sync)
    assert isinstance(elsewhere, RegistrySchemas)
    assert schema_topics(remote) == []
    await elsewhere.close()
