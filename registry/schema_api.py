"""The Confluent Schema Registry REST API (Avro only), over ``SchemaRegistry``.

Paths, query parameters and bodies are Confluent's, so Confluent's clients and serializers can use
it as they use Confluent Schema Registry. The ``SchemaRegistry`` comes from the app's
``schema_registry`` dependency. Handlers only translate: errors are domain errors, rendered by
``registry._http_errors.EXCEPTION_HANDLERS``. With an external registry (``schema_registry_url``)
the app serves ``schemas_elsewhere`` on these paths instead.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import (
    Controller,
    HttpMethod,
    MediaType,
    Request,
    Response,
    delete,
    get,
    post,
    put,
    route,
)
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Redirect

from inlet.model.schemas import AVRO, SchemaReference, SchemaVersion, StoredSchema
from registry._media import CONFLUENT_MEDIA_TYPE, answer_type, asks_for_html, reads_body
from registry._subject_paths import decode_subject
from registry.errors import NotAcceptable, SchemasElsewhere, UnsupportedMediaType
from registry.schemas import SchemaRegistry

# Answers are written in Confluent's v1 media type and go out in the one the client's Accept
# prefers (``registry._media.answer_in_accepted_type``). Bodies of Confluent's types, plain JSON
# and octet-stream are read as JSON; others are 415, as in Confluent.
_MEDIA = CONFLUENT_MEDIA_TYPE


class SchemaRequest(msgspec.Struct, frozen=True, rename="camel"):
    """The body of register, lookup and compatibility requests (other Confluent fields ignored)."""

    schema: str = ""  # missing is Confluent's 42201 "Empty schema", not a malformed body
    schema_type: str = AVRO
    references: list[SchemaReference] = msgspec.field(default_factory=list)
    # Only in IMPORT mode (Confluent's): the id and version the schema had elsewhere.
    schema_id: int | None = msgspec.field(default=None, name="id")
    version: int | None = None


class ConfigRequest(msgspec.Struct, frozen=True):
    compatibility: str = ""  # missing is an invalid level (42203), not a malformed body


class RegisteredId(msgspec.Struct, frozen=True):
    schema_id: int = msgspec.field(name="id")


class SubjectVersionSchema(msgspec.Struct, frozen=True, omit_defaults=True):
    subject: str
    version: int
    schema_id: int = msgspec.field(name="id")
    schema: str
    schema_type: str | None = msgspec.field(default=None, name="schemaType")  # not for AVRO
    references: list[SchemaReference] | None = None  # only when there are some, as Confluent


class SchemaById(msgspec.Struct, frozen=True, omit_defaults=True):
    schema: str
    schema_type: str | None = msgspec.field(default=None, name="schemaType")
    references: list[SchemaReference] | None = None


class SubjectVersion(msgspec.Struct, frozen=True):
    subject: str
    version: int


class ModeBody(msgspec.Struct, frozen=True):
    mode: str = ""  # missing is an invalid mode (42204), not a malformed body


class ConfigLevel(msgspec.Struct, frozen=True, rename="camel"):
    compatibility_level: str


class ConfigUpdated(msgspec.Struct, frozen=True):
    compatibility: str


class CompatibilityResult(msgspec.Struct, frozen=True, omit_defaults=True):
    is_compatible: bool
    messages: list[str] | None = None


def _version_body(found: SchemaVersion) -> SubjectVersionSchema:
    schema_type = None if found.schema_type == AVRO else found.schema_type
    return SubjectVersionSchema(
        found.subject,
        found.version,
        found.schema_id,
        found.schema,
        schema_type,
        list(found.references) or None,
    )


def _schema_body(found: StoredSchema) -> SchemaById:
    schema_type = None if found.schema_type == AVRO else found.schema_type
    return SchemaById(found.schema, schema_type, list(found.references) or None)


def _raw(schema: str) -> Response[bytes]:
    # The stored text itself, byte for byte: it is already JSON.
    return Response(content=schema.encode(), media_type=_MEDIA)


async def _negotiate(request: Request[Any, Any, Any]) -> None:
    """Confluent's content negotiation: 406 for an Accept it cannot meet, 415 for a body type it
    does not read."""
    if answer_type(request.headers.get("accept")) is None:
        raise NotAcceptable("HTTP 406 Not Acceptable")
    if request.method in ("POST", "PUT") and not reads_body(request.headers.get("content-type")):
        raise UnsupportedMediaType("HTTP 415 Unsupported Media Type")


class Root(msgspec.Struct, frozen=True):
    """Confluent's answer to ``GET /``: an empty object."""


