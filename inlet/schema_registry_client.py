"""A client of another Confluent-compatible schema registry (Confluent, Karapace, Apicurio...).

``RemoteSchemaRegistry`` makes the few calls of Confluent's REST API Inlet needs: the registry
service registers connectors' schemas with it (``registry/remote_schemas.py``), and readers of
connector topics fetch schemas by id (``inlet/schema_lookup.py``)::

    POST   /subjects/{s}                     is this schema already a version of s? (lookup)
    POST   /subjects/{s}/versions            register; the registry checks compatibility
    POST   /compatibility/subjects/{s}/versions/latest?verbose=true    why it refused
    DELETE /subjects/{s}[/versions/{v}][?permanent=true]
    GET    /schemas/ids/{id}                 a schema by id, for readers (ids never change)
    GET    /schemas/ids/{id}/versions        the subjects and versions with it (for samples)

Errors are mapped here, once: the registry's ``error_code`` to the same domain error Inlet's own
registry raises (``IncompatibleSchema``, ``InvalidSchema``, ``SubjectNotFound``...); no answer, a
5xx or a 429 to the retryable ``SchemaRegistryUnavailable`` (503); refused credentials and answers
Inlet cannot read to ``SchemaRegistryFailed`` (502). Messages name the registry's URL without its
credentials.
"""

from __future__ import annotations

import logging
from typing import TypeVar
from urllib.parse import quote

import httpx
import msgspec

from inlet.errors import (
    IncompatibleSchema,
    InletError,
    InvalidSchema,
    InvalidVersion,
    SchemaNotFound,
    SchemaRegistryFailed,
    SchemaRegistryUnavailable,
    SchemaVersionNotSoftDeleted,
    SchemaVersionSoftDeleted,
    SubjectNotFound,
    SubjectNotSoftDeleted,
    SubjectSoftDeleted,
    VersionNotFound,
)
from inlet.settings import Settings, SettingsError, without_userinfo

T = TypeVar("T")
log = logging.getLogger(__name__)

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
TIMEOUT_S = 10.0

# Confluent's error codes that mean what they mean in Inlet's own registry.
_ERRORS_BY_CODE: dict[int, type[InletError]] = {
    error.error_code: error
    for error in (
        SubjectNotFound,
        VersionNotFound,
        SchemaNotFound,
        SubjectSoftDeleted,
        SubjectNotSoftDeleted,
        SchemaVersionSoftDeleted,
        SchemaVersionNotSoftDeleted,
        IncompatibleSchema,
        InvalidSchema,
        InvalidVersion,
    )
}
# Failing with these, a lookup means "not a version of the subject (yet)".
_NOT_THERE = (SubjectNotFound, SchemaNotFound, SubjectSoftDeleted)


class _SchemaBody(msgspec.Struct, frozen=True):
    schema: str


class _Registered(msgspec.Struct, frozen=True):
    id: int


class _SubjectVersion(msgspec.Struct, frozen=True):
    subject: str
    version: int


class RemoteVersion(msgspec.Struct, frozen=True):
    """A version of a subject in the external registry (its schema text is not kept)."""

    subject: str
    version: int
    id: int


class _Compatibility(msgspec.Struct, frozen=True):
    is_compatible: bool
    messages: list[str] = msgspec.field(default_factory=list)


class _ErrorBody(msgspec.Struct, frozen=True):
    error_code: int = 0
    message: str = ""


_ENCODER = msgspec.json.Encoder()
_REGISTERED = msgspec.json.Decoder(_Registered)
_REMOTE_VERSION = msgspec.json.Decoder(RemoteVersion)
_COMPATIBILITY = msgspec.json.Decoder(_Compatibility)
_SCHEMA = msgspec.json.Decoder(_SchemaBody)
_SUBJECT_VERSIONS = msgspec.json.Decoder(list[_SubjectVersion])
_ERROR = msgspec.json.Decoder(_ErrorBody)


def _basic_auth(user_info: str | None) -> httpx.BasicAuth | None:
    if user_info is None:
        return None
    user, colon, password = user_info.partition(":")
    if not colon:
        raise SettingsError("INLET_SCHEMA_REGISTRY_BASIC_AUTH must be user:password")
    return httpx.BasicAuth(user, password)


def _split_credentials(
    url: str, basic_auth: str | None
) -> tuple[httpx.URL, httpx.BasicAuth | None]:
    """The URL without ``user:password@`` (httpx would log it), and the credentials to send."""
    parsed = httpx.URL(url)
    if not parsed.userinfo:
        return parsed, _basic_auth(basic_auth)
    auth = _basic_auth(basic_auth) or httpx.BasicAuth(parsed.username, parsed.password)
    return parsed.copy_with(userinfo=b""), auth


