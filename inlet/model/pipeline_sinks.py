"""Sink settings of pipelines: validation, the default table name, identity, and DSN masking.

Pure functions (but for ``SinkRules``' look at the file system): the admin API validates with
them, and shows DSNs through ``mask_dsn`` only, so a password given in a DSN
(``postgresql://u:secret@h/db`` or ``host=h password=secret``) is never returned; feeds scrub
what libraries say of a DSN with ``dsn_secrets``.
"""

from __future__ import annotations

import os
import re
from urllib.parse import quote

import msgspec
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from inlet.errors import Problem
from inlet.model.pipelines import FilesSink, PostgresSink, Sink
from inlet.sink_rules import SinkRules

MASK = "***"
MAX_IDENTIFIER_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NOT_SLUG = re.compile(r"[^a-z0-9_]+")
_URL_SCHEMES = ("postgresql://", "postgres://")
# Parameters whose values are secrets (the server's password; the client key's passphrase).
SECRET_PARAMETERS = ("password", "sslpassword")
_MAX_NESTING = 2


def default_table(pipeline_name: str) -> str:
    """A table name from a pipeline's name: lower case, ``[a-z0-9_]``, at most 63 bytes."""
    slug = _NOT_SLUG.sub("_", pipeline_name.lower()).strip("_")
    if not slug or slug[0].isdigit():
        slug = f"pipeline_{slug}".rstrip("_")
    return slug[:MAX_IDENTIFIER_BYTES]


def table_parts(table: str) -> tuple[str, ...]:
    """``"name"`` or ``"schema.name"`` as its parts (validated by ``sink_problems``)."""
    return tuple(table.split("."))


def stored_sink(sink: Sink, pipeline_name: str, rules: SinkRules) -> Sink:
    """The sink as stored (checked by ``sink_problems`` first): a PostgreSQL sink always names its
    table; a files sink's directory is relative to the files root, resolved."""
    if isinstance(sink, PostgresSink):
        if sink.table is None:
            return msgspec.structs.replace(sink, table=default_table(pipeline_name))
        return sink
    return msgspec.structs.replace(sink, directory=rules.stored_directory(sink.directory))


def sink_problems(sink: Sink, rules: SinkRules) -> list[Problem]:
    if isinstance(sink, PostgresSink):
        return _postgres_problems(sink, rules)
    return rules.directory_problems(sink.directory)


def _postgres_problems(sink: PostgresSink, rules: SinkRules) -> list[Problem]:
    problems: list[Problem] = []
    if not sink.dsn.strip():
        problems.append(Problem(field="sink.dsn", reason="must not be blank"))
    else:
        try:
            params = conninfo_to_dict(sink.dsn)
        except psycopg.ProgrammingError:
            # The library's message can quote the DSN, password included: not repeated here.
            problems.append(Problem(field="sink.dsn", reason="not a PostgreSQL connection string"))
        else:
            if _is_conninfo(str(params.get("dbname", ""))):
                # libpq's PQconnectdb (what psycopg calls) takes it as a database's name, so it
                # never connects as meant; and the hosts in it would escape INLET_SINK_HOSTS.
                reason = "dbname holds a connection string: give its parameters in the DSN itself"
                problems.append(Problem(field="sink.dsn", reason=reason))
            else:
                problems += rules.host_problems({k: str(v) for k, v in params.items()})
    if sink.table is not None:
        parts = table_parts(sink.table)
        if len(parts) > 2 or not all(_valid_identifier(part) for part in parts):
            reason = (
                "must be a name or schema.name, each [A-Za-z_][A-Za-z0-9_]* of at most "
                f"{MAX_IDENTIFIER_BYTES} characters"
            )
            problems.append(Problem(field="sink.table", reason=reason))
    return problems


def _valid_identifier(name: str) -> bool:
    return bool(_IDENTIFIER.fullmatch(name)) and len(name) <= MAX_IDENTIFIER_BYTES


def sink_identity(sink: Sink) -> str:
    """What two pipelines must not share: one database table, or one directory.

    Each pipeline's feed owns its destination (the offsets it resumes from are derived from it),
    so a second pipeline writing there would corrupt both.
    """
    if isinstance(sink, FilesSink):
        return "files:" + os.path.normpath(sink.directory)
    try:
        params = conninfo_to_dict(sink.dsn)
    except psycopg.ProgrammingError:
        params = {}
    parts = table_parts(sink.table or "")
    qualified = ".".join(parts if len(parts) == 2 else ("public", *parts))
    where = [str(params.get(k, "")) for k in ("host", "port", "dbname")]
    return "postgres:" + ":".join([*where, qualified])


def mask_dsn(dsn: str) -> str:
    """``dsn`` as libpq reads it, its secrets replaced by ``***``, in key=value form.

    Parsed by libpq's own parser (``conninfo_to_dict``) and written back by ``make_conninfo``, so
    what is masked is what libpq would send (a password with ``#``, ``?``, ``@``, ``/`` or spaces,
    percent-encoded or quoted, in a URI's userinfo or its query), and what is shown reads back as
    the same parameters. A ``dbname`` holding a connection string is masked the same way.
    """
    masked = _masked(dsn, _MAX_NESTING)
    return MASK if masked is None else masked


def _masked(dsn: str, depth: int) -> str | None:
    try:
        params = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    except psycopg.ProgrammingError:
        return None  # unreadable (refused on create); show nothing of it
    for key in SECRET_PARAMETERS:
        if key in params:
            params[key] = MASK
    dbname = params.get("dbname")
    if dbname is not None and _is_conninfo(dbname):
        inner = _masked(dbname, depth - 1) if depth > 0 else None
        params["dbname"] = MASK if inner is None else inner
    return make_conninfo("", **params)


def dsn_secrets(dsn: str) -> list[str]:
    """What must never be shown of ``dsn``: its passwords as given and as written, and the whole
    DSN when libpq cannot read it. Messages from libraries are scrubbed of these."""
    found = [dsn]
    try:
        params = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    except psycopg.ProgrammingError:
        return found
    for key in SECRET_PARAMETERS:
        if params.get(key):
            found += [params[key], quote(params[key], safe="")]
    dbname = params.get("dbname", "")
    if _is_conninfo(dbname):
        found += dsn_secrets(dbname)
    return sorted(set(found), key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every secret in ``secrets`` replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def _is_conninfo(dbname: str) -> bool:
    # libpq's recognized_connection_string: a URI prefix, or an "=" anywhere.
    return dbname.startswith(_URL_SCHEMES) or "=" in dbname
