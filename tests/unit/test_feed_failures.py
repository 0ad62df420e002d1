"""What a feed says of a failed session: a safe summary (never the far end's words), transient
or permanent."""

from __future__ import annotations

import errno

import psycopg
import pytest

from consumers._failures import MAX_MESSAGE_CHARS, describe
from consumers.sinks import SinkFenced
from inlet.errors import Problem
from inlet.sealing import SealBroken
from inlet.sink_rules import SinkRefused

BANNER = "SSH-2.0-OpenSSH_9.6 SECRET-BANNER"


def _connection(reason: str) -> psycopg.OperationalError:
    return psycopg.OperationalError(
        f'connection failed: connection to server at "192.0.2.7", port 22 failed: {reason}'
    )


AUTH, GONE, BUSY, ALIEN = "authentication failed", "does not exist", "does not accept", "speak"


@pytest.mark.parametrize(
    ("reason", "summary", "kind"),
    [
        ('FATAL:  password authentication failed for user "u"', AUTH, "permanent"),
        ('FATAL:  role "nobody" does not exist', AUTH, "permanent"),
        ('FATAL:  no pg_hba.conf entry for host "1.2.3.4"', AUTH, "permanent"),
        ('FATAL:  database "nope" does not exist', GONE, "permanent"),
        ("Connection refused\n\tIs the server running?", "connection refused", "transient"),
        ("timeout expired", "connection timed out", "transient"),
        ("FATAL:  sorry, too many connections", BUSY, "transient"),
        ("FATAL:  the database system is starting up", BUSY, "transient"),
        (
            f"expected authentication request from server, but received S {BANNER}",
            ALIEN,
            "permanent",
        ),
        (f"received invalid response to SSL negotiation: H {BANNER}", ALIEN, "permanent"),
        (f"SSL error: certificate verify failed {BANNER}", "TLS", "permanent"),
        (f"server closed the connection unexpectedly {BANNER}", "closed", "transient"),
        (f"something libpq never said before {BANNER}", "could not connect", "transient"),
    ],
)
def test_connection_failures_are_named_not_quoted(reason: str, summary: str, kind: str) -> None:
    failure = describe(_connection(reason))
    assert summary in failure.message
    assert failure.kind == kind
    assert "SECRET-BANNER" not in failure.message
    assert "192.0.2.7" not in failure.message


def test_name_lookups() -> None:
    gone = psycopg.OperationalError(
        "failed to resolve host 'no.such.invalid': Name or service not known"
    )
    assert (describe(gone).message, describe(gone).kind) == (
        "PostgreSQL: host name not found",
        "permanent",
    )
    later = psycopg.OperationalError(
        "could not translate host name: Temporary failure in name resolution"
    )
    assert describe(later).kind == "transient"


def test_a_server_error_after_login_keeps_its_sqlstate() -> None:
    denied = psycopg.errors.InsufficientPrivilege("permission denied for schema public")
    failure = describe(denied)
    assert failure.kind == "permanent"
    assert failure.message == "PostgreSQL 42501: permission denied for schema public"
    assert describe(psycopg.errors.AdminShutdown("terminating connection")).kind == "transient"


def test_files_and_inlet_errors() -> None:
    blocked = NotADirectoryError(errno.ENOTDIR, "Not a directory", "/srv/lake/blocked/orders")
    assert describe(blocked).message == "files: Not a directory: /srv/lake/blocked/orders"
    assert describe(blocked).kind == "permanent"
    assert describe(ConnectionResetError(errno.ECONNRESET, "reset")).kind == "transient"
    refused = SinkRefused(Problem(field="sink.dsn", reason="host 'x' is not allowed"))
    assert describe(refused).kind == "permanent"
    assert "host 'x'" in describe(refused).message
    assert describe(SealBroken("the DSN is sealed with another key")).kind == "permanent"
    assert describe(SinkFenced("partition 1")).kind == "transient"


def test_unknown_errors_say_only_their_type() -> None:
    failure = describe(RuntimeError(f"a value {BANNER}"))
    assert failure.message == "unexpected RuntimeError (see the consumers' log)"
    assert not failure.expected


def test_messages_are_bounded() -> None:
    huge = psycopg.errors.UndefinedTable("x" * 10_000)
    assert len(describe(huge).message) == MAX_MESSAGE_CHARS
