"""The PostgreSQL sink: a table per pipeline, rows by binary COPY, offsets in the same transaction.

Exactly once: each batch is one transaction that COPYs the rows and moves the pipeline's
offsets row per partition (table ``inlet_pipeline_offsets``, in the data table's schema). The
feed resumes from those offsets, so a crash before the commit repeats the batch into an empty
slate and a crash after it never repeats it. The offsets update is a compare-and-set on the
offset this worker started from: a worker that lost its partitions to another (a "zombie" after a
rebalance) fails its commit instead of writing rows twice (``SinkFenced``).

A record the database refuses (NOT NULL or other constraint violation, a value out of range, a
NUL character in text) is found by bisecting the batch inside savepoints, sent to the dead-letter
topic with the database's reason, and the rest of the batch is written: all in the same
transaction, and the dead letters are acknowledged by Kafka before it commits.

Idempotency keys (a connector with ``dedup``, the sink's ``dedup`` on: ``keyed``): the table has
a ``_inlet_dedup_key`` column, filled from each record's ``inlet-dedup-key`` header, under a unique
index. A batch first drops the records whose key it repeats or the table already holds; a key that
another worker of the pipeline writes at the same moment (its records on another partition) fails
this batch's COPY on the index, and the bisection below finds it and skips it too. Skipped records
count in the offsets row (``duplicates_skipped``), in the same transaction, so the count is exact
like ``delivered``. A table made before (no key column) gains it and the index when its feed
starts keyed; its old rows keep a NULL key, which never conflicts.

Rows: binary COPY (psycopg's ``set_types``), each batch's rows made by a row maker prepared once
per schema version (``row_maker``); a table whose columns are not of the types the sink makes
(made by hand, or altered) gets text COPY instead, which lets PostgreSQL cast each value.

Schema edits: the table is made from the connector's schema when the feed starts; a record
written with a schema that has new fields adds them as nullable columns (``ADD COLUMN IF NOT
EXISTS``), and a required field that a newer schema dropped loses its NOT NULL. DDL runs under an
advisory lock, so several workers of one pipeline never race on it.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import set_json_dumps

from consumers.sinks import Batch, DeadLetter, DeadLetterFn, FeedRecord, Position, SinkFenced
from inlet.model.pipeline_sinks import table_parts
from inlet.model.pipelines import PostgresSink as PostgresSinkConfig
from inlet.sealing import SealBroken, is_sealed
from inlet.sink_layout.columns import Column, record_columns
from inlet.sink_layout.postgres import (
    DEDUP_KEY_COLUMN,
    OFFSET_COLUMN,
    PARTITION_COLUMN,
    CopyColumn,
    column_name,
    copy_columns,
    copy_types,
    dedup_index_name,
    dump_json,
    jsonb,
    metadata_columns,
    pg_type,
    row_maker,
    row_values,
    table_changes,
    table_columns,
)

log = logging.getLogger("inlet.consumers.postgres")

OFFSETS_TABLE = "inlet_pipeline_offsets"
# What a row can be refused for (class 22 data exceptions, class 23 integrity violations, and a
# value too large for an index); anything else (a lost connection...) fails the whole batch.
_ROW_ERRORS = (psycopg.DataError, psycopg.IntegrityError, psycopg.errors.ProgramLimitExceeded)
_MAX_REASON = 1000
# Added to offsets tables made before idempotency keys (``_migrate_offsets``).
_SKIPPED = "duplicates_skipped"
_partition = attrgetter("partition")
Rows = list[tuple[Any, ...]]


class PostgresSink:
    def __init__(
        self,
        pipeline_id: str,
        topic: str,
        config: PostgresSinkConfig,
        schema_of: Callable[[int], dict[str, Any]],
        *,
        keyed: bool = False,
    ) -> None:
        self._pipeline_id = pipeline_id
        self._keyed = keyed  # enforce the records' idempotency keys (the module's docstring)
        self._topic = topic
        self._dsn = config.dsn
        parts = table_parts(config.table or pipeline_id)
        self._table = sql.Identifier(*parts)
        self._offsets = sql.Identifier(*parts[:-1], OFFSETS_TABLE)
        self._lock_key = ".".join(parts)
        self._key_index = dedup_index_name(parts[-1])
        self._key_index_id = sql.Identifier(*parts[:-1], self._key_index)
        self._schema_of = schema_of
        self._conn: psycopg.Connection[Any] | None = None
        self._table_columns: dict[str, tuple[str, bool]] = {}  # name -> (type, NOT NULL)
        self._table_oids: dict[str, int] = {}  # name -> its type's oid
        self._fields: dict[str, Column] = {}  # column -> the latest field written into it
        self._copy: sql.Composed | None = None
        self._copy_columns: list[CopyColumn] = []  # after the metadata columns
        self._copy_oids: list[int] | None = None  # binary COPY's types; None: text COPY
        self._makers: dict[int, Callable[[Sequence[FeedRecord]], Rows]] = {}  # per schema id
        self._schemas_seen: set[int] = set()
        self._positions: dict[int, Position] = {}

    @property
    def conn(self) -> psycopg.Connection[Any]:
        if self._conn is None:
            raise RuntimeError("the PostgreSQL sink is not started")
        return self._conn

    # --- Lifecycle. ---

    def start(self, columns: list[Column]) -> None:
        if is_sealed(self._dsn):  # the registry sealed it with a key this worker lacks
            raise SealBroken("the DSN is sealed with another secret key: set INLET_SECRET_KEY")
        self._conn = psycopg.connect(
            self._dsn, autocommit=True, application_name=f"inlet-{self._pipeline_id}"
        )
        set_json_dumps(dump_json, context=self._conn)  # jsonb values in binary COPY
        with self.conn.transaction():
            self._ddl_lock()
            self.conn.execute(_create_offsets(self._offsets))
            self._migrate_offsets()
            self.conn.execute(_create_table(self._table, columns, keyed=self._keyed))
            if self._keyed:
                self._add_key()
        self._load_table_columns()
        self._adopt(columns)

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def positions(self, partitions: list[int]) -> dict[int, Position]:
        with self.conn.transaction():
            with self.conn.cursor() as cur:
                cur.executemany(
                    sql.SQL(
                        "INSERT INTO {} (pipeline_id, topic, partition) VALUES (%s, %s, %s) "
                        "ON CONFLICT DO NOTHING"
                    ).format(self._offsets),
                    [(self._pipeline_id, self._topic, p) for p in partitions],
                )
            rows = self.conn.execute(
                sql.SQL(
                    "SELECT partition, next_offset, delivered, {} FROM {} "
                    "WHERE pipeline_id = %s AND topic = %s AND partition = ANY(%s)"
                ).format(sql.Identifier(_SKIPPED), self._offsets),
                (self._pipeline_id, self._topic, partitions),
            ).fetchall()
        found = {int(p): Position(n, int(d), int(s)) for p, n, d, s in rows}
        self._positions.update(found)
        return found

    def release(self, partitions: list[int]) -> dict[int, Position]:
        # Nothing is buffered: every batch is committed before the next is read.
        for partition in partitions:
            self._positions.pop(partition, None)
        return {}

    def tick(self) -> dict[int, Position]:
        return {}

    # --- Writing. ---

    def write(self, batch: Batch, dead_letter: DeadLetterFn) -> dict[int, Position]:
        records = batch.records
        schema_ids = set(map(attrgetter("schema_id"), records))
        for schema_id in sorted(schema_ids - self._schemas_seen):
            self._adopt(record_columns(self._schema_of(schema_id)))
            self._schemas_seen.add(schema_id)
        letters = list(batch.undecodable)
        with self.conn.transaction():
            skipped_at = self._repeated_keys(records) if self._keyed else set()
            if skipped_at:
                todo = [i for i in range(len(records)) if i not in skipped_at]
                rows = self._rows([records[i] for i in todo], schema_ids)
            else:
                todo = list(range(len(records)))
                rows = self._rows(records, schema_ids)
            outcomes = self._copy_rows(rows, 0, len(rows)) if rows else []
            refused_at: set[int] = set()
            for at, reason in outcomes:
                if reason is None:
                    skipped_at.add(todo[at])  # written by another worker just now
                else:
                    refused_at.add(todo[at])
                    letters.append(_letter(records[todo[at]], reason))
            delivered: dict[int, int] = dict.fromkeys(batch.ends, 0)
            delivered.update(Counter(map(_partition, records)))
            skipped: dict[int, int] = dict.fromkeys(batch.ends, 0)
            for index in skipped_at:
                skipped[records[index].partition] += 1
                delivered[records[index].partition] -= 1
            for index in refused_at:
                delivered[records[index].partition] -= 1
            advanced = {
                p: self._advance(p, end, delivered[p], skipped[p]) for p, end in batch.ends.items()
            }
            if letters:
                dead_letter(sorted(letters, key=lambda d: (d.partition, d.offset)))
        self._positions.update(advanced)
        return advanced

    def _advance(self, partition: int, end: int, delivered: int, skipped: int) -> Position:
        """Move ``partition``'s offset to ``end`` if it is still where this worker left it."""
        current = self._positions.get(partition)
        if current is None:
            raise SinkFenced(f"partition {partition} is not owned by this worker")
        updated = self.conn.execute(
            sql.SQL(
                "UPDATE {} SET next_offset = %s, delivered = delivered + %s, {} = {} + %s, "
                "updated_at = now() "
                "WHERE pipeline_id = %s AND topic = %s AND partition = %s "
                "AND next_offset IS NOT DISTINCT FROM %s"
            ).format(self._offsets, sql.Identifier(_SKIPPED), sql.Identifier(_SKIPPED)),
            (
                end,
                delivered,
                skipped,
                self._pipeline_id,
                self._topic,
                partition,
                current.next_offset,
            ),
        )
        if updated.rowcount != 1:
            raise SinkFenced(f"partition {partition} was advanced by another worker")
        return Position(end, current.delivered + delivered, current.skipped + skipped)

    def _repeated_keys(self, records: list[FeedRecord]) -> set[int]:
        """The indexes of ``records`` whose key an earlier one of them has, or the table holds
        (committed); records without a key are never repeats."""
        first: dict[str, int] = {}
        repeated: set[int] = set()
        for index, record in enumerate(records):
            if record.dedup_key is None:
                continue
            if record.dedup_key in first:
                repeated.add(index)
            else:
                first[record.dedup_key] = index
        if first:
            held = self.conn.execute(
                sql.SQL("SELECT {} FROM {} WHERE {} = ANY(%s)").format(
                    sql.Identifier(DEDUP_KEY_COLUMN), self._table, sql.Identifier(DEDUP_KEY_COLUMN)
                ),
                (list(first),),
            ).fetchall()
            repeated.update(first[key] for (key,) in held)
        return repeated

    def _copy_rows(
        self, rows: list[tuple[Any, ...]], lo: int, hi: int
    ) -> list[tuple[int, str | None]]:
        """COPY ``rows[lo:hi]`` in a savepoint; on a refusal, halve until the culprits are found.

        Returns the refused rows' indexes with the database's reasons, or None for a row whose
        key another transaction wrote since ``_repeated_keys`` looked (a duplicate, skipped).
        """
        assert self._copy is not None
        try:
            with self.conn.transaction(), self.conn.cursor() as cur, cur.copy(self._copy) as copy:
                if self._copy_oids is not None:
                    copy.set_types(self._copy_oids)
                for row in rows[lo:hi]:
                    copy.write_row(row)
        except _ROW_ERRORS as exc:
            if hi - lo == 1:
                return [(lo, None if self._is_key_conflict(exc) else _reason(exc))]
            mid = (lo + hi) // 2
            return self._copy_rows(rows, lo, mid) + self._copy_rows(rows, mid, hi)
        return []

    def _is_key_conflict(self, exc: Exception) -> bool:
        return (
            self._keyed
            and isinstance(exc, psycopg.errors.UniqueViolation)
            and exc.diag.constraint_name == self._key_index
        )

    def _rows(self, records: Sequence[FeedRecord], schema_ids: set[int]) -> Rows:
        """What COPY writes for ``records`` (of the schemas ``schema_ids``), in their order."""
        if self._copy_oids is None:  # text COPY: jsonb values wrapped, every value as text
            return [row_values(r, self._copy_columns, jsonb, keyed=self._keyed) for r in records]
        if len(schema_ids) == 1:
            return self._maker(next(iter(schema_ids)))(records)
        rows: Rows = [()] * len(records)
        for schema_id in schema_ids:  # a schema edit inside the batch: rows by version
            at = [i for i, r in enumerate(records) if r.schema_id == schema_id]
            made = self._maker(schema_id)([records[i] for i in at])
            for i, row in zip(at, made, strict=True):
                rows[i] = row
        return rows

    def _maker(self, schema_id: int) -> Callable[[Sequence[FeedRecord]], Rows]:
        maker = self._makers.get(schema_id)
        if maker is None:
            fields = {c.name for c in record_columns(self._schema_of(schema_id))}
            maker = row_maker(self._copy_columns, fields, keyed=self._keyed)
            self._makers[schema_id] = maker
        return maker

    # --- The table's shape. ---

    def _adopt(self, columns: list[Column]) -> None:
        """Make the table hold records of a schema with ``columns``, and write them from now."""
        missing, relaxed = table_changes(self._table_columns, columns)
        if missing or relaxed:
            with self.conn.transaction():
                self._ddl_lock()
                for column in missing:
                    self.conn.execute(
                        sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                            self._table,
                            sql.Identifier(column_name(column.name)),
                            sql.SQL(pg_type(column)),
                        )
                    )
                for name in relaxed:
                    self.conn.execute(
                        sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL").format(
                            self._table, sql.Identifier(name)
                        )
                    )
            self._load_table_columns()
        for column in columns:
            self._fields[column_name(column.name)] = column
        types = {name: kind for name, (kind, _) in self._table_columns.items()}
        self._copy_columns = copy_columns(self._fields, types)
        metadata = metadata_columns(keyed=self._keyed)
        targets = [*metadata, *(c.name for c in self._copy_columns)]
        self._copy_oids = self._binary_types(targets)
        copy = "COPY {} ({}) FROM STDIN" + (
            " (FORMAT BINARY)" if self._copy_oids is not None else ""
        )
        self._copy = sql.SQL(copy).format(
            self._table, sql.SQL(", ").join(map(sql.Identifier, targets))
        )
        self._makers.clear()  # they make rows of the columns before

    def _binary_types(self, targets: list[str]) -> list[int] | None:
        """The types binary COPY sends the ``targets`` columns' values as, if the table's
        columns have exactly these types (PostgreSQL casts nothing in binary COPY); else None."""
        types = self.conn.adapters.types
        wanted = [types.get_oid(t) for t in copy_types(self._copy_columns, keyed=self._keyed)]
        if wanted == [self._table_oids.get(name) for name in targets]:
            return wanted
        log.info(
            "the table's columns are not of the sink's types: rows go in by text COPY",
            extra={"pipeline": self._pipeline_id},
        )
        return None

    def _load_table_columns(self) -> None:
        rows = self._describe(self._table)
        self._table_columns = {name: (kind, nn) for name, kind, nn, _ in rows}
        self._table_oids = {name: oid for name, _, _, oid in rows}

    def _columns_of(self, table: sql.Identifier) -> dict[str, tuple[str, bool]]:
        return {name: (kind, nn) for name, kind, nn, _ in self._describe(table)}

    def _describe(self, table: sql.Identifier) -> list[tuple[str, str, bool, int]]:
        """Each column of ``table``: name, type (as declared), NOT NULL, the type's oid."""
        rows = self.conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod), attnotnull, atttypid "
            "FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            (table.as_string(self.conn),),
        ).fetchall()
        return [(str(name), str(kind), bool(nn), int(oid)) for name, kind, nn, oid in rows]

    def _migrate_offsets(self) -> None:
        # Looked up first: ALTER TABLE locks the offsets table, which every pipeline of the
        # schema commits to, even when there is nothing to add.
        if _SKIPPED not in self._columns_of(self._offsets):
            self.conn.execute(
                sql.SQL(
                    "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} bigint NOT NULL DEFAULT 0"
                ).format(self._offsets, sql.Identifier(_SKIPPED))
            )

    def _add_key(self) -> None:
        """Give a table made before (or by hand) the key column and its unique index."""
        if DEDUP_KEY_COLUMN not in self._columns_of(self._table):
            self.conn.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} text").format(
                    self._table, sql.Identifier(DEDUP_KEY_COLUMN)
                )
            )
        index = self.conn.execute(
            "SELECT to_regclass(%s)", (self._key_index_id.as_string(self.conn),)
        ).fetchone()
        if index is None or index[0] is None:
            # Not CONCURRENTLY (it cannot run in a transaction): a table gaining its key holds
            # its rows' NULL keys, quick to index, and writers wait only that long.
            self.conn.execute(
                sql.SQL("CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({})").format(
                    sql.Identifier(self._key_index), self._table, sql.Identifier(DEDUP_KEY_COLUMN)
                )
            )

    def _ddl_lock(self) -> None:
        # Serialises DDL of one table across workers (CREATE TABLE IF NOT EXISTS is not safe
        # against a concurrent one); held until the transaction ends.
        self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", ("inlet-sink:" + self._lock_key,)
        )


