"""The admin API for connectors: ``/v1/connectors``.

Handlers only translate between JSON and ``ConnectorService`` (the app's ``connector_service``
dependency); errors are domain errors, rendered as ``application/problem+json`` by
``registry._http_errors``. Request bodies refuse unknown properties (422).

``POST /v1/connectors/infer-fields`` proposes fields for example records (JSON, NDJSON or CSV, as
the ingest URL reads them; ``inlet/codec/field_inference.py``): what the console's "start from an
example" shows, to be edited before a create.

A connector's view never carries its token or the token's hash. The token, and the ingest URL
that embeds it, appear only in the answers that make one: create, duplicate and rotate-token.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from inlet.codec.field_inference import InferredFields, infer_fields
from inlet.model.connectors import Connector, Envelope, Status, TopicPolicy
from inlet.model.dedup import Dedup
from inlet.model.fields import FieldSpec
from inlet.model.verify import MAX_SECRET_CHARS, Algorithm, Encoding, Scheme, Signed, Verify
from registry.connector_service import (
    MAX_GRACE_PERIOD_S,
    ConnectorChanges,
    ConnectorService,
    Issued,
    NewConnector,
)
from registry.sample_service import (
    NOTHING_SEEN,
    Progress,
    RecordCounts,
    SampleCount,
    SampleService,
)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class DuplicateRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str


class RotateRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    grace_period_s: Annotated[int, msgspec.Meta(ge=0, le=MAX_GRACE_PERIOD_S)] = 0


class SecretRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    secret: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SECRET_CHARS)]


class SecretView(msgspec.Struct, frozen=True, kw_only=True):
    """A secret as answers show it: never its text, only what names it."""

    fingerprint: str
    added_at: datetime


class VerifyView(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    scheme: Scheme
    tolerance_s: int
    secrets: list[SecretView]
    # The recipe, for scheme hmac only.
    header: str | None = None
    algorithm: Algorithm | None = None
    encoding: Encoding | None = None
    prefix: str | None = None
    signed: Signed | None = None
    timestamp_header: str | None = None


def verify_view(verify: Verify) -> VerifyView:
    secrets = [SecretView(fingerprint=s.fingerprint, added_at=s.added_at) for s in verify.secrets]
    if verify.scheme != "hmac":
        return VerifyView(scheme=verify.scheme, tolerance_s=verify.tolerance_s, secrets=secrets)
    return VerifyView(
        scheme=verify.scheme,
        tolerance_s=verify.tolerance_s,
        secrets=secrets,
        header=verify.header,
        algorithm=verify.algorithm,
        encoding=verify.encoding,
        prefix=verify.prefix,
        signed=verify.signed,
        timestamp_header=verify.timestamp_header,
    )


class ConnectorView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    description: str
    fields: list[FieldSpec]
    key_field: str | None
    status: Status
    topic: str
    rejected_topic: str
    subject: str
    record_name: str
    schema_id: int
    schema_version: int
    reject_unknown_fields: bool
    atomic: bool
    rate_limit_per_s: float | None
    partitions: int
    replication_factor: int
    on_delete: TopicPolicy
    # Signature verification: the scheme and its secrets' fingerprints (null: none).
    verify: VerifyView | None
    # The envelope senders wrap records in (firehose, pubsub-push, cloudevents; null: none).
    envelope: Envelope | None
    # Idempotency keys: where they come from and the window (null: retries are written again).
    dedup: Dedup | None
    # Until when the token replaced by the last rotation still works (null: it does not).
    previous_token_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ConnectorWithToken(ConnectorView, frozen=True, kw_only=True):
    """The view plus the token, shown this once, and the ingest URL made from it."""

    token: str
    ingest_url: str


class ConnectorDetail(ConnectorView, frozen=True, kw_only=True):
    """One connector with what the sample worker has seen of it (GET one, save)."""

    counts: RecordCounts
    samples: SampleCount


class ConnectorPage(msgspec.Struct, frozen=True):
    data: list[ConnectorView]
    next_cursor: str | None


def _view(connector: Connector) -> ConnectorView:
    return ConnectorView(**_public(connector))


def connector_detail(connector: Connector, progress: Progress) -> ConnectorDetail:
    return ConnectorDetail(**_public(connector), counts=progress.counts, samples=progress.samples)


def _with_token(issued: Issued) -> ConnectorWithToken:
    return ConnectorWithToken(
        **_public(issued.connector), token=issued.token, ingest_url=issued.ingest_url
    )


def _public(connector: Connector) -> dict[str, Any]:
    # Listed by the view's fields, so a secret added to Connector stays out unless added here.
    public = {name: getattr(connector, name) for name in ConnectorView.__struct_fields__}
    # The sealed secrets stay out: the view shows their fingerprints.
    public["verify"] = None if connector.verify is None else verify_view(connector.verify)
    return public


class ConnectorController(Controller):
    path = "/v1/connectors"

    @post("/", status_code=201)
    async def create(
        self,
        connector_service: NamedDependency[ConnectorService],
        data: JSONBody[NewConnector],
    ) -> ConnectorWithToken:
        return _with_token(await connector_service.create(data))

    @post("/infer-fields", status_code=200)
    async def infer_fields(self, request: Request[Any, Any, Any]) -> InferredFields:
        # The body is read raw, as the gateway reads one; its size is capped by the inference.
        # A worker thread: a 1 MiB example takes a few hundred ms, not the event loop's to give.
        headers = request.headers
        body = await request.body()
        return await asyncio.to_thread(
            infer_fields, body, headers.get("content-type"), headers.get("content-encoding")
        )

    @get("/")
    async def list_connectors(
        self,
        connector_service: NamedDependency[ConnectorService],
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
        cursor: FromQuery[str | None] = None,
    ) -> ConnectorPage:
        page, next_cursor = await connector_service.list_page(limit=limit, cursor=cursor)
        return ConnectorPage([_view(c) for c in page], next_cursor)

    @get("/{connector_id:str}")
    async def get_connector(
        self,
        connector_service: NamedDependency[ConnectorService],
        connector_id: FromPath[str],
        sample_service: NamedDependency[SampleService | None] = None,
    ) -> ConnectorDetail:
        connector = await connector_service.get(connector_id)
        # An app without the sample service (unit tests) shows nothing seen yet.
        progress = NOTHING_SEEN if sample_service is None else sample_service.progress(connector_id)
        return connector_detail(connector, progress)

    @patch("/{connector_id:str}")
    async def update(
        self,
        connector_service: NamedDependency[ConnectorService],
        connector_id: FromPath[str],
        data: JSONBody[ConnectorChanges],
    ) -> ConnectorView:
        return _view(await connector_service.update(connector_id, data))

    @delete("/{connector_id:str}", status_code=204)
    async def delete_connector(
        self,
        connector_service: NamedDependency[ConnectorService],
        connector_id: FromPath[str],
        topics: FromQuery[TopicPolicy | None] = None,
    ) -> None:
        await connector_service.delete(connector_id, topics)

    @post("/{connector_id:str}/duplicate", status_code=201)
    async def duplicate(
        self,
        connector_service: NamedDependency[ConnectorService],
        connector_id: FromPath[str],
        data: JSONBody[DuplicateRequest],
    ) -> ConnectorWithToken:
        return _with_token(await connector_service.duplicate(connector_id, data.name))

    @post("/{connector_id:str}/rotate-token", status_code=200)
    async def rotate_token(
        self,
        connector_service: NamedDependency[ConnectorService],
        connector_id: FromPath[str],
        data: JSONBody[RotateRequest | None] = None,
    ) -> ConnectorWithToken:
        grace = 0 if data is None else data.grace_period_s
        return _with_token(await connector_service.rotate_token(connector_id, grace))

    @post("/{connector_id:str}/verify/secrets", status_code=201)
    async def add_secret(
        self,
        connector_service: NamedDependency[ConnectorService],
        connector_id: FromPath[str],
        data: JSONBody[SecretRequest],
    ) -> VerifyView:
        connector = await connector_service.add_secret(connector_id, data.secret)
        return _verify_view_of(connector)

    @delete("/{connector_id:str}/verify/secrets/{fingerprint:str}", status_code=200)
    async def retire_secret(
        self,
        connector_service: NamedDependency[ConnectorService],
        connector_id: FromPath[str],
        fingerprint: FromPath[str],
    ) -> VerifyView:
        connector = await connector_service.retire_secret(connector_id, fingerprint)
        return _verify_view_of(connector)


def _verify_view_of(connector: Connector) -> VerifyView:
    if connector.verify is None:  # the service answered with a verify setting
        raise RuntimeError("the connector has no verify setting")
    return verify_view(connector.verify)