async def _browser_to_console(request: Request[Any, Any, Any]) -> Redirect | None:
    return (
        Redirect("/console/", status_code=303, media_type=MediaType.TEXT)
        if asks_for_html(request.headers.get("accept"))
        else None
    )


@get("/", media_type=_MEDIA, before_request=_browser_to_console)
async def root() -> Root:
    """Confluent's ``GET /``: ``{}``, which clients use as a liveness check; a browser (its
    ``Accept`` names ``text/html``) is sent to the console instead (``_browser_to_console``)."""
    return Root()


class SchemaRegistryController(Controller):
    """Confluent's ``/subjects``, ``/schemas``, ``/config``, ``/mode`` and ``/compatibility``."""

    path = "/"
    middleware = [decode_subject]  # noqa: RUF012 (Litestar's declaration)
    before_request = staticmethod(_negotiate)

    # --- Subjects and versions. ---

    @get("/subjects", media_type=_MEDIA)
    async def list_subjects(
        self,
        schema_registry: NamedDependency[SchemaRegistry],
        deleted: FromQuery[bool] = False,
        subject_prefix: Annotated[str, QueryParameter(name="subjectPrefix")] = "",
    ) -> list[str]:
        return await schema_registry.subjects(deleted=deleted, prefix=subject_prefix)

    @get("/subjects/{subject:str}/versions", media_type=_MEDIA)
    async def list_versions(
        self,
        schema_registry: NamedDependency[SchemaRegistry],
        subject: FromPath[str],
        deleted: FromQuery[bool] = False,
    ) -> list[int]:
        return await schema_registry.versions(subject, deleted=deleted)

    @get("/subjects/{subject:str}/versions/{version:str}", media_type=_MEDIA)
    async def get_version(
        self,
        schema_registry: NamedDependency[SchemaRegistry],
        subject: FromPath[str],
        version: FromPath[str],
        deleted: FromQuery[bool] = False,
    ) -> SubjectVersionSchema:
        return _version_body(await schema_registry.get_version(subject, version, deleted=deleted))

    @get("/subjects/{subject:str}/versions/{version:str}/schema", media_type=_MEDIA)
    async def get_version_schema(
        self,
        schema_registry: NamedDependency[SchemaRegistry],
        subject: FromPath[str],
        version: FromPath[str],
        deleted: FromQuery[bool] = False,
    ) -> Response[bytes]:
        found = await schema_registry.get_version(subject, version, deleted=deleted)
        return _raw(found.schema)

    @get("/subjects/{subject:str}/versions/{version:str}/referencedby", media_type=_MEDIA)
    async def get_referenced_by(
        self,
        schema_registry: NamedDependency[SchemaRegistry],
        subject: FromPath[str],
        version: FromPath[str],
        deleted: FromQuery[bool] = False,
    ) -> list[int]:
        # Confluent's server lists soft-deleted referrers whatever ``deleted`` says (it takes no
        # such parameter): accepted, for the clients that send it, and the answer is the same.
        del deleted
        return await schema_registry.referenced_by(subject, version)

    @post("/subjects/{subject:str}/versions", media_type=_MEDIA, status_code=200)
    async def register(
        self,
        schema_registry: NamedDependency[SchemaRegistry],
        subject: FromPath[str],
        data: JSONBody[SchemaRequest],
        normalize: FromQuery[bool] = False,
    ) -> RegisteredId:
        schema_id = await schema_registry.register(
            subject,
            data.schema,
            data.schema_type,
            normalize=normalize,
            references=data.references,
            # Confluent's clients send -1 and 0 for "none".
            schema_id=data.schema_id if data.schema_id is not None and data.schema_id > 0 else None,
            version=data.version if data.version is not None and data.version > 0 else None,
        )
        return RegisteredId(schema_id)

    @post("/subjects/{subject:str}", media_type=_MEDIA, status_code=200)
    async def lookup(
        self,
        schema_registry: NamedDependency[SchemaRegistry],
        subject: FromPath[str],
        data: JSONBody[SchemaRequest],
        deleted: FromQuery[bool] = False,
    ) -> SubjectVersionSchema:
        found = await schema_registry.lookup(
            subject, data.schema, data.schema_type, deleted=deleted, references=data.references
        )
        return _version_body(found)

    @delete("/subjects/{subject:str}/versions/{version:str}", media_type=_MEDIA, status_code=200)
    async def delete_version(
        self,
        schema_registry: NamedDependency[SchemaRegistry],
        subject: FromPath[str],
        version: FromPath[str],
        permanent: FromQuery[bool] = False,
    ) -> int:
        return await schema_registry.delete_version(subject, version, permanent=permanent)

    @delete("/subjects/{subject:str}", media_type=_MEDIA, status_code=200)
    async def delete_subject(
        self,
        schema_registry: NamedDependency[SchemaRegistry],
        subject: FromPath[str],
        permanent: FromQuery[bool] = False,
    ) -> list[int]:
        return await schema_registry.delete_subject(subject, permanent=permanent)

    # --- Schemas. ---

    @get("/schemas", media_type=_MEDIA)
    async def list_schemas(
        self,
        schema_registry: NamedDependency[SchemaRegistry],
        *,
        subject_prefix: Annotated[str, QueryParameter(name="subjectPrefix")] = "",
        deleted: FromQuery[bool] = False,
        latest_only: Annotated[bool, QueryParameter(name="latestOnly")] = False,
        offset: FromQuery[int] = 0,
        limit: FromQuery[int] = -1,
    ) -> list[SubjectVersionSchema]:
        found = await schema_registry.schemas(
            prefix=subject_prefix,
            deleted=deleted,
            latest_only=latest_only,
            offset=offset,
            limit=limit,
        )
        return [_version_body(version) for version in found]

    @get("/schemas/ids/{schema_id:int}", media_type=_MEDIA)
    async def get_schema(
        self,
        schema_registry: NamedDependency[SchemaRegistry],
        schema_id: FromPath[int],
        subject: FromQuery[str | None] = None,
    ) -> SchemaById:
        # ``subject`` narrows the search to a context in Confluent; without contexts ids are global.
        return _schema_body(await schema_registry.schema_by_id(schema_id))

    @get("/schemas/ids/{schema_id:int}/schema", media_type=_MEDIA)
    async def get_raw_schema(
        self,
        schema_registry: NamedDependency[SchemaRegistry],
        schema_id: FromPath[int],
        subject: FromQuery[str | None] = None,
    ) -> Response[bytes]:
        return _raw((await schema_registry.schema_by_id(schema_id)).schema)

    @get("/schemas/ids/{schema_id:int}/subjects", media_type=_MEDIA)
    async def get_schema_subjects(
        self,
        schema_registry: NamedDependency[SchemaRegistry],
        schema_id: FromPath[int],
        deleted: FromQuery[bool] = False,
    ) -> list[str]:
        return await schema_registry.subjects_for_id(schema_id, deleted=deleted)

    @get("/schemas/ids/{schema_id:int}/versions", media_type=_MEDIA)
    async def get_schema_versions(
        self,
        schema_registry: NamedDependency[SchemaRegistry],
        schema_id: FromPath[int],
        deleted: FromQuery[bool] = False,
    ) -> list[SubjectVersion]:
        pairs = await schema_registry.versions_for_id(schema_id, deleted=deleted)
        return [SubjectVersion(subject, version) for subject, version in pairs]

    @get("/schemas/types", media_type=_MEDIA)
    async def get_schema_types(self, schema_registry: NamedDependency[SchemaRegistry]) -> list[str]:
        return schema_registry.schema_types()

    # --- Compatibility levels. ---

    @get("/config", media_type=_MEDIA)
    async def get_global_config(
        self, schema_registry: NamedDependency[SchemaRegistry]
    ) -> ConfigLevel:
        return ConfigLevel(await schema_registry.get_config())

    @put("/config", media_type=_MEDIA)
    async def put_global_config(
        self, schema_registry: NamedDependency[SchemaRegistry], data: JSONBody[ConfigRequest]
    ) -> ConfigUpdated:
        return ConfigUpdated(await schema_registry.set_config(data.compatibility))

    @delete("/config", media_type=_MEDIA, status_code=200)
    async def delete_global_config(
        self, schema_registry: NamedDependency[SchemaRegistry]
    ) -> ConfigLevel:
        return ConfigLevel(await schema_registry.delete_config())

    @get("/config/{subject:str}", media_type=_MEDIA)
    async def get_subject_config(
        self,
        schema_registry: NamedDependency[SchemaRegistry],
        subject: FromPath[str],
        default_to_global: Annotated[bool, QueryParameter(name="defaultToGlobal")] = False,
    ) -> ConfigLevel:
        level = await schema_registry.get_config(subject, default_to_global=default_to_global)
        return ConfigLevel(level)

    @put("/config/{subject:str}", media_type=_MEDIA)
    async def put_subject_config(
        self,
        schema_registry: NamedDependency[SchemaRegistry],
        subject: FromPath[str],
        data: JSONBody[ConfigRequest],
    ) -> ConfigUpdated:
        return ConfigUpdated(await schema_registry.set_config(data.compatibility, subject))

    @delete("/config/{subject:str}", media_type=_MEDIA, status_code=200)
    async def delete_subject_config(
        self, schema_registry: NamedDependency[SchemaRegistry], subject: FromPath[str]
    ) -> ConfigLevel:
        return ConfigLevel(await schema_registry.delete_config(subject))

    # --- Modes. ---

    @get("/mode", media_type=_MEDIA)
    async def get_global_mode(self, schema_registry: NamedDependency[SchemaRegistry]) -> ModeBody:
        return ModeBody(await schema_registry.get_mode())

    @put("/mode", media_type=_MEDIA)
    async def put_global_mode(
        self,
        schema_registry: NamedDependency[SchemaRegistry],
        data: JSONBody[ModeBody],
        force: FromQuery[bool] = False,
    ) -> ModeBody:
        return ModeBody(await schema_registry.set_mode(data.mode, force=force))

    @get("/mode/{subject:str}", media_type=_MEDIA)
    async def get_subject_mode(
        self,
        schema_registry: NamedDependency[SchemaRegistry],
        subject: FromPath[str],
        default_to_global: Annotated[bool, QueryParameter(name="defaultToGlobal")] = False,
    ) -> ModeBody:
        return ModeBody(
            await schema_registry.get_mode(subject, default_to_global=default_to_global)
        )

    @put("/mode/{subject:str}", media_type=_MEDIA)
    async def put_subject_mode(
        self,
        schema_registry: NamedDependency[SchemaRegistry],
        subject: FromPath[str],
        data: JSONBody[ModeBody],
        force: FromQuery[bool] = False,
    ) -> ModeBody:
        return ModeBody(await schema_registry.set_mode(data.mode, subject, force=force))

    @delete("/mode/{subject:str}", media_type=_MEDIA, status_code=200)
    async def delete_subject_mode(
        self, schema_registry: NamedDependency[SchemaRegistry], subject: FromPath[str]
    ) -> ModeBody:
        return ModeBody(await schema_registry.delete_mode(subject))

    # --- Compatibility checks. ---

    @post(
        "/compatibility/subjects/{subject:str}/versions/{version:str}",
        media_type=_MEDIA,
        status_code=200,
    )
    async def check_against_version(
        self,
        schema_registry: NamedDependency[SchemaRegistry],
        subject: FromPath[str],
        version: FromPath[str],
        data: JSONBody[SchemaRequest],
        verbose: FromQuery[bool] = False,
    ) -> CompatibilityResult:
        return await _compatibility(schema_registry, subject, version, data, verbose)

    @post("/compatibility/subjects/{subject:str}/versions", media_type=_MEDIA, status_code=200)
    async def check_against_all(
        self,
        schema_registry: NamedDependency[SchemaRegistry],
        subject: FromPath[str],
        data: JSONBody[SchemaRequest],
        verbose: FromQuery[bool] = False,
    ) -> CompatibilityResult:
        return await _compatibility(schema_registry, subject, None, data, verbose)


