"""Sink settings of pipelines: validation, the default table name, identity, and DSN masking.

Pure functions: the admin API validates with them, and shows DSNs through ``mask_dsn`` only, so
a password given in a DSN (``postgresql://u:secret@h/db`` or ``host=h password=secret``) is
never returned.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from inlet.errors import Problem
from inlet.model.pipelines import FilesSink, PostgresSink, Sink

MASK = "***"
MAX_IDENTIFIER_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NOT_SLUG = re.compile(r"[^a-z0-9_]+")
_URL_SCHEMES = ("postgresql://", "postgres://")


def default_table(pipeline_name: str) -> str:
    """A table name from a pipeline's name: lower case, ``[a-z0-9_]``, at most 63 bytes."""
    slug = _NOT_SLUG.sub("_", pipeline_name.lower()).strip("_")
    if not slug or slug[0].isdigit():
        slug = f"pipeline_{slug}".rstrip("_")
    return slug[:MAX_IDENTIFIER_BYTES]


def table_parts(table: str) -> tuple[str, ...]:
    """``"name"`` or ``"schema.name"`` as its parts (validated by ``sink_problems``)."""
    return tuple(table.split("."))


def with_defaults(sink: Sink, pipeline_name: str) -> Sink:
    """The sink as stored: a PostgreSQL sink always names its table."""
    if isinstance(sink, PostgresSink) and sink.table is None:
        return msgspec.structs.replace(sink, table=default_table(pipeline_name))
    return sink


def sink_problems(sink: Sink) -> list[Problem]:
    if isinstance(sink, PostgresSink):
        return _postgres_problems(sink)
    return _files_problems(sink)


def _postgres_problems(sink: PostgresSink) -> list[Problem]:
    problems: list[Problem] = []
    if not sink.dsn.strip():
        problems.append(Problem(field="sink.dsn", reason="must not be blank"))
    else:
        try:
            conninfo_to_dict(sink.dsn)
        except psycopg.ProgrammingError:
            # The library's message can quote the DSN, password included: not repeated here.
            problems.append(Problem(field="sink.dsn", reason="not a PostgreSQL connection string"))
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


def _files_problems(sink: FilesSink) -> list[Problem]:
    # Workers may run anywhere and from any working directory: only absolute paths mean one place.
    if not Path(sink.directory).is_absolute():
        return [Problem(field="sink.directory", reason="must be an absolute path")]
    return []


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
    """``dsn`` with its password replaced by ``***``, in the form it was written."""
    if dsn.startswith(_URL_SCHEMES):
        return _mask_url(dsn)
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return MASK  # unreadable (never stored: validated on create); show nothing of it
    if "password" not in params:
        return dsn
    return make_conninfo(dsn, password=MASK)


def _mask_url(dsn: str) -> str:
    parts = urlsplit(dsn)
    netloc = parts.netloc
    userinfo, at, hosts = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.partition(':')[0]}:{MASK}@{hosts}"
    query = [(k, MASK if k == "password" else v) for k, v in parse_qsl(parts.query, True)]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="*")))
