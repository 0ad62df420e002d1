"""The registry's OpenAPI document: what each operation answers besides its success.

``ERRORS`` is the one table of the domain errors each operation may raise; their statuses come
from the app's error table (``_http_errors.status_of``) and their bodies from its dialect:
``application/problem+json`` under ``/v1/`` (the admin API), Confluent's ``{"error_code",
"message"}`` as ``application/vnd.schemaregistry.v1+json`` elsewhere. Every operation also
answers 401 without the admin token, 503 when Kafka or the state log does not answer in time,
and 422 (``validation_failed``) when a parameter or the body does not match the document; an
unreadable JSON body is 400 on the admin API and 422 on Confluent's, as Confluent answers.
``complete`` fails when an operation is missing from ``ERRORS`` or ``ERRORS`` names one the app
does not serve, so a new route cannot go undocumented.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from inlet.codec.errors import (
    BodyTooLarge,
    BodyUnparseable,
    RecordTooLarge,
    TooDeeplyNested,
    TooManyRecords,
)
from inlet.codec.errors import UnsupportedMediaType as UnsupportedBodyType
from inlet.codec.field_inference import MAX_EXAMPLE_BYTES, MAX_EXAMPLE_RECORDS, InvalidExample
from inlet.errors import (
    ConnectorNotFound,
    IncompatibleSchema,
    InletError,
    InvalidConnector,
    InvalidCursor,
    InvalidSchema,
    InvalidVersion,
    KafkaUnavailable,
    SchemaNotFound,
    SchemaVersionNotSoftDeleted,
    SchemaVersionSoftDeleted,
    StateUnavailable,
    StoreTimeout,
    SubjectNotFound,
    SubjectNotSoftDeleted,
    SubjectSoftDeleted,
    VersionNotFound,
)
from inlet.model.fields import MAX_NAME_LENGTH
from inlet.openapi import (
    PROBLEM_SCHEMA,
    Document,
    ErrorAnswer,
    Operation,
    add_schemas,
    constrain,
    document_errors,
    forbid_unknown_properties,
    operations,
)
from registry._http_errors import ADMIN_PATH_PREFIX, answers_retry_after, status_of
from registry._media import ANSWER_MEDIA_TYPES, CONFLUENT_MEDIA_TYPE
from registry.compat import CompatibilityLevel
from registry.errors import (
    ConnectorInUse,
    InvalidCompatibilityLevel,
    InvalidMode,
    InvalidPipeline,
    NameTaken,
    NotAcceptable,
    NotEnoughSamples,
    OperationNotPermitted,
    PipelineNotFound,
    ReferenceExists,
    ReplayConflict,
    SubjectCompatibilityNotConfigured,
    SubjectModeNotConfigured,
    Unauthorized,
    UnsupportedMediaType,
    VerifySecretNotFound,
)
from registry.schemas import MODES

Errors = tuple[type[InletError], ...]

# Every operation: no token, and Kafka or the state log not answering.
_ALWAYS: Errors = (Unauthorized, StateUnavailable, KafkaUnavailable, StoreTimeout)
_CONNECTOR: Errors = (ConnectorNotFound,)
_PIPELINE: Errors = (PipelineNotFound,)
_SUBJECT: Errors = (SubjectNotFound,)
_VERSION: Errors = (SubjectNotFound, VersionNotFound, InvalidVersion)
_SCHEMA: Errors = (SchemaNotFound,)
# A write the subject's (or the global) mode forbids: READONLY, or an explicit id outside IMPORT.
_MODE: Errors = (OperationNotPermitted,)

# The domain errors each operation raises, beyond ``_ALWAYS``.
ERRORS: dict[tuple[str, str], Errors] = {
    # Connectors.
    ("POST", "/v1/connectors"): (InvalidConnector, NameTaken),
    ("GET", "/v1/connectors"): (InvalidCursor,),
    ("POST", "/v1/connectors/infer-fields"): (
        BodyUnparseable,
        TooDeeplyNested,
        BodyTooLarge,
        RecordTooLarge,
        TooManyRecords,
        UnsupportedBodyType,
        InvalidExample,
    ),
    ("GET", "/v1/connectors/{connector_id}"): _CONNECTOR,
    ("PATCH", "/v1/connectors/{connector_id}"): (
        *_CONNECTOR,
        InvalidConnector,
        NameTaken,
        IncompatibleSchema,
    ),
    ("DELETE", "/v1/connectors/{connector_id}"): (*_CONNECTOR, ConnectorInUse),
    ("POST", "/v1/connectors/{connector_id}/duplicate"): (*_CONNECTOR, InvalidConnector, NameTaken),
    ("POST", "/v1/connectors/{connector_id}/rotate-token"): (*_CONNECTOR, InvalidConnector),
    ("POST", "/v1/connectors/{connector_id}/verify/secrets"): (*_CONNECTOR, InvalidConnector),
    ("DELETE", "/v1/connectors/{connector_id}/verify/secrets/{fingerprint}"): (
        *_CONNECTOR,
        VerifySecretNotFound,
        InvalidConnector,
    ),
    ("GET", "/v1/connectors/{connector_id}/samples"): _CONNECTOR,
    ("GET", "/v1/connectors/{connector_id}/rejected"): _CONNECTOR,
    ("POST", "/v1/connectors/{connector_id}/rejected/replay"): (*_CONNECTOR, ReplayConflict),
    ("POST", "/v1/connectors/{connector_id}/save"): (*_CONNECTOR, NotEnoughSamples),
    ("GET", "/v1/connectors/{connector_id}/records"): (*_CONNECTOR, InvalidCursor),
    # Pipelines.
    ("POST", "/v1/pipelines"): (InvalidPipeline, NameTaken),
    ("POST", "/v1/pipelines/preview"): (InvalidPipeline, NameTaken),
    ("GET", "/v1/pipelines"): (),
    ("GET", "/v1/pipelines/{pipeline_id}"): _PIPELINE,
    ("DELETE", "/v1/pipelines/{pipeline_id}"): _PIPELINE,
    ("POST", "/v1/pipelines/{pipeline_id}/pause"): _PIPELINE,
    ("POST", "/v1/pipelines/{pipeline_id}/resume"): _PIPELINE,
    # Confluent's root, subjects and versions.
    ("GET", "/"): (),
    ("GET", "/subjects"): (),
    ("POST", "/subjects/{subject}"): (*_SUBJECT, SchemaNotFound, InvalidSchema),
    ("DELETE", "/subjects/{subject}"): (
        *_SUBJECT,
        SubjectSoftDeleted,
        SubjectNotSoftDeleted,
        ReferenceExists,
        *_MODE,
    ),
    ("GET", "/subjects/{subject}/versions"): _SUBJECT,
    ("POST", "/subjects/{subject}/versions"): (InvalidSchema, IncompatibleSchema, *_MODE),
    ("GET", "/subjects/{subject}/versions/{version}"): _VERSION,
    ("GET", "/subjects/{subject}/versions/{version}/schema"): _VERSION,
    ("GET", "/subjects/{subject}/versions/{version}/referencedby"): _VERSION,
    ("DELETE", "/subjects/{subject}/versions/{version}"): (
        *_VERSION,
        SchemaVersionSoftDeleted,
        SchemaVersionNotSoftDeleted,
        ReferenceExists,
        *_MODE,
    ),
    # Confluent's schemas by id.
    ("GET", "/schemas"): (),
    ("GET", "/schemas/ids/{schema_id}"): _SCHEMA,
    ("GET", "/schemas/ids/{schema_id}/schema"): _SCHEMA,
    ("GET", "/schemas/ids/{schema_id}/subjects"): _SCHEMA,
    ("GET", "/schemas/ids/{schema_id}/versions"): _SCHEMA,
    ("GET", "/schemas/types"): (),
    # Confluent's compatibility levels and checks.
    ("GET", "/config"): (),
    ("PUT", "/config"): (InvalidCompatibilityLevel, *_MODE),
    ("DELETE", "/config"): _MODE,
    ("GET", "/config/{subject}"): (SubjectCompatibilityNotConfigured,),
    ("PUT", "/config/{subject}"): (InvalidCompatibilityLevel, *_MODE),
    ("DELETE", "/config/{subject}"): (*_SUBJECT, SubjectCompatibilityNotConfigured, *_MODE),
    ("POST", "/compatibility/subjects/{subject}/versions"): (InvalidSchema,),
    ("POST", "/compatibility/subjects/{subject}/versions/{version}"): (*_VERSION, InvalidSchema),
    # Confluent's modes.
    ("GET", "/mode"): (),
    ("PUT", "/mode"): (InvalidMode, *_MODE),
    ("GET", "/mode/{subject}"): (SubjectModeNotConfigured,),
    ("PUT", "/mode/{subject}"): (InvalidMode, *_MODE),
    ("DELETE", "/mode/{subject}"): _SUBJECT,
}
# What every operation of Confluent's API but ``GET /`` may answer besides: an ``Accept`` it cannot
# meet, and a body of a media type it does not read (``schema_api._negotiate``).
_CONFLUENT_ALWAYS: Errors = (NotAcceptable,)
_CONFLUENT_BODY: Errors = (UnsupportedMediaType,)

# A name with one character that is not whitespace (Python's, as ``str.strip`` sees it: ``\s``
# plus the separators ECMA regexes do not count, and the BOM they do).
_NON_BLANK: dict[str, Any] = {
    "minLength": 1,
    "maxLength": MAX_NAME_LENGTH,
    "pattern": "[^\\s\\x1c-\\x1f\\x85]|\\ufeff",
}
# The rules the services check themselves (naming the field), stated for the document.
CONSTRAINTS: dict[tuple[str, str], dict[str, Any]] = {
    ("NewConnector", "name"): _NON_BLANK,
    ("ConnectorChanges", "name"): _NON_BLANK,
    ("DuplicateRequest", "name"): _NON_BLANK,
    ("NewPipeline", "name"): _NON_BLANK,
    ("NewConnector", "fields"): {"minItems": 1},
    ("ConnectorChanges", "fields"): {"minItems": 1},
    ("NewConnector", "partitions"): {"minimum": 1},
    ("NewConnector", "rate_limit_per_s"): {"exclusiveMinimum": 0},
    ("ConnectorChanges", "rate_limit_per_s"): {"exclusiveMinimum": 0},
    # Confluent's: any letter case of a level; Avro only.
    ("ConfigRequest", "compatibility"): {
        "enum": [v for level in CompatibilityLevel for v in (level.value, level.value.lower())]
    },
    ("SchemaRequest", "schemaType"): {"enum": ["AVRO"]},
    # Confluent's: any letter case of a mode.
    ("ModeBody", "mode"): {"enum": [v for mode in MODES for v in (mode, mode.lower())]},
}
# A version as ``registry/schemas.parse_version`` reads it: ``latest``, ``-1``, or 1 … 2^31-1
# (leading zeros allowed).
_VERSION_NUMBER = (
    "[1-9][0-9]{0,8}|1[0-9]{9}|20[0-9]{8}|21[0-3][0-9]{7}|214[0-6][0-9]{6}|2147[0-3][0-9]{5}"
    "|21474[0-7][0-9]{4}|214748[0-2][0-9]{3}|2147483[0-5][0-9]{2}|21474836[0-3][0-9]"
    "|214748364[0-7]"
)
VERSION_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": f"^(latest|-1|0*({_VERSION_NUMBER}))$",
    "description": 'a version number (1 … 2^31-1), or "latest" (or -1)',
}

# Operations answering a stored schema's own text (JSON: for Avro an object, array or string).
RAW_SCHEMA_OPERATIONS = {
    ("GET", "/subjects/{subject}/versions/{version}/schema"),
    ("GET", "/schemas/ids/{schema_id}/schema"),
}
RAW_SCHEMA: dict[str, Any] = {
    "description": "the schema's text as registered: JSON (an Avro object, array or string)",
}

# What a create answers leads to the operations on what it made (OpenAPI links).
LINKS: dict[tuple[str, str], tuple[str, str, list[str]]] = {
    ("POST", "/v1/connectors"): (
        "/v1/connectors/{connector_id}",
        "connector_id",
        ["get", "patch", "delete"],
    ),
    ("POST", "/v1/pipelines"): ("/v1/pipelines/{pipeline_id}", "pipeline_id", ["get", "delete"]),
}

# Example records, read raw as the ingest URL reads a body (Litestar sees no body parameter).
_EXAMPLE_RECORD: dict[str, Any] = {"type": "object", "description": "one example record"}
EXAMPLE_BODY: dict[str, Any] = {
    "required": True,
    "description": (
        "Example records to propose fields from, read as the ingest URL reads a body: JSON (one "
        "object or an array of objects), NDJSON (`application/x-ndjson`, one object a line) or "
        "CSV (`text/csv`, a header line, then a record a line); `Content-Encoding: gzip` is read. "
        f"At most {MAX_EXAMPLE_BYTES} bytes (after decompression) and {MAX_EXAMPLE_RECORDS} "
        "records."
    ),
    "content": {
        "application/json": {
            "schema": {"oneOf": [_EXAMPLE_RECORD, {"type": "array", "items": _EXAMPLE_RECORD}]},
        },
        "application/x-ndjson": {
            "schema": {"type": "string", "description": "one JSON object a line"},
        },
        "text/csv": {
            "schema": {"type": "string", "description": "a header line, then a record a line"},
        },
    },
}
RAW_BODY_OPERATIONS = {("POST", "/v1/connectors/infer-fields"): EXAMPLE_BODY}

CONFLUENT_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Confluent Schema Registry's error body",
    "required": ["error_code", "message"],
    "properties": {"error_code": {"type": "integer"}, "message": {"type": "string"}},
}


def _answers(method: str, path: str, operation: Operation) -> Iterator[ErrorAnswer]:
    admin = path.startswith(ADMIN_PATH_PREFIX)
    # ``GET /`` answers whatever the client accepts (``schema_api.root``): no 406 there.
    confluent = () if admin or path == "/" else _CONFLUENT_ALWAYS
    if not admin and "requestBody" in operation:
        confluent += _CONFLUENT_BODY
    for error in (*_ALWAYS, *ERRORS[method, path], *confluent):
        name = error.code if admin else str(error.error_code)
        yield from _answer(admin, status_of(error), name, retry_after=answers_retry_after(error))
    if operation.get("parameters") or "requestBody" in operation:
        yield from _answer(admin, 422, "validation_failed" if admin else "422")
    if "requestBody" in operation:
        yield from _answer(admin, 400 if admin else 422, "malformed_request" if admin else "422")


def _answer(
    admin: bool, status: int, name: str, *, retry_after: bool = False
) -> Iterator[ErrorAnswer]:
    if admin:
        yield ErrorAnswer(status, name, retry_after=retry_after)
        return
    # Confluent's errors come in whichever of its media types the client accepts (``_media``).
    for media_type in ANSWER_MEDIA_TYPES:
        yield ErrorAnswer(status, name, media_type, "ConfluentError", retry_after)


def _in_every_media_type(operation: Operation) -> None:
    """A Confluent answer's body, described in each media type the API answers in."""
    for response in operation.get("responses", {}).values():
        content = response.get("content", {})
        if CONFLUENT_MEDIA_TYPE in content:
            for media_type in ANSWER_MEDIA_TYPES:
                content.setdefault(media_type, content[CONFLUENT_MEDIA_TYPE])