async def _compatibility(
    schema_registry: SchemaRegistry,
    subject: str,
    version: str | None,
    data: SchemaRequest,
    verbose: bool,
) -> CompatibilityResult:
    ok, messages = await schema_registry.test_compatibility(
        subject, version, data.schema, data.schema_type, verbose=verbose, references=data.references
    )
    return CompatibilityResult(ok, messages if verbose else None)


# Confluent's resources, when the schemas live in another registry (``schema_registry_url``).
_CONFLUENT_PATHS = [
    "/subjects",
    "/subjects/{rest:path}",
    "/schemas",
    "/schemas/{rest:path}",
    "/config",
    "/config/{rest:path}",
    "/mode",
    "/mode/{rest:path}",
    "/compatibility/{rest:path}",
]


def schemas_elsewhere(registry_url: str) -> HTTPRouteHandler:
    """Confluent's paths, answering 404 (40460) with where the schemas are instead.

    Clearer than a bare 404 for a client left pointing at Inlet: the answer names the registry to
    use (``registry_url`` must come without credentials). Nothing here reads ``_schemas``.
    """
    message = (
        f"Inlet keeps its schemas in the schema registry at {registry_url}: "
        "use it for /subjects, /schemas, /config and /compatibility"
    )

    @route(
        _CONFLUENT_PATHS,
        http_method=[HttpMethod.GET, HttpMethod.POST, HttpMethod.PUT, HttpMethod.DELETE],
        media_type=_MEDIA,
        include_in_schema=False,
    )
    async def elsewhere() -> None:
        raise SchemasElsewhere(message)

    return elsewhere
