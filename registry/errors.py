"""Domain errors only the registry service raises. They know nothing of HTTP.

The base class, the ``code`` / ``error_code`` scheme and the errors other services share are in
``inlet/errors.py``; the one table that maps errors to HTTP is ``registry/_http_errors.py``.
"""

from __future__ import annotations

from inlet.errors import InletError, InvalidSchema


class SubjectCompatibilityNotConfigured(InletError):
    error_code = 40408


class UnresolvedReference(InvalidSchema):
    """A reference names a subject version the state does not have: Confluent's 42201, the same
    ``code`` as any invalid schema. Apart from it so that a read confirms it on caught-up state
    first, as it does a not-found (``SchemaRegistry._read``)."""

    code = InvalidSchema.code


class InvalidCompatibilityLevel(InletError):
    error_code = 42203


class PipelineNotFound(InletError):
    error_code = 40451


class InvalidPipeline(InletError):
    """A pipeline definition (name, connector, sink) that cannot be accepted."""

    error_code = 42251


class NameTaken(InletError):
    error_code = 40950


class NotEnoughSamples(InletError):
    error_code = 40951


class ReplayConflict(InletError):
    """Another replay of the same connector runs (or took over): try again after it."""

    error_code = 40953


class ConnectorInUse(InletError):
    """Pipelines still read the connector: they go first, so no feed is cut off unawares."""

    error_code = 40952


class SchemasElsewhere(InletError):
    """Schemas live in an external registry (``schema_registry_url``): ask it, not Inlet."""

    error_code = 40460


class Unauthorized(InletError):
    """No valid admin token (``Authorization: Bearer <token>``, or as the Basic password)."""

    error_code = 40101


class SignInRequired(Unauthorized):
    """A console page asked for without a console session (``registry/console/session.py``);
    ``wanted`` is the page, to come back to after signing in."""

    def __init__(self, message: str, *, wanted: str) -> None:
        super().__init__(message)
        self.wanted = wanted


class ReferenceExists(InletError):
    """Other schemas' references name the version: they go first (permanently), as in Confluent."""

    error_code = 42206


class VerifySecretNotFound(InletError):
    """No secret of the connector's ``verify`` setting has this fingerprint."""

    error_code = 40452


class SubjectModeNotConfigured(InletError):
    error_code = 40409


class InvalidMode(InletError):
    error_code = 42204


class OperationNotPermitted(InletError):
    """The mode forbids it: a write in READONLY, an explicit id outside IMPORT (Confluent's)."""

    error_code = 42205


class NotAcceptable(InletError):
    """The client accepts none of the media types the Confluent-compatible API answers in."""

    error_code = 406


class UnsupportedMediaType(InletError):
    """A request body in a media type the Confluent-compatible API does not read."""

    error_code = 415
