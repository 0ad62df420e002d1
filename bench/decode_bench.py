"""Micro-benchmark of the feeds' decoding: Confluent-framed Avro values -> what the sinks take.

Run: ``uv run python bench/decode_bench.py [--records N] [--rounds R]``. One core, no I/O. The
values are the feeds bench's records (``bench/feeds_bench.py``: string, long, decimal, timestamp,
date, array of strings, object, enum, uuid, nullable string; about 112 bytes), in batches of 5000
(what a feed consumes at a time). The designs run on the same values, interleaved round by round,
so they compare even on a busy machine; each prints CPU µs a record (the process's CPU time, not
wall time), the best and the median of the rounds.

Designs:
  fastavro          schemaless_reader per record (what the feeds did): the baseline
  C -> dicts        the C reader (inlet/codec/_avro_native_reader.c), a dict per record
  C -> columns      the C reader, a list per top-level field
  rows -> arrow     pa.Table.from_pylist of the sink's rows (what the Parquet sink did)
  columns -> arrow  pa.array per column (``inlet.sink_layout.file_rows.arrow_columns``)
  dicts -> columns -> arrow   the same, the lists made from the dicts first (what the sink does)
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable
from typing import Any

import fastavro
import msgspec
import pyarrow as pa
from feeds_bench import FIELDS, _value

from inlet.codec._avro_reader import NATIVE, BatchReader
from inlet.model.avro import avro_schema
from inlet.model.fields import FieldSpec
from inlet.sink_layout.columns import record_columns
from inlet.sink_layout.file_rows import arrow_columns, arrow_schema, arrow_value

BATCH = 5000


def _values(count: int, schema: dict[str, Any]) -> list[bytes]:
    parsed = fastavro.parse_schema(schema)
    values = []
    for i in range(count):
        out = io.BytesIO()
        out.write(b"\0\0\0\0\1")
        fastavro.schemaless_writer(out, parsed, _value(i))
        values.append(out.getvalue())
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if not NATIVE:
        raise SystemExit("the C reader is not built (uv sync compiles it)")

    schema = avro_schema("Order", msgspec.convert(FIELDS, list[FieldSpec]))
    values = _values(args.records, schema)
    batches = [values[i : i + BATCH] for i in range(0, len(values), BATCH)]
    parsed = fastavro.parse_schema(schema)
    reader = BatchReader(schema)
    columns = record_columns(schema)
    table_schema = arrow_schema(columns)
    field_schema = pa.schema(list(table_schema)[3:])  # the record's fields, no feed metadata
    decoded_rows = [reader.rows(batch, 5).rows for batch in batches]
    decoded_columns = [reader.columns(batch, 5) for batch in batches]

    def fastavro_rows() -> None:
        read = fastavro.schemaless_reader
        for batch in batches:
            [read(io.BytesIO(value[5:]), parsed, None) for value in batch]

    def c_rows() -> None:
        for batch in batches:
            reader.rows(batch, 5)

    def c_columns() -> None:
        for batch in batches:
            reader.columns(batch, 5)

    def rows_to_arrow() -> None:
        for rows in decoded_rows:
            pylist = [
                {c.name: arrow_value(c, row.get(c.name)) for c in columns}
                for row in rows
                if row is not None
            ]
            pa.Table.from_pylist(pylist, schema=field_schema)

    def columns_to_arrow() -> None:
        for decoded in decoded_columns:
            pa.Table.from_arrays(arrow_columns(columns, decoded.values), schema=field_schema)

    def rows_columns_to_arrow() -> None:
        names = [c.name for c in columns]
        for rows in decoded_rows:
            kept = [row for row in rows if row is not None]
            lists = [[row[name] for row in kept] for name in names]
            pa.Table.from_arrays(arrow_columns(columns, lists), schema=field_schema)

    designs: dict[str, Callable[[], None]] = {
        "fastavro": fastavro_rows,
        "C -> dicts": c_rows,
        "C -> columns": c_columns,
        "rows -> arrow": rows_to_arrow,
        "columns -> arrow": columns_to_arrow,
        "dicts -> columns -> arrow": rows_columns_to_arrow,
    }
    cpu: dict[str, list[float]] = {name: [] for name in designs}
    for _ in range(args.rounds):
        for name, run in designs.items():
            started = time.process_time()
            run()
            cpu[name].append((time.process_time() - started) / len(values) * 1e6)
    base = statistics.median(cpu["fastavro"])
    print(
        f"{len(values):,} records of {sum(map(len, values)) / len(values):.0f} bytes, "
        f"{args.rounds} interleaved rounds; CPU µs a record"
    )
    for name, figures in cpu.items():
        median = statistics.median(figures)
        print(
            f"  {name:<26} best {min(figures):6.2f}  median {median:6.2f}  "
            f"({base / median:5.1f}x fastavro's)  {1e6 / median:>12,.0f} records/s"
        )


if __name__ == "__main__":
    main()