class RemoteSchemaRegistry:
    """The few calls of Confluent's REST API Inlet makes, with errors as domain errors."""

    def __init__(
        self,
        url: str,
        basic_auth: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self.url = without_userinfo(url)  # what messages and logs may show
        base_url, auth = _split_credentials(url, basic_auth)
        self._client = httpx.AsyncClient(
            base_url=base_url,
            auth=auth,
            headers={"Accept": f"{MEDIA_TYPE}, application/json", "Content-Type": MEDIA_TYPE},
            timeout=timeout_s,
            transport=transport,
        )
        self._schemas_by_id: dict[int, str] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> RemoteSchemaRegistry:
        if settings.schema_registry_url is None:
            raise SettingsError("schema_registry_url is not set")
        return cls(settings.schema_registry_url, settings.schema_registry_basic_auth)

    async def close(self) -> None:
        await self._client.aclose()

    async def lookup(self, subject: str, schema_text: str) -> RemoteVersion | None:
        """The version of ``subject`` that has this schema, or None."""
        try:
            body = await self._call(
                "POST", f"/subjects/{_quote(subject)}", _SchemaBody(schema_text)
            )
        except _NOT_THERE:
            return None
        return self._decode(_REMOTE_VERSION, body)

    async def register(self, subject: str, schema_text: str) -> int:
        """Register ``schema_text`` under ``subject``; its id. IncompatibleSchema says why not."""
        path = f"/subjects/{_quote(subject)}/versions"
        try:
            body = await self._call("POST", path, _SchemaBody(schema_text))
        except IncompatibleSchema as exc:
            reasons = await self._incompatibilities(subject, schema_text)
            raise IncompatibleSchema(exc.message, reasons=reasons or [exc.message]) from exc
        return self._decode(_REGISTERED, body).id

    async def delete_version(self, subject: str, version: int, *, permanent: bool = False) -> None:
        path = f"/subjects/{_quote(subject)}/versions/{version}"
        await self._call("DELETE", path, params={"permanent": "true"} if permanent else None)

    async def delete_subject(self, subject: str) -> None:
        await self._call("DELETE", f"/subjects/{_quote(subject)}")

    async def schema_text(self, schema_id: int) -> str:
        """The schema with this id (cached: an id names one schema for good)."""
        cached = self._schemas_by_id.get(schema_id)
        if cached is None:
            body = await self._call("GET", f"/schemas/ids/{schema_id}")
            cached = self._schemas_by_id[schema_id] = self._decode(_SCHEMA, body).schema
        return cached

    def cached_schema_text(self, schema_id: int) -> str | None:
        """The schema with this id if ``schema_text`` fetched it before; no I/O."""
        return self._schemas_by_id.get(schema_id)

    async def versions_of_id(self, schema_id: int) -> list[tuple[str, int]]:
        """Every ``(subject, version)`` that has this schema, soft-deleted ones included."""
        path = f"/schemas/ids/{schema_id}/versions"
        body = await self._call("GET", path, params={"deleted": "true"})
        return [(found.subject, found.version) for found in self._decode(_SUBJECT_VERSIONS, body)]

    async def _incompatibilities(self, subject: str, schema_text: str) -> list[str]:
        """The verbose compatibility check's messages (none when it cannot say)."""
        path = f"/compatibility/subjects/{_quote(subject)}/versions/latest"
        try:
            body = await self._call(
                "POST", path, _SchemaBody(schema_text), params={"verbose": "true"}
            )
            return self._decode(_COMPATIBILITY, body).messages
        except InletError:
            log.warning("the verbose compatibility check failed", exc_info=True)
            return []

    async def _call(
        self,
        method: str,
        path: str,
        body: msgspec.Struct | None = None,
        *,
        params: dict[str, str] | None = None,
    ) -> bytes:
        content = None if body is None else _ENCODER.encode(body)
        try:
            response = await self._client.request(method, path, content=content, params=params)
        except httpx.HTTPError as exc:
            raise SchemaRegistryUnavailable(
                f"the schema registry at {self.url} did not answer: {exc!r}"
            ) from exc
        if response.is_success:
            return response.content
        raise self._error(method, path, response)

    def _error(self, method: str, path: str, response: httpx.Response) -> InletError:
        status = response.status_code
        try:
            error = _ERROR.decode(response.content)
        except msgspec.DecodeError:
            error = _ErrorBody(message=response.text[:200])
        message = error.message or response.reason_phrase
        where = f"the schema registry at {self.url} answered {status} to {method} {path}"
        if status >= 500 or status == 429:
            return SchemaRegistryUnavailable(f"{where}: {message}")
        if status in (401, 403):
            return SchemaRegistryFailed(
                f"{where}: it refused Inlet's credentials (INLET_SCHEMA_REGISTRY_BASIC_AUTH)"
            )
        known = _ERRORS_BY_CODE.get(error.error_code)
        if known is None and status == 409:
            known = IncompatibleSchema
        elif known is None and status == 422:
            known = InvalidSchema
        if known is None:
            return SchemaRegistryFailed(f"{where}: {message}")
        return known(message)

    def _decode(self, decoder: msgspec.json.Decoder[T], body: bytes) -> T:
        try:
            return decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise SchemaRegistryFailed(
                f"the schema registry at {self.url} sent an answer Inlet cannot read: {exc}"
            ) from exc


def _quote(subject: str) -> str:
    return quote(subject, safe="")
