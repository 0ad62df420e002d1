"""What a pipeline delivered: the record ids in its PostgreSQL table or its Parquet files.

"Exactly the topic's records" is a multiset equality: the sinks take each record of the topic
once, so a duplicate on the topic (a client's retry) is a duplicate row too, and nothing else is.
"""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
from psycopg import sql


def postgres_ids(dsn: str, table: str) -> Counter[str]:
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        if exists is None or exists[0] is None:
            return Counter()
        rows = conn.execute(sql.SQL("SELECT id::text FROM {}").format(sql.Identifier(table)))
        return Counter(str(row[0]) for row in rows)


def parquet_ids(directory: Path) -> Counter[str]:
    found: Counter[str] = Counter()
    # Delivered files only: ``.inlet/`` holds the ones being written.
    for path in sorted(directory.glob("dt=*/*.parquet")):
        for value in pq.read_table(path, columns=["id"]).column("id").to_pylist():
            found[str(uuid.UUID(bytes=value)) if isinstance(value, bytes) else str(value)] += 1
    return found


def difference(expected: Counter[str], actual: Counter[str]) -> dict[str, int]:
    """Missing and extra copies (0 and 0: exactly the expected records)."""
    return {
        "missing": sum((expected - actual).values()),
        "extra": sum((actual - expected).values()),
    }