def _create_offsets(offsets: sql.Identifier) -> sql.Composed:
    return sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} ("
        "pipeline_id text NOT NULL, topic text NOT NULL, partition integer NOT NULL, "
        "next_offset bigint, delivered bigint NOT NULL DEFAULT 0, "
        "duplicates_skipped bigint NOT NULL DEFAULT 0, "
        "updated_at timestamptz NOT NULL DEFAULT now(), "
        "PRIMARY KEY (pipeline_id, topic, partition))"
    ).format(offsets)


def _create_table(table: sql.Identifier, columns: list[Column], *, keyed: bool) -> sql.Composed:
    definitions = [
        *(
            sql.SQL("{} {}{}").format(
                sql.Identifier(c.name), sql.SQL(c.type), sql.SQL(" NOT NULL" if c.not_null else "")
            )
            for c in table_columns(columns, keyed=keyed)
        ),
        sql.SQL("PRIMARY KEY ({}, {})").format(
            sql.Identifier(PARTITION_COLUMN), sql.Identifier(OFFSET_COLUMN)
        ),
    ]
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
        table, sql.SQL(", ").join(definitions)
    )


def _letter(record: FeedRecord, reason: str) -> DeadLetter:
    return DeadLetter(
        record.partition, record.offset, record.key, record.raw, record.headers, reason
    )


def _reason(exc: Exception) -> str:
    sqlstate = getattr(exc, "sqlstate", None)
    text = " ".join(str(exc).split())
    return (f"{sqlstate}: {text}" if sqlstate else text)[:_MAX_REASON]