def complete(document: Document) -> None:
    """Add every operation's error answers to ``document`` (Litestar's, as generated)."""
    served = {(method, path) for method, path, _ in operations(document)}
    if served != set(ERRORS):
        missing = sorted(served - set(ERRORS))
        unknown = sorted(set(ERRORS) - served)
        raise RuntimeError(f"registry/_openapi.py: undocumented {missing}, not served {unknown}")
    add_schemas(document, {"Problem": PROBLEM_SCHEMA, "ConfluentError": CONFLUENT_ERROR_SCHEMA})
    forbid_unknown_properties(document)
    constrain(document, CONSTRAINTS)
    # Missing is refused as an invalid level (42203), like Confluent: the level is required.
    config = document["components"]["schemas"]["ConfigRequest"]
    config["required"] = ["compatibility"]
    config["properties"]["compatibility"].pop("default", None)
    # The same for a mode (42204).
    mode = document["components"]["schemas"]["ModeBody"]
    mode["required"] = ["mode"]
    mode["properties"]["mode"].pop("default", None)
    for method, path, operation in operations(document):
        if (method, path) in LINKS:
            _link(operation, *LINKS[method, path])
        if (method, path) in RAW_BODY_OPERATIONS:
            operation["requestBody"] = RAW_BODY_OPERATIONS[method, path]
        if (method, path) in RAW_SCHEMA_OPERATIONS:
            operation["responses"]["200"]["content"][CONFLUENT_MEDIA_TYPE]["schema"] = RAW_SCHEMA
        if not path.startswith(ADMIN_PATH_PREFIX):
            _in_every_media_type(operation)
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path" and parameter["name"] == "version":
                parameter["schema"] = VERSION_SCHEMA
        # Litestar's generic 400 (its ValidationException body) is not what this app answers.
        operation.get("responses", {}).pop("400", None)
        document_errors(operation, _answers(method, path, operation))


def _link(operation: Operation, target: str, parameter: str, methods: list[str]) -> None:
    pointer = target.replace("~", "~0").replace("/", "~1")
    operation["responses"]["201"]["links"] = {
        f"{method}_{parameter.removesuffix('_id')}": {
            "operationRef": f"#/paths/{pointer}/{method}",
            "parameters": {parameter: "$response.body#/id"},
        }
        for method in methods
    }
