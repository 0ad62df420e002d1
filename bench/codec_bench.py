"""Micro-benchmark of the ingest hot path: body -> validated, Avro-encoded Kafka values.

Run: ``uv run python bench/codec_bench.py [--batches N] [--writer c|fastavro]``. One core, no I/O.
Batches are JSON arrays of 500 records of about 150 bytes (string, integer, float, boolean,
datetime, nullable string, decimal, uuid), keyed by the uuid. Every design runs on the same batches
in the same process, so the numbers compare even on a noisy machine; each prints records/s, µs a
record, per-batch latency percentiles and the peak memory one batch allocates.

Designs (all but the baseline use the codec's Structs):
  fastavro-writer   the per-record decode, then fastavro.schemaless_writer (the baseline)
  codec, fastavro   parse_body + RecordCodec.encode with the fallback writer (fastavro), as where
                    the C writer is not built
  codec, C          parse_body + RecordCodec.encode with the C writer (inlet/codec/_avro_native.c)
  writer only       each writer alone, on records decoded beforehand: what it costs a record
then the codec on harder batches, with the writer ``--writer`` names (C unless told): every record
with an unknown key; 10% invalid records; records of 2.5 KB with 90 unknown keys each (a webhook
sending more than the connector declares).
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import time
import tracemalloc
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import fastavro
import msgspec

from inlet.codec._avro_writer import NATIVE
from inlet.codec.bodies import JsonRecords, parse_body
from inlet.codec.record_codec import RecordCodec
from inlet.model.avro import avro_schema
from inlet.model.fields import FieldSpec

RECORDS_PER_BATCH = 500
T = TypeVar("T")


def _field(name: str, type_: str, **attributes: object) -> FieldSpec:
    return msgspec.convert({"name": name, "type": type_, **attributes}, FieldSpec)


FIELDS = [
    _field("name", "string"),
    _field("count", "integer"),
    _field("ratio", "float"),
    _field("paid", "boolean"),
    _field("at", "datetime"),
    _field("note", "string", nullable=True),
    _field("amount", "decimal", precision=12, scale=2),
    _field("id", "uuid"),
]


def _record(rng: random.Random, index: int) -> dict[str, Any]:
    return {
        "name": f"c{index}",
        "count": rng.randrange(100_000),
        "ratio": round(rng.random(), 3),
        "paid": rng.random() < 0.5,
        "at": f"2024-05-01T12:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z",
        "note": None if rng.random() < 0.5 else "ok",
        "amount": Decimal(rng.randrange(10**6)) / 100,
        "id": str(uuid.UUID(int=rng.getrandbits(128))),
    }


def _batches(count: int, mutate: Callable[[dict[str, Any], int], None] | None) -> list[bytes]:
    rng = random.Random(42)  # the same data in every run
    batches = []
    for _ in range(count):
        records = [_record(rng, index) for index in range(RECORDS_PER_BATCH)]
        if mutate is not None:
            for index, record in enumerate(records):
                mutate(record, index)
        batches.append(msgspec.json.encode(records))
    return batches


def _with_unknown_key(record: dict[str, Any], _: int) -> None:
    record["source"] = "webhook"


def _one_in_ten_invalid(record: dict[str, Any], index: int) -> None:
    if index % 10 == 0:
        record["count"] = "many"


def _wide(record: dict[str, Any], _: int) -> None:
    for number in range(90):
        record[f"extra_{number}"] = {"a": 1, "b": [1, 2]} if number % 3 == 0 else "x" * 10


def _shipped(codec: RecordCodec) -> Callable[[bytes], int]:
    def run(body: bytes) -> int:
        return len(codec.encode(parse_body(body, "application/json")).records)

    return run


def _fastavro_writer(codec: RecordCodec, schema: dict[str, object]) -> Callable[[bytes], int]:
    parsed = fastavro.parse_schema(schema)
    decode, key_of = codec._json.strict, codec._key_of
    header = b"\x00" + codec.schema_id.to_bytes(4, "big")
    asdict = msgspec.structs.asdict

    def run(body: bytes) -> int:
        buffer, produced = io.BytesIO(), []
        for index, raw in enumerate(_records(body)):
            record = decode(raw)
            buffer.seek(0)
            buffer.truncate()
            buffer.write(header)
            fastavro.schemaless_writer(buffer, parsed, asdict(record))
            key = None if key_of is None else key_of(record)
            produced.append((index, key, buffer.getvalue()))
        return len(produced)

    return run


def _records(body: bytes) -> list[msgspec.Raw]:
    batch = parse_body(body, "application/json")
    assert isinstance(batch, JsonRecords)
    return batch.records


def _writer_only(codec: RecordCodec) -> Callable[[list[Any]], int]:
    encode = codec._encode

    def run(decoded: list[Any]) -> int:
        return len([encode(record) for record in decoded])

    return run


def _decoded(codec: RecordCodec, batches: list[bytes]) -> list[list[Any]]:
    decode = codec._json.strict
    return [[decode(raw) for raw in _records(body)] for body in batches]


def _measure(name: str, run: Callable[[T], int], batches: Sequence[T]) -> float:
    run(batches[0])  # warm up
    durations = []
    records = 0
    for batch in batches:
        started = time.perf_counter()
        records += run(batch)
        durations.append(time.perf_counter() - started)
    tracemalloc.start()
    run(batches[0])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    total = sum(durations)
    cuts = statistics.quantiles(durations, n=100)
    rate = len(batches) * RECORDS_PER_BATCH / total
    print(
        f"{name:42s} {rate:>11,.0f} rec/s {1e6 / rate:6.2f} µs/rec"
        f"   batch p50 {cuts[49] * 1e3:6.2f} ms  p99 {cuts[98] * 1e3:6.2f} ms"
        f"   peak {peak / 2**20:5.2f} MiB   ({records / len(batches):.0f} valid/batch)"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument(
        "--writer",
        choices=["c", "fastavro"],
        default="c",
        help="the codec's writer on the harder batches (fastavro: as where C is not built)",
    )
    args = parser.parse_args()
    if not NATIVE:
        parser.error("the C writer is not built (inlet/codec/_avro_native.c): nothing to compare")
    count = args.batches
    schema = avro_schema("Bench", FIELDS)
    codecs = {
        writer: RecordCodec(
            FIELDS, schema, schema_id=1, schema_version=1, key_field="id", native=writer == "c"
        )
        for writer in ("c", "fastavro")
    }
    batches = _batches(count, None)
    print(
        f"{count} batches x {RECORDS_PER_BATCH} records, "
        f"{len(batches[0]) / RECORDS_PER_BATCH:.0f} bytes per record\n"
    )
    baseline = _measure(
        "fastavro-writer (baseline)", _fastavro_writer(codecs["c"], schema), batches
    )
    fallback = _measure("codec, fastavro (fallback)", _shipped(codecs["fastavro"]), batches)
    shipped = _measure("codec, C (shipped)", _shipped(codecs["c"]), batches)
    print(f"codec, C / baseline: {shipped / baseline:.2f}x")
    print(f"codec, fastavro / baseline: {fallback / baseline:.2f}x\n")
    decoded = _decoded(codecs["c"], batches)
    for writer, codec in codecs.items():
        _measure(f"writer only, {writer}", _writer_only(codec), decoded)
    print()
    codec = codecs[args.writer]
    for name, mutate in [
        ("every record unknown key", _with_unknown_key),
        ("10% invalid", _one_in_ten_invalid),
        ("2.5 KB, 90 unknown keys", _wide),
    ]:
        _measure(f"codec, {args.writer}, {name}", _shipped(codec), _batches(count, mutate))


if __name__ == "__main__":
    main()
