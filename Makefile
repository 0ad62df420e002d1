# The two commands of the README: `make up` starts Inlet (Kafka included); `make test` runs everything.
UV := scripts/uv

.PHONY: up test lint unit bench sync

sync:
	$(UV) sync --locked

up: sync
	$(UV) run --locked inlet up

lint: sync
	$(UV) run --locked ruff check .
	$(UV) run --locked ruff format --check .
	$(UV) run --locked mypy

unit: sync
	$(UV) run --locked pytest tests/unit

test: lint
	$(UV) run --locked pytest
