"""Why a feed's session failed, in words safe to show: ``describe(exc)``.

A pipeline's ``last_error`` is read over the admin API, and a DSN may point anywhere: quoting what
libpq says of a connection would quote the far end (a banner, the first bytes of another
protocol) and make the API a port probe that reads what it finds. So connection failures are
named by class (refused, timed out, authentication failed, no such database, not PostgreSQL...),
never quoted. Errors a PostgreSQL server raised after Inlet logged in (permission denied on the
schema...) keep their SQLSTATE and first line: the server is the one the pipeline is meant to
write to. Each class is also transient (likely to pass by itself: the status says ``retrying``)
or permanent (someone must fix it: ``failing``); the feed retries both.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass

import psycopg
from confluent_kafka import KafkaError, KafkaException

from consumers.sinks import SinkFenced
from inlet.model.pipelines import FailureKind
from inlet.sealing import SealBroken
from inlet.sink_rules import SinkRefused

MAX_MESSAGE_CHARS = 300


@dataclass(frozen=True)
class Failure:
    message: str
    kind: FailureKind
    expected: bool = True  # False: a bug or an unknown error, worth its traceback in the log


# libpq's connection messages (English; another locale falls through to the last line), in order:
# the first that matches names the failure.
_CONNECTION: list[tuple[str, str, FailureKind]] = [
    (r'database ".*" does not exist', "the database does not exist", "permanent"),
    (
        r"password authentication failed|authentication failed|no password supplied|pg_hba\.conf"
        r'|role ".*" does not exist|password is required',
        "authentication failed (wrong user or password, or pg_hba.conf refuses this client)",
        "permanent",
    ),
    (
        r"too many connections|remaining connection slots|is starting up|is shutting down"
        r"|in recovery mode|not yet accepting connections",
        "the server does not accept connections now (starting, stopping or full)",
        "transient",
    ),
    (r"Connection refused", "connection refused", "transient"),
    (r"timeout expired|timed out", "connection timed out", "transient"),
    (r"Temporary failure in name resolution", "host name lookup failed", "transient"),
    (
        r"could not translate host name|failed to resolve host|Name or service not known"
        r"|nodename nor servname",
        "host name not found",
        "permanent",
    ),
    (r"No route to host|Network is unreachable", "host unreachable", "transient"),
    (
        r"expected authentication request|invalid response to SSL negotiation"
        r"|unsupported frontend protocol|received invalid response|invalid message format",
        "the server there does not speak PostgreSQL's protocol",
        "permanent",
    ),
    (r"SSL|certificate|GSSAPI", "TLS or GSSAPI negotiation failed", "permanent"),
    (
        r"server closed the connection|terminating connection|connection.* lost"
        r"|could not receive data|could not send data",
        "the server closed the connection",
        "transient",
    ),
    (r"No such file or directory", "no server socket there", "transient"),
]
# SQLSTATE classes a retry will not fix: authorization (28), no such database (3D) or schema
# (3F), access rules and undefined objects (42), unsupported features (0A).
_PERMANENT_CLASSES = ("28", "3D", "3F", "42", "0A")
_PERMANENT_ERRNOS = {
    errno.EACCES,
    errno.EPERM,
    errno.ENOTDIR,
    errno.EEXIST,
    errno.EISDIR,
    errno.EROFS,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.ENAMETOOLONG,
    errno.ELOOP,
    errno.EINVAL,
}


def describe(exc: BaseException) -> Failure:
    """A bounded, safe summary of ``exc`` and whether it is transient or permanent."""
    failure = _describe(exc)
    message = " ".join(failure.message.split())
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    return Failure(message, failure.kind, failure.expected)


def _describe(exc: BaseException) -> Failure:
    if isinstance(exc, psycopg.Error):
        return _postgres(exc)
    if isinstance(exc, OSError):
        return _files(exc)
    if isinstance(exc, KafkaException):
        error = exc.args[0] if exc.args else None
        name = error.name() if isinstance(error, KafkaError) else type(exc).__name__
        return Failure(f"Kafka: {name}", "transient")
    known: list[tuple[type[BaseException], str, FailureKind]] = [
        (SinkRefused, "refused by the sink rules: ", "permanent"),
        (SealBroken, "", "permanent"),  # its message is Inlet's own
        (SinkFenced, "another worker took over: ", "transient"),
    ]
    for kind_of, prefix, kind in known:
        if isinstance(exc, kind_of):
            return Failure(f"{prefix}{exc}", kind)
    return Failure(f"unexpected {type(exc).__name__} (see the consumers' log)", "transient", False)


def _files(exc: OSError) -> Failure:
    kind: FailureKind = "permanent" if exc.errno in _PERMANENT_ERRNOS else "transient"
    reason = exc.strerror or type(exc).__name__
    where = f": {exc.filename}" if exc.filename else ""
    return Failure(f"files: {reason}{where}", kind)


def _postgres(exc: psycopg.Error) -> Failure:
    sqlstate = exc.sqlstate
    if sqlstate is None:
        if isinstance(exc, psycopg.ProgrammingError):
            return Failure("PostgreSQL: not a connection string libpq can read", "permanent")
        text = str(exc)
        for pattern, summary, kind in _CONNECTION:
            if re.search(pattern, text):
                return Failure(f"PostgreSQL: {summary}", kind)
        return Failure("PostgreSQL: could not connect", "transient")
    first_line = (exc.diag.message_primary or str(exc)).splitlines()[0] if str(exc) else ""
    kind = "permanent" if sqlstate.startswith(_PERMANENT_CLASSES) else "transient"
    return Failure(f"PostgreSQL {sqlstate}: {first_line}", kind)
