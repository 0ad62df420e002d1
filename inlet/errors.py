"""Domain errors that more than one service raises or reads. They know nothing of HTTP.

Every error has a stable ``code`` (snake_case, from its class name unless the class says
otherwise): Inlet's own API answers ``application/problem+json`` with it (``inlet/problems.py``).
``error_code`` is its number in Confluent Schema Registry's scheme (40401, 50301...), for the
Confluent-compatible API and for reading another registry's answers; Inlet's own admin errors
use the same scheme (404xx, 409xx, 422xx). ``retryable`` says whether the same call may succeed
later; ``problems`` say what is wrong where; ``details()`` gives extra members an answer carries.
Each app has one table that maps these to HTTP statuses.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import msgspec

_WORD_START = re.compile(r"(?<!^)(?=[A-Z])")


def snake_case(name: str) -> str:
    """``ConnectorNotFound`` → ``connector_not_found``."""
    return _WORD_START.sub("_", name).lower()


class Problem(msgspec.Struct, frozen=True, omit_defaults=True):
    """One thing wrong with a request: where (``field``, a name or dotted path) and why."""

    field: str
    reason: str


class InletError(Exception):
    """Base of every domain error."""

    code: ClassVar[str] = "inlet_error"
    error_code: ClassVar[int] = 50001  # Confluent's "error in the backend data store"
    retryable: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" not in cls.__dict__:
            cls.code = snake_case(cls.__name__)

    def __init__(self, message: str, *, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []

    def details(self) -> dict[str, object]:
        """Extra members for the error's answer; empty when the message says it all."""
        return {}


# --- Infrastructure ------------------------------------------------------------------------------


class KafkaUnavailable(InletError):
    """Kafka did not answer (or did not take the records): nothing was done; try again later."""

    error_code = 50301
    retryable = True

    def __init__(
        self, message: str = "Kafka is unavailable", *, retry_after_s: float = 1.0
    ) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def details(self) -> dict[str, object]:
        return {"retry_after_s": self.retry_after_s}


class KafkaRefused(InletError):
    """Kafka refused the records for good: the same request would be refused again until
    something changes (the records, a topic, Inlet's credentials). Not retryable; which librdkafka
    errors are permanent is decided in one place, ``inlet/kafka_errors.py``."""


class KafkaRecordTooLarge(KafkaRefused):
    """A record is larger than its topic takes: the topic's ``max.message.bytes`` is below
    ``INLET_MAX_MESSAGE_BYTES`` (a topic made or changed outside Inlet), else the gateway would
    have refused the record itself (``record_too_large``)."""


class KafkaNotAuthorized(KafkaRefused):
    """Kafka refused Inlet's credentials, or their permission to write the topic."""


class KafkaTopicMissing(KafkaRefused):
    """The topic (or partition) does not exist: deleted outside Inlet."""


class StoreTimeout(InletError):
    """The log did not confirm a write in time; the write may or may not have happened."""

    error_code = 50002
    retryable = True


class StateUnavailable(InletError):
    """This process could not bring its copy of the state up to date with the log (its reader is
    behind, restarting or dead, or Kafka does not answer), so it cannot tell what is there: a
    lookup that found nothing says this rather than "not found". Try again later."""

    error_code = 50303
    retryable = True

    def __init__(
        self, message: str = "the state is not up to date", *, retry_after_s: float = 1.0
    ) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def details(self) -> dict[str, object]:
        return {"retry_after_s": self.retry_after_s}


class InvalidCursor(InletError):
    """A pagination cursor this service did not hand out (or that is damaged)."""

    error_code = 40050


# --- Connectors ----------------------------------------------------------------------------------


class ConnectorNotFound(InletError):
    error_code = 40450


class InvalidConnector(InletError):
    """A connector definition (name, fields, key_field, settings) that cannot be accepted."""

    error_code = 42250


# --- Schemas (Inlet's registry, or another Confluent-compatible one) ------------------------------


class SubjectNotFound(InletError):
    error_code = 40401


class VersionNotFound(InletError):
    error_code = 40402


class SchemaNotFound(InletError):
    error_code = 40403


class SubjectSoftDeleted(InletError):
    error_code = 40404


class SubjectNotSoftDeleted(InletError):
    error_code = 40405


class SchemaVersionSoftDeleted(InletError):
    error_code = 40406


class SchemaVersionNotSoftDeleted(InletError):
    error_code = 40407


class IncompatibleSchema(InletError):
    """``reasons`` are the checker's, one per problem, for callers that report them separately."""

    error_code = 409

    def __init__(
        self,
        message: str,
        *,
        problems: list[Problem] | None = None,
        reasons: list[str] | None = None,
    ) -> None:
        super().__init__(message, problems=problems)
        self.reasons = reasons or []


class InvalidSchema(InletError):
    error_code = 42201


class InvalidVersion(InletError):
    error_code = 42202


class SchemaRegistryUnavailable(InletError):
    """The external schema registry did not answer, or answered with a server error."""

    error_code = 50302
    retryable = True


class SchemaRegistryFailed(InletError):
    """The external schema registry answered what Inlet cannot use (refused credentials...)."""

    error_code = 50201
