"""What the gateway's metrics cost one ingest request: µs a request, in memory and in files.

Run: ``uv run python bench/metrics_bench.py [--requests N]``. One core, no network. A request
records what ``gateway/app.py`` and ``gateway/ingest.py`` record: the request counter, the
accepted and rejected counters, the in-flight gauge up and down, the produce latency. Each design
runs in its own interpreter (prometheus_client chooses in-memory or file-backed values on import):

  before            in memory, ``labels()`` looked up per request for the record counters
  in memory         ``GatewayMetrics`` without ``PROMETHEUS_MULTIPROC_DIR`` (tests, 1 process)
  multiprocess      ``GatewayMetrics`` with it, as ``inlet gateway`` runs (mmap files per worker)
  scrape            one ``/metrics`` rendering in multiprocess mode, with 2 dead workers' files
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

CONNECTORS = 20


def _run(design: str, requests: int) -> float:
    from gateway.metrics import GatewayMetrics  # noqa: PLC0415 - after the environment is set
    from inlet.model.connectors import ConnectorState  # noqa: PLC0415

    metrics = GatewayMetrics()
    connectors = [f"con_{i:032x}" for i in range(CONNECTORS)]
    if design == "scrape":
        state = ConnectorState()
        for c in connectors:
            metrics.count_request(c, 200)
            metrics.count_records(c, 1, 0)
        started = time.perf_counter()
        for _ in range(requests):
            metrics.render(state)
        return (time.perf_counter() - started) / requests * 1e6
    started = time.perf_counter()
    for i in range(requests):
        connector = connectors[i % CONNECTORS]
        produce_started = time.perf_counter()
        metrics.in_flight.inc(10)
        metrics.in_flight.dec(10)
        metrics.produce_seconds.observe(time.perf_counter() - produce_started)
        if design == "before":
            metrics.accepted.labels(connector).inc(10)
            metrics.rejected.labels(connector).inc(0)
        else:
            metrics.count_records(connector, 10, 0)
        metrics.count_request(connector, 200)
    return (time.perf_counter() - started) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--design", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.design:
        print(_run(args.design, args.requests))
        return
    print(f"{'design':<14} {'µs':>8}")
    for design in ("before", "in memory", "multiprocess", "scrape"):
        env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        with tempfile.TemporaryDirectory() as files:
            if design in ("multiprocess", "scrape"):
                env["PROMETHEUS_MULTIPROC_DIR"] = files
            requests = 200 if design == "scrape" else args.requests
            out = subprocess.run(
                [sys.executable, __file__, "--design", design, "--requests", str(requests)],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        unit = "a scrape" if design == "scrape" else "a request"
        print(f"{design:<14} {float(out):>8.2f}  ({unit})")


if __name__ == "__main__":
    main()
