"""Where a Parquet feed's reading thread spends its CPU, per record and by stage.

Run: ``uv run python bench/feed_stages_bench.py [--records N] [--rounds R]``. Needs Kafka
(``KAFKA_BOOTSTRAP_SERVERS``, else a local broker from the Maven jars). The feeds bench's records
(``bench/feeds_bench.py``) go to a 3-partition topic once; each round then reads the whole topic
as a Parquet pipeline's feed does, in this thread, through the feed's own code (``Feed._batch``,
``FilesSink.write``, ``release``), and charges this thread's CPU time (``time.thread_time``:
librdkafka's fetching threads apart) to each stage:

  consume     ``Consumer.consume``: librdkafka's batch, a Python message per record
  accessors   ``Feed._batch`` less its decoding: each message's fields, headers, the records
  decode      the C reader (``WireDecoder.decode_typed_batch``, through ``Feed._decode``)
  build       the Parquet table from the decoded records (``FilesSink._table``)
  write       the rest of the sink: Parquet encoding, the file, fsync, rename

Prints CPU µs a record per stage, best and median of the rounds. No registry, no group: the
feed's partitions are assigned from offset 0, the sink writes below a temporary directory.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from fastavro import parse_schema, schemaless_writer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feeds_bench import FIELDS, _value, local_kafka

from consumers import _feed
from consumers._feed import BATCH_RECORDS, Feed, FeedContext
from inlet.kafka import client_config, producer_config
from inlet.model.avro import avro_schema
from inlet.model.connectors import Connector
from inlet.model.fields import FieldSpec
from inlet.model.pipelines import FilesSink as FilesSinkConfig
from inlet.model.pipelines import Pipeline
from inlet.records import HEADER_RECEIVED_AT, wire_frame
from inlet.settings import Settings
from inlet.sink_rules import SinkRules

SCHEMA_ID = 1
# The feed's pause of the collector (Feed._consume), where the code measured has one.
paused: Callable[[], contextlib.AbstractContextManager[None]] = getattr(
    _feed, "collector_paused", contextlib.nullcontext
)
STAGES = ("consume", "accessors", "decode", "build", "write")


def _fill(settings: Settings, topic: str, schema: dict[str, Any], count: int) -> None:
    admin = AdminClient(client_config(settings, client_id="bench-admin"))
    for future in admin.create_topics([NewTopic(topic, 3, 1)]).values():
        future.result(30)
    parsed = parse_schema(schema)
    producer = Producer(producer_config(settings, client_id="bench-producer"))
    now = str(int(time.time() * 1000))
    for i in range(count):
        body = io.BytesIO()
        schemaless_writer(body, parsed, _value(i))
        value = wire_frame(SCHEMA_ID, body.getvalue())
        while True:
            try:
                producer.produce(topic, value, str(i).encode(), headers=[(HEADER_RECEIVED_AT, now)])
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)


def _timed(into: dict[str, float], stage: str, call: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return call(*args, **kwargs)
        finally:
            into[stage] += time.thread_time() - started

    return wrapper


def _round(settings: Settings, topic: str, schema_text: str, count: int) -> dict[str, float]:
    """Read the topic once as a Parquet feed: CPU µs a record per stage."""
    with tempfile.TemporaryDirectory(prefix="inlet-stages-") as scratch:
        now = datetime.now(UTC)
        pipeline = Pipeline(
            id="stages",
            name="stages",
            connector_id="c",
            sink=FilesSinkConfig(directory="lake"),
            dlq_topic="stages-dlq",
            created_at=now,
            updated_at=now,
        )
        connector = Connector(
            id="c",
            name="c",
            fields=msgspec.convert(FIELDS, list[FieldSpec]),
            topic=topic,
            rejected_topic="r",
            subject="s",
            record_name="Order",
            schema_id=SCHEMA_ID,
            schema_version=1,
            token_hash="x",
            created_at=now,
            updated_at=now,
        )
        context = FeedContext(
            settings=settings,
            rules=SinkRules(files_root=Path(scratch), hosts=None),
            worker="bench",
            schema_text=lambda _: schema_text,
            load_schema=lambda _: None,
            produce_all=lambda _topic, _records: None,
            last_report=lambda _pipeline, _partition: None,
        )
        feed = Feed(context, pipeline, connector)
        spent = dict.fromkeys(STAGES, 0.0)
        feed._decode = _timed(spent, "decode", feed._decode)  # type: ignore[method-assign]
        sink = feed._new_sink()
        sink._table = _timed(spent, "build", sink._table)  # type: ignore[attr-defined]
        sink.start([])
        consumer = Consumer(
            client_config(settings, client_id="bench-stages", **{"group.id": uuid.uuid4().hex})
        )
        consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
        sink.positions([0, 1, 2])
        seen, batch_ms, sink_ms = 0, 0.0, 0.0
        while seen < count:
            started = time.thread_time()
            messages = consumer.consume(BATCH_RECORDS, 1.0)
            spent["consume"] += time.thread_time() - started
            if not messages:
                continue
            with paused():  # as Feed._consume runs them
                started = time.thread_time()
                batch = feed._batch(messages)
                batch_ms += time.thread_time() - started
                started = time.thread_time()
                sink.write(batch, lambda _letters: None)
                sink_ms += time.thread_time() - started
                seen += len(batch.records)
                del batch, messages
        started = time.thread_time()
        sink.release([0, 1, 2])
        sink_ms += time.thread_time() - started
        sink.close()
        consumer.close()
        spent["accessors"] = batch_ms - spent["decode"]
        spent["write"] = sink_ms - spent["build"]
        return {stage: seconds / count * 1e6 for stage, seconds in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print each round as a JSON line")
    args = parser.parse_args()
    schema = avro_schema("Order", msgspec.convert(FIELDS, list[FieldSpec]))
    schema_text = json.dumps(schema)
    with local_kafka() as bootstrap:
        settings = Settings(kafka_bootstrap_servers=bootstrap)
        topic = f"stages-{uuid.uuid4().hex[:8]}"
        _fill(settings, topic, schema, args.records)
        rounds = []
        for _ in range(args.rounds):
            figures = _round(settings, topic, schema_text, args.records)
            rounds.append(figures)
            if args.json:
                print(json.dumps(figures), flush=True)
    print(f"{args.records:,} records, {args.rounds} rounds; CPU µs a record of the feed's thread")
    totals = [sum(figures.values()) for figures in rounds]
    for stage in (*STAGES, "total"):
        values = totals if stage == "total" else [figures[stage] for figures in rounds]
        print(f"  {stage:<10} best {min(values):6.2f}  median {statistics.median(values):6.2f}")


if __name__ == "__main__":
    main()
