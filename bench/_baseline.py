"""The benchmark's ceiling: the same records, pre-encoded, produced straight with confluent-kafka.

``python bench/_baseline.py --bootstrap B --topic T --records FILE.ndjson --schema-id N``.
The records of FILE (the benchmark's NDJSON body) are encoded once by the gateway's own codec,
outside the timing; then, with the producer settings the gateway uses (``producer_config``), they
are produced in a loop for ``--duration`` seconds, with the gateway's two headers and a delivery
callback per record, and the clock stops when every record is acknowledged. A second phase sends
batches of 500 one at a time and waits for all their acks: the floor of a 500-record request's
latency. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
from confluent_kafka import Producer

from inlet.codec.bodies import parse_body
from inlet.codec.record_codec import RecordCodec
from inlet.kafka import printable_config, producer_config
from inlet.model.avro import avro_schema
from inlet.model.fields import FieldSpec
from inlet.records import HEADER_RECEIVED_AT, HEADER_REQUEST_ID
from inlet.settings import Settings


def _headers() -> list[tuple[str, str | bytes | None]]:
    # The gateway's two headers, so a record weighs what the gateway's do.
    return [
        (HEADER_REQUEST_ID, uuid.uuid4().hex),
        (HEADER_RECEIVED_AT, str(time.time_ns() // 10**6)),
    ]


def _encoded(records_file: Path, fields: list[dict[str, Any]], schema_id: int) -> list[Any]:
    specs = msgspec.convert(fields, list[FieldSpec])
    codec = RecordCodec(
        specs, avro_schema("Bench", specs), schema_id=schema_id, schema_version=1, key_field="id"
    )
    result = codec.encode(parse_body(records_file.read_bytes(), "application/x-ndjson"))
    if result.rejected:
        raise SystemExit(f"baseline: {len(result.rejected)} records did not encode")
    return [(key, value) for _index, key, value in result.records]


def _firehose(
    producer: Producer, topic: str, records: list[Any], duration_s: float
) -> dict[str, Any]:
    acked = failed = 0

    def on_delivery(err: object, _msg: object) -> None:
        nonlocal acked, failed
        if err is None:
            acked += 1
        else:
            failed += 1

    headers = _headers()
    produce, poll = producer.produce, producer.poll
    sent = 0
    cpu_before = _cpu_s()
    started = time.perf_counter()
    deadline = started + duration_s
    while time.perf_counter() < deadline:
        for key, value in records:
            while True:
                try:
                    produce(topic, value, key, headers=headers, on_delivery=on_delivery)
                    break
                except BufferError:
                    poll(0.005)
        sent += len(records)
        poll(0)
    producer.flush(60)
    elapsed = time.perf_counter() - started
    cpu = _cpu_s() - cpu_before
    return {
        "records": sent,
        "acked": acked,
        "failed": failed,
        "duration_s": round(elapsed, 3),
        "records_per_s": round(acked / elapsed),
        "cpu_us_per_record": round(cpu / max(acked, 1) * 1e6, 2),
    }


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread, librdkafka's included
    return usage.ru_utime + usage.ru_stime


def _batch_round_trips(
    producer: Producer, topic: str, records: list[Any], duration_s: float, batch: int = 500
) -> dict[str, Any]:
    headers = _headers()
    times: list[float] = []
    deadline = time.perf_counter() + duration_s
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        for key, value in records[:batch]:
            producer.produce(topic, value, key, headers=headers)
        producer.flush(30)
        times.append(time.perf_counter() - started)
    cuts = statistics.quantiles(times, n=100) if len(times) > 1 else times * 99
    return {
        "batch": batch,
        "batches": len(times),
        "latency_ms": {"p50": round(cuts[49] * 1e3, 2), "p99": round(cuts[98] * 1e3, 2)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--records", type=Path, required=True)
    parser.add_argument("--fields", required=True, help="the connector's fields, as JSON")
    parser.add_argument("--schema-id", type=int, required=True)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a producer setting"
    )
    args = parser.parse_args()
    records = _encoded(args.records, json.loads(args.fields), args.schema_id)
    overrides = dict(item.split("=", 1) for item in args.set)
    settings = Settings(kafka_bootstrap_servers=args.bootstrap)
    config = producer_config(settings, client_id="bench", **overrides)
    producer = Producer(config)
    # Warm up: connections, metadata, the idempotent producer id.
    _firehose(producer, args.topic, records, 1.0)
    firehose = _firehose(producer, args.topic, records, args.duration)
    round_trips = _batch_round_trips(producer, args.topic, records, min(3.0, args.duration))
    shown = printable_config(config)
    del shown["bootstrap.servers"]
    print(json.dumps({**firehose, "batch_round_trip": round_trips, "producer_config": shown}))


if __name__ == "__main__":
    main()
