"""The PostgreSQL sink on a real server (no Kafka): typed table, offsets in the same transaction,
a fenced zombie, refused rows bisected out, schema edits."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from consumers.sinks import Batch, DeadLetter, FeedRecord, Position, SinkFenced
from consumers.sinks.postgres import PostgresSink
from inlet.model.avro import avro_schema
from inlet.model.fields import FieldSpec, field_problems
from inlet.model.pipelines import PostgresSink as PostgresSinkConfig
from inlet.sink_layout.columns import record_columns
from inlet.sink_layout.postgres import METADATA_COLUMNS
from tests.integration._pipelines_helpers import wait_until

SHARED = [
    FieldSpec(name="id", type="string"),
    FieldSpec(name="amount", type="decimal", precision=6, scale=2),
    FieldSpec(name="day", type="date"),
    FieldSpec(name="at", type="datetime"),
    FieldSpec(name="t", type="time"),
    FieldSpec(name="ref", type="uuid"),
    FieldSpec(name="tags", type="array", items="integer"),
    FieldSpec(name="obj", type="object", fields=[FieldSpec(name="k", type="string")]),
]
V1 = avro_schema("Rec", [*SHARED, FieldSpec(name="gone", type="string")])
# v2 adds a nullable field and drops a required one.
V2 = avro_schema("Rec", [*SHARED, FieldSpec(name="channel", type="string", nullable=True)])
SCHEMAS = {1: V1, 2: V2}


@pytest.fixture
def dsn(postgres_dsn: str) -> Iterator[str]:
    name = f"s_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield make_conninfo(postgres_dsn, dbname=name)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _value(i: int, **changes: Any) -> dict[str, Any]:
    return {
        "id": f"r{i}",
        "amount": Decimal(i) / 100,
        "day": date(2026, 3, 1),
        "at": datetime(2026, 3, 1, 12, 0, i, tzinfo=UTC),
        "t": time(8, 30),
        "ref": uuid.UUID(int=i),
        "tags": [i, i + 1],
        "obj": {"k": f"v{i}"},
        "gone": "x",
        **changes,
    }


def _record(offset: int, *, partition: int = 0, schema_id: int = 1, **changes: Any) -> FeedRecord:
    value = _value(offset, **changes)
    if schema_id == 2:
        value.pop("gone")
    return FeedRecord(
        partition, offset, b"k", [], b"raw", 1_772_366_400_000, None, schema_id, value
    )


def _batch(*records: FeedRecord) -> Batch:
    ends: dict[int, int] = {}
    for record in records:
        ends[record.partition] = record.offset + 1
    return Batch(list(records), [], ends)


def _sink(dsn: str, table: str = "orders") -> PostgresSink:
    config = PostgresSinkConfig(dsn=dsn, table=table)
    sink = PostgresSink("pip_test", "inlet.con_test", config, SCHEMAS.__getitem__)
    sink.start(record_columns(V1))
    return sink


def _rows(dsn: str, columns: str = "_inlet_partition, _inlet_offset, id") -> list[Any]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(f"SELECT {columns} FROM orders ORDER BY 1, 2").fetchall()


def _none(letters: list[DeadLetter]) -> None:
    raise AssertionError(f"unexpected dead letters: {letters}")


def test_rows_and_offsets_commit_together(dsn: str) -> None:
    sink = _sink(dsn)
    assert sink.positions([0, 1]) == {0: Position(None, 0), 1: Position(None, 0)}
    written = sink.write(_batch(_record(0), _record(1), _record(5, partition=1)), _none)
    assert written == {0: Position(2, 2), 1: Position(6, 1)}
    row = _rows(dsn, "_inlet_partition, _inlet_offset, amount, day, at, t, ref, tags, obj")[0]
    assert row[2:] == (
        Decimal("0.00"),
        date(2026, 3, 1),
        datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC),
        time(8, 30),
        uuid.UUID(int=0),
        [0, 1],
        {"k": "v0"},
    )
    sink.close()
    # A new worker resumes where the offsets row says, whatever Kafka's group thinks.
    again = _sink(dsn)
    assert again.positions([0, 1, 2]) == {
        0: Position(2, 2),
        1: Position(6, 1),
        2: Position(None, 0),
    }
    again.close()


def test_a_zombie_cannot_commit_after_another_worker_took_over(dsn: str) -> None:
    zombie, owner = _sink(dsn), _sink(dsn)
    zombie.positions([0])
    owner.positions([0])
    owner.write(_batch(_record(0), _record(1)), _none)
    with pytest.raises(SinkFenced):
        zombie.write(_batch(_record(0), _record(1)), _none)  # it still thinks offset 0 is next
    assert [r[1] for r in _rows(dsn)] == [0, 1]  # its rows were rolled back with its offsets
    zombie.close()
    owner.close()


def test_refused_rows_are_bisected_out_and_dead_lettered(dsn: str) -> None:
    sink = _sink(dsn)
    sink.positions([0])
    letters: list[DeadLetter] = []
    records = [_record(i) for i in range(10)]
    records[3] = _record(3, id="NUL \x00 here")
    records[7] = _record(7, amount=Decimal("123456.78"))  # numeric(6,2) holds less
    assert sink.write(_batch(*records), letters.extend) == {0: Position(10, 8)}
    assert [(d.offset, d.value) for d in letters] == [(3, b"raw"), (7, b"raw")]
    # The server's reason, from binary COPY: the byte and the column.
    assert letters[0].reason.startswith("22021")  # character_not_in_repertoire
    assert "0x00" in letters[0].reason
    assert "column id" in letters[0].reason
    assert letters[1].reason.startswith("22003")  # numeric_value_out_of_range
    assert [r[1] for r in _rows(dsn)] == [0, 1, 2, 4, 5, 6, 8, 9]
    sink.close()


def test_a_schema_edit_adds_nullable_columns_and_relaxes_dropped_ones(dsn: str) -> None:
    sink = _sink(dsn)
    sink.positions([0])
    sink.write(_batch(_record(0), _record(1, schema_id=2, channel="web")), _none)
    assert _rows(dsn, "_inlet_partition, _inlet_offset, gone, channel") == [
        (0, 0, "x", None),
        (0, 1, None, "web"),
    ]
    with psycopg.connect(dsn) as conn:
        nullable: dict[str, str] = dict(
            conn.execute(
                "SELECT column_name, is_nullable FROM information_schema.columns "
                "WHERE table_name = 'orders'"
            ).fetchall()
        )
    assert (nullable["id"], nullable["gone"], nullable["channel"]) == ("NO", "YES", "YES")
    sink.close()


def test_a_table_made_by_hand_with_other_types_gets_text_copy(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Binary COPY casts nothing: a value goes in only as its column's own type. A table whose
    # columns differ from the sink's (varchar for a string, text for a uuid, bigint[] for an
    # array of integers... made by hand) is written by text COPY, which lets PostgreSQL cast.
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "CREATE TABLE orders (_inlet_partition integer NOT NULL, _inlet_offset bigint NOT "
            "NULL, _inlet_received_at timestamptz, id varchar(40) NOT NULL, amount numeric(6,2), "
            "day date, at timestamptz, t time, ref text, tags integer[], obj jsonb, gone text, "
            "PRIMARY KEY (_inlet_partition, _inlet_offset))"
        )
    with caplog.at_level("INFO", logger="inlet.consumers.postgres"):
        sink = _sink(dsn)
    assert "text COPY" in caplog.text
    sink.positions([0])
    assert sink.write(_batch(_record(0), _record(1)), _none) == {0: Position(2, 2)}
    assert _rows(dsn, "_inlet_partition, _inlet_offset, id, ref, tags, obj") == [
        (0, 0, "r0", uuid.UUID(int=0).hex, [0, 1], {"k": "v0"}),
        (0, 1, "r1", uuid.UUID(int=1).hex, [1, 2], {"k": "v1"}),
    ]
    sink.close()


def test_a_table_the_sink_made_gets_binary_copy(dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="inlet.consumers.postgres"):
        sink = _sink(dsn)
        sink.positions([0])
        sink.write(_batch(_record(0), _record(1, schema_id=2)), _none)  # and after an edit
    assert "text COPY" not in caplog.text
    sink.close()


def test_no_field_name_the_admin_api_accepts_meets_the_sinks_own_columns(dsn: str) -> None:
    # Issue 10, item 9: a field named like one of the sink's columns made every table creation
    # fail. Names in the sinks' prefix are refused with the fields; the ones close to them that
    # pass get columns of their own beside the sink's.
    candidates = [
        *METADATA_COLUMNS,
        *(column.upper() for column in METADATA_COLUMNS),
        *(column.replace("_", "-") for column in METADATA_COLUMNS),
        *(column.removeprefix("_") for column in METADATA_COLUMNS),
        *("_" + column for column in METADATA_COLUMNS),
        "_inlet",
    ]
    accepted: list[str] = []
    for name in candidates:  # each alone, and not a duplicate of one before
        fields = [FieldSpec(name=n, type="string") for n in [*accepted, name]]
        if not field_problems(fields, None):
            accepted.append(name)
    schema = avro_schema("Rec", [FieldSpec(name=name, type="string") for name in accepted])
    config = PostgresSinkConfig(dsn=dsn, table="names")
    sink = PostgresSink("pip_names", "inlet.con_names", config, {1: schema}.__getitem__)
    sink.start(record_columns(schema))
    sink.positions([0])
    value = {name: f"v-{name}" for name in accepted}
    record = FeedRecord(0, 7, b"k", [], b"raw", 1_772_366_400_000, None, 1, value)
    assert sink.write(_batch(record), _none) == {0: Position(8, 1)}
    columns = ", ".join(["_inlet_partition", "_inlet_offset", *(f'"{n}"' for n in accepted)])
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SELECT {columns} FROM names").fetchone()
    assert row == (0, 7, *value.values())
    sink.close()
    assert accepted == [
        *(column.removeprefix("_") for column in METADATA_COLUMNS),
        *("_" + column for column in METADATA_COLUMNS),
        "_inlet",
    ]


# --- Idempotency keys (a connector with ``dedup``): each key once in the table. ---


def _keyed(offset: int, key: str | None, *, partition: int = 0) -> FeedRecord:
    return _record(offset, partition=partition)._replace(dedup_key=key)


def _keyed_sink(dsn: str) -> PostgresSink:
    config = PostgresSinkConfig(dsn=dsn, table="orders")
    sink = PostgresSink("pip_test", "inlet.con_test", config, SCHEMAS.__getitem__, keyed=True)
    sink.start(record_columns(V1))
    return sink


def _keys(dsn: str) -> list[Any]:
    return _rows(dsn, "_inlet_partition, _inlet_offset, _inlet_dedup_key")


def test_a_keyed_table_skips_the_keys_it_holds_and_counts_them(dsn: str) -> None:
    sink = _keyed_sink(dsn)
    sink.positions([0, 1])
    # A repeat inside the batch, and records without a key (never repeats of each other).
    first = _batch(_keyed(0, "a"), _keyed(1, "b"), _keyed(2, "a"), _keyed(3, None), _keyed(4, None))
    assert sink.write(first, _none) == {0: Position(5, 4, 1)}
    # Keys the table holds from an earlier batch, on another partition too.
    second = _batch(_keyed(5, "b"), _keyed(6, "c"), _keyed(0, "a", partition=1))
    assert sink.write(second, _none) == {0: Position(7, 5, 2), 1: Position(1, 0, 1)}
    assert _keys(dsn) == [(0, 0, "a"), (0, 1, "b"), (0, 3, None), (0, 4, None), (0, 6, "c")]
    sink.close()
    # The count is kept with the offsets: a new worker resumes with it.
    again = _keyed_sink(dsn)
    assert again.positions([0, 1]) == {0: Position(7, 5, 2), 1: Position(1, 0, 1)}
    again.close()


def test_a_key_another_worker_writes_at_the_same_moment_is_skipped_not_dead_lettered(
    dsn: str,
) -> None:
    sink = _keyed_sink(dsn)
    sink.positions([0])
    # Another worker's transaction (another partition) holds key "k", not committed yet: this
    # batch's look-up does not see it, and its COPY waits on the unique index.
    other = psycopg.connect(dsn)
    other.execute("INSERT INTO orders (_inlet_partition, _inlet_offset, _inlet_dedup_key, id, "
                  "amount, day, at, t, ref, tags, obj, gone) VALUES (1, 0, 'k', 'x', 0, "
                  "'2026-03-01', now(), '08:30', gen_random_uuid(), '{}', '{}', 'x')")  # fmt: skip
    written: list[dict[int, Position]] = []
    writer = threading.Thread(
        target=lambda: written.append(
            sink.write(_batch(_keyed(0, "j"), _keyed(1, "k"), _keyed(2, "l")), _none)
        )
    )
    writer.start()
    with psycopg.connect(dsn, autocommit=True) as watcher:

        def waiting() -> bool:
            found = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = 'inlet-pip_test' AND wait_event_type = 'Lock'"
            ).fetchone()
            return found is not None and found[0] == 1

        wait_until(waiting, what="the batch to wait on the other worker's key")
    other.commit()
    other.close()
    writer.join(60)
    assert written == [{0: Position(3, 2, 1)}]
    assert _keys(dsn) == [(0, 0, "j"), (0, 2, "l"), (1, 0, "k")]
    sink.close()


def test_a_table_made_before_the_connector_had_dedup_gains_the_key(dsn: str) -> None:
    plain = _sink(dsn)
    plain.positions([0])
    plain.write(_batch(_keyed(0, "a"), _keyed(1, "a")), _none)  # not enforced: both written
    plain.close()
    # And an offsets table of an Inlet from before the skip count.
    with psycopg.connect(dsn) as conn:
        conn.execute("ALTER TABLE inlet_pipeline_offsets DROP COLUMN duplicates_skipped")
    sink = _keyed_sink(dsn)
    assert sink.positions([0]) == {0: Position(2, 2, 0)}
    assert sink.write(_batch(_keyed(2, "a"), _keyed(3, "b")), _none) == {0: Position(4, 4, 0)}
    assert sink.write(_batch(_keyed(4, "b")), _none) == {0: Position(5, 4, 1)}
    # The rows from before keep a NULL key: the index never meets them.
    assert _keys(dsn) == [(0, 0, None), (0, 1, None), (0, 2, "a"), (0, 3, "b")]
    sink.close()
