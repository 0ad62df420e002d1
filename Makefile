# The two commands of the README: `make up` starts Inlet (Kafka included); `make test` runs everything.
UV := scripts/uv

.PHONY: up test lint unit bench bench-peers chaos sync screenshots

sync:
	$(UV) sync --locked

up: sync
	$(UV) run --locked inlet up

lint: sync
	$(UV) run --locked ruff check .
	$(UV) run --locked ruff format --check .
	$(UV) run --locked mypy
	$(UV) run --locked lint-imports --no-logo
	$(UV) run --locked deptry .

unit: sync
	$(UV) run --locked pytest tests/unit

test: lint
	scripts/ensure-postgres
	scripts/ensure-chromium
	scripts/ensure-promtool
	scripts/ensure-sanitizers
	$(UV) run --locked pytest

# The console's screenshots (docs/console/, which the README shows), taken by its browser tests.
screenshots: sync
	scripts/ensure-chromium
	INLET_SCREENSHOTS_DIR=docs/console $(UV) run --locked pytest tests/browser -m browser

# The end-to-end benchmark: a local Kafka, the registry and the gateway, driven by bench/loadgen (Go),
# with the confluent-kafka baseline in the same run; a few minutes, loopback only, not part of `make
# test`. Prints a table and writes bench/results/latest.json. BENCH_ARGS, for example: --save (a dated
# copy to commit), --quick, --server granian --workers 2, --profile /tmp/prof (needs py-spy). Then the
# registry's write and read latency, one request at a time (bench/results/registry-latest.json).
# First, the dedup index alone: memory and ns per lookup for 10 million keys in the window (a minute).
# Last, the feeds: decoding alone (the C reader beside fastavro, CPU µs a record), then 200,000
# records into PostgreSQL and into Parquet beside the read + decode baseline, and the lag under a
# 20,000 records/s stream (a couple of minutes).
bench: sync
	scripts/ensure-postgres
	$(UV) run --locked python bench/dedup_index_bench.py
	$(UV) run --locked python bench/codec_bench.py --batches 100
	$(UV) run --locked python bench/gateway_bench.py $(BENCH_ARGS)
	$(UV) run --locked python bench/registry_bench.py
	$(UV) run --locked python bench/decode_bench.py
	$(UV) run --locked python bench/feeds_bench.py --records 200000 --rate 20000 --seconds 10

# Inlet beside another HTTP→Kafka endpoint in the Confluent REST proxy's style (the Strimzi Kafka
# Bridge, Karapace's REST proxy), started by you: the same records through both, with the same load
# generator (bench/README.md, "Peers"). Optional: part of neither `make bench` nor `make test`.
# PEERS_ARGS, for example: --bootstrap 127.0.0.1:9092 --peer-url http://127.0.0.1:8088 --peer-pid 1234
bench-peers: sync
	$(UV) run --locked python bench/peers_bench.py $(PEERS_ARGS)

# The chaos suite (chaos/): real processes on loopback, faults injected while writers send with
# retries, every acknowledged record looked for on the topic. Not part of `make test` (which runs a
# short version of three scenarios, tests/e2e/test_chaos.py); tens of minutes. Prints a table and
# writes chaos/results/latest.json. CHAOS_ARGS, for example: --runs 1 --only broker-kill,leader-kill
chaos: sync
	scripts/ensure-postgres
	$(UV) run --locked python -m chaos $(CHAOS_ARGS)
