"""Domain errors of the registry service. They know nothing of HTTP.

Each error carries a stable ``code``. The Confluent-compatible API answers with ``error_code`` (the
numbers Confluent Schema Registry uses); the admin API answers ``application/problem+json`` whose
``type`` ends in the error's ``slug``. The one table that maps these to HTTP lives in
``registry/_http_errors.py``.
"""

from __future__ import annotations

from enum import IntEnum

import msgspec


class ErrorCode(IntEnum):
    """Confluent Schema Registry's error codes, and Inlet's own admin codes in the same scheme."""

    INVALID_CURSOR = 40050
    UNAUTHORIZED = 40101
    SUBJECT_NOT_FOUND = 40401
    VERSION_NOT_FOUND = 40402
    SCHEMA_NOT_FOUND = 40403
    SUBJECT_SOFT_DELETED = 40404
    SUBJECT_NOT_SOFT_DELETED = 40405
    SCHEMA_VERSION_SOFT_DELETED = 40406
    SCHEMA_VERSION_NOT_SOFT_DELETED = 40407
    SUBJECT_LEVEL_COMPATIBILITY_NOT_CONFIGURED = 40408
    CONNECTOR_NOT_FOUND = 40450
    PIPELINE_NOT_FOUND = 40451
    SCHEMAS_ELSEWHERE = 40460
    INCOMPATIBLE_SCHEMA = 409
    NAME_TAKEN = 40950
    NOT_ENOUGH_SAMPLES = 40951
    CONNECTOR_IN_USE = 40952
    REPLAY_CONFLICT = 40953
    INVALID_SCHEMA = 42201
    INVALID_VERSION = 42202
    INVALID_COMPATIBILITY_LEVEL = 42203
    INVALID_CONNECTOR = 42250
    INVALID_PIPELINE = 42251
    STORE_ERROR = 50001
    STORE_TIMEOUT = 50002
    SCHEMA_REGISTRY_FAILED = 50201
    KAFKA_UNAVAILABLE = 50301
    SCHEMA_REGISTRY_UNAVAILABLE = 50302


class Problem(msgspec.Struct, frozen=True, omit_defaults=True):
    """One thing wrong with a request: where (``field``, a name or dotted path) and why."""

    field: str
    reason: str


class RegistryError(Exception):
    """Base of every domain error; ``retryable`` says whether the same call may succeed later."""

    code: ErrorCode = ErrorCode.STORE_ERROR
    retryable: bool = False

    def __init__(self, message: str, *, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []


class SubjectNotFound(RegistryError):
    code = ErrorCode.SUBJECT_NOT_FOUND


class VersionNotFound(RegistryError):
    code = ErrorCode.VERSION_NOT_FOUND


class SchemaNotFound(RegistryError):
    code = ErrorCode.SCHEMA_NOT_FOUND


class SubjectSoftDeleted(RegistryError):
    code = ErrorCode.SUBJECT_SOFT_DELETED


class SubjectNotSoftDeleted(RegistryError):
    code = ErrorCode.SUBJECT_NOT_SOFT_DELETED


class SchemaVersionSoftDeleted(RegistryError):
    code = ErrorCode.SCHEMA_VERSION_SOFT_DELETED


class SchemaVersionNotSoftDeleted(RegistryError):
    code = ErrorCode.SCHEMA_VERSION_NOT_SOFT_DELETED


class SubjectCompatibilityNotConfigured(RegistryError):
    code = ErrorCode.SUBJECT_LEVEL_COMPATIBILITY_NOT_CONFIGURED


class IncompatibleSchema(RegistryError):
    """``reasons`` are the checker's, one per problem, for callers that report them separately."""

    code = ErrorCode.INCOMPATIBLE_SCHEMA

    def __init__(
        self,
        message: str,
        *,
        problems: list[Problem] | None = None,
        reasons: list[str] | None = None,
    ) -> None:
        super().__init__(message, problems=problems)
        self.reasons = reasons or []


class InvalidSchema(RegistryError):
    code = ErrorCode.INVALID_SCHEMA


class InvalidVersion(RegistryError):
    code = ErrorCode.INVALID_VERSION


class InvalidCompatibilityLevel(RegistryError):
    code = ErrorCode.INVALID_COMPATIBILITY_LEVEL


class ConnectorNotFound(RegistryError):
    code = ErrorCode.CONNECTOR_NOT_FOUND


class PipelineNotFound(RegistryError):
    code = ErrorCode.PIPELINE_NOT_FOUND


class InvalidPipeline(RegistryError):
    """A pipeline definition (name, connector, sink) that cannot be accepted."""

    code = ErrorCode.INVALID_PIPELINE


class NameTaken(RegistryError):
    code = ErrorCode.NAME_TAKEN


class InvalidConnector(RegistryError):
    """A connector definition (name, fields, key_field, settings) that cannot be accepted."""

    code = ErrorCode.INVALID_CONNECTOR


class InvalidCursor(RegistryError):
    """A pagination cursor this service did not hand out (or that is damaged)."""

    code = ErrorCode.INVALID_CURSOR


class NotEnoughSamples(RegistryError):
    code = ErrorCode.NOT_ENOUGH_SAMPLES


class ReplayConflict(RegistryError):
    """Another replay of the same connector runs (or took over): try again after it."""

    code = ErrorCode.REPLAY_CONFLICT


class ConnectorInUse(RegistryError):
    """Pipelines still read the connector: they go first, so no feed is cut off unawares."""

    code = ErrorCode.CONNECTOR_IN_USE


class StoreTimeout(RegistryError):
    """The log did not confirm a write in time; the write may or may not have happened."""

    code = ErrorCode.STORE_TIMEOUT
    retryable = True


class KafkaUnavailable(RegistryError):
    code = ErrorCode.KAFKA_UNAVAILABLE
    retryable = True


class SchemasElsewhere(RegistryError):
    """Schemas live in an external registry (``schema_registry_url``): ask it, not Inlet."""

    code = ErrorCode.SCHEMAS_ELSEWHERE


class SchemaRegistryUnavailable(RegistryError):
    """The external schema registry did not answer, or answered with a server error."""

    code = ErrorCode.SCHEMA_REGISTRY_UNAVAILABLE
    retryable = True


class SchemaRegistryFailed(RegistryError):
    """The external schema registry answered what Inlet cannot use (refused credentials...)."""

    code = ErrorCode.SCHEMA_REGISTRY_FAILED


class Unauthorized(RegistryError):
    """No valid admin token (``Authorization: Bearer <token>``, or as the Basic password)."""

    code = ErrorCode.UNAUTHORIZED
