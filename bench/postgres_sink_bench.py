"""The PostgreSQL sink alone: CPU per record of ``PostgresSink.write``, records decoded beforehand.

Run: ``PYTHONPATH=. uv run python bench/postgres_sink_bench.py [--records N] [--batch B]
[--rounds R] [--keyed] [--source DIR]``. No Kafka: the records are the feeds bench's shape
(``feeds_bench.py``), encoded and decoded once as the feed decodes them, then written to a fresh
table of a throwaway PostgreSQL server (``--dsn`` for another) in batches of B records over 3
partitions, as a feed hands them to its sink. What the feed does in front of the sink (consume,
decode) is not counted, so this is the sink's own cost.

Per round it prints records/s (wall), and CPU µs per record from /proc: the writing process
(``client``), the PostgreSQL server's processes (``server``: the backend, WAL writer, checkpointer)
and both. ``--keyed`` writes records with idempotency keys into a keyed table (a connector with
``dedup``: a unique index on the key). ``--source DIR`` runs the same rounds with the sink of
another checkout too (an older commit, e.g. ``git archive`` of ``main`` unpacked in DIR),
interleaved with this one's round by round, so both meet the same machine.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from _cpu import cpu_s, tree_cpu_s
from fastavro import parse_schema, schemaless_writer
from feeds_bench import FIELDS, _value, postgres_database

from consumers.sinks import Batch, FeedRecord
from consumers.sinks.postgres import PostgresSink
from inlet.codec.wire import WireDecoder
from inlet.model.avro import avro_schema, schema_json
from inlet.model.fields import FieldSpec
from inlet.model.pipelines import PostgresSink as PostgresSinkConfig
from inlet.records import HEADER_DEDUP_KEY, HEADER_RECEIVED_AT, wire_frame
from inlet.sink_layout.columns import record_columns

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_ID = 1
PARTITIONS = 3
DISTINCT_VALUES = 10_000  # decoded once and shared by the records (their offsets differ)


def _records(count: int, *, keyed: bool) -> list[FeedRecord]:
    schema = avro_schema("bench", [msgspec.convert(f, FieldSpec) for f in FIELDS])
    text = schema_json(schema)
    parsed = parse_schema(json.loads(text))
    decoder = WireDecoder(lambda _: text)
    values = []
    for i in range(min(count, DISTINCT_VALUES)):
        body = io.BytesIO()
        schemaless_writer(body, parsed, _value(i))
        values.append(decoder.decode_typed(wire_frame(SCHEMA_ID, body.getvalue()))[1])
    received_at = str(int(time.time() * 1000))
    records = []
    for i in range(count):
        headers: list[tuple[str, bytes | None]] = [(HEADER_RECEIVED_AT, received_at.encode())]
        key = f"evt_{uuid.uuid4().hex[:24]}" if keyed else None  # random, as webhook ids are
        if key is not None:
            headers.append((HEADER_DEDUP_KEY, key.encode()))
        value = values[i % len(values)]
        key_bytes = str(i).encode()
        records.append(
            FeedRecord(
                0, i, key_bytes, headers, b"raw", int(received_at), None, SCHEMA_ID, value, key
            )
        )
    return records


def _batches(records: list[FeedRecord], size: int) -> Iterator[Batch]:
    """Batches of ``size`` records, each from one partition in turn (as a consumer returns a
    partition's fetch), offsets counting up per partition."""
    next_offset = [0] * PARTITIONS
    for number, start in enumerate(range(0, len(records), size)):
        partition = number % PARTITIONS
        chunk = []
        for record in records[start : start + size]:
            chunk.append(record._replace(partition=partition, offset=next_offset[partition]))
            next_offset[partition] += 1
        yield Batch(chunk, [], {partition: next_offset[partition]})


def _worker(args: argparse.Namespace) -> None:
    """One round in this process: write the records, print what it cost as JSON."""
    schema = avro_schema("bench", [msgspec.convert(f, FieldSpec) for f in FIELDS])
    batches = list(_batches(_records(args.records, keyed=args.keyed), args.batch))
    table = f"bench_{uuid.uuid4().hex[:8]}"
    config = PostgresSinkConfig(dsn=args.dsn, table=table)
    sink = PostgresSink(f"pip_{table}", "inlet.bench", config, lambda _: schema, keyed=args.keyed)
    sink.start(record_columns(schema))
    sink.positions(list(range(PARTITIONS)))

    def none(letters: object) -> None:
        raise AssertionError(f"dead letters: {letters}")

    client, server, wall = cpu_s(os.getpid()), tree_cpu_s(args.postmaster), time.monotonic()
    for batch in batches:
        sink.write(batch, none)
    wall = time.monotonic() - wall
    client = cpu_s(os.getpid()) - client
    server = tree_cpu_s(args.postmaster) - server
    sink.close()
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        found = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert found is not None
        assert found[0] == args.records, found
        conn.execute(f"DROP TABLE {table}")
    print(json.dumps({"wall": wall, "client": client, "server": server}))


def _round(args: argparse.Namespace, dsn: str, postmaster: int, source: str | None) -> Any:
    # The checkout's packages before the ones installed (editable, this checkout's).
    env = {**os.environ, "PYTHONPATH": source or str(ROOT)}
    command = [sys.executable, __file__, "--worker", "--dsn", dsn, "--postmaster", str(postmaster)]
    command += ["--records", str(args.records), "--batch", str(args.batch)]
    command += ["--keyed"] if args.keyed else []
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000, help="records per round")
    parser.add_argument("--batch", type=int, default=5000, help="records per write")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keyed", action="store_true", help="idempotency keys, a keyed table")
    parser.add_argument("--source", help="another checkout's sink, interleaved with this one")
    parser.add_argument("--dsn", help="a local PostgreSQL database (default: throwaway)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--postmaster", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return
    codes: list[tuple[str, str | None]] = [("this", None)]
    if args.source:
        codes.append((Path(args.source).name, str(Path(args.source).resolve())))
    results: dict[str, list[Any]] = {name: [] for name, _ in codes}
    kind = "keyed" if args.keyed else "plain"
    print(f"PostgreSQL sink, {kind}: {args.records:,} records per round in {args.batch:,}s")
    with postgres_database(args.dsn) as (dsn, postmaster):
        for number in range(1, args.rounds + 1):
            for name, source in codes:
                found = _round(args, dsn, postmaster, source)
                results[name].append(found)
                print(f"  round {number} {name:<12} {_line(found, args.records)}")
    for name, rounds in results.items():
        median = {k: statistics.median(r[k] for r in rounds) for k in ("wall", "client", "server")}
        print(f"median  {name:<12} {_line(median, args.records)}")


def _line(found: dict[str, float], records: int) -> str:
    client, server = found["client"] / records * 1e6, found["server"] / records * 1e6
    return (
        f"{records / found['wall']:>9,.0f} records/s  CPU µs/record: client {client:5.1f}  "
        f"server {server:5.1f}  both {client + server:5.1f}"
    )


if __name__ == "__main__":
    main()
