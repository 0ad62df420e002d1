"""The consumers process: every worker that reads connector topics, started and stopped together.

``run_consumers`` is what ``inlet consumers`` (and ``inlet up``) run; ``python -m consumers.main
[WORKER …]`` runs all of them, or only the named ones (``samples``, ``pipelines``): to scale the
feeds apart from the rest, and in tests that kill a feed process with SIGKILL.
If one worker fails, the others are cancelled and the error ends the process,
so a supervisor restarts the whole set from their durable state.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Protocol

from consumers.metrics import ConsumerMetrics, serve_metrics
from consumers.pipeline_worker import PipelinesWorker
from consumers.sample_worker import SampleWorker
from inlet.kafka import KafkaNotConfigured
from inlet.logs import setup_logging
from inlet.settings import Settings, SettingsError, load_settings

log = logging.getLogger("inlet.consumers")


class Worker(Protocol):
    name: str

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then finish what is pending and close every client."""
        ...


def workers(
    settings: Settings, only: frozenset[str] = frozenset(), metrics: ConsumerMetrics | None = None
) -> list[Worker]:
    metrics = metrics or ConsumerMetrics()
    every: list[Worker] = [
        SampleWorker(settings, metrics=metrics),
        PipelinesWorker(settings, metrics),
    ]
    return [w for w in every if not only or w.name in only]


async def run_consumers(
    settings: Settings,
    stop: asyncio.Event,
    only: frozenset[str] = frozenset(),
    metrics: ConsumerMetrics | None = None,
) -> None:
    """Run the workers until ``stop`` is set (or one of them fails, which then raises)."""
    async with asyncio.TaskGroup() as group:
        for worker in workers(settings, only, metrics):
            group.create_task(worker.run(stop), name=f"consumer-{worker.name}")


async def _run_until_signalled(settings: Settings, only: frozenset[str]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    metrics = ConsumerMetrics()
    server = serve_metrics(metrics, settings.host, settings.consumers_metrics_port)
    try:
        await run_consumers(settings, stop, only, metrics)
    finally:
        if server is not None:
            server.shutdown()


def main(argv: list[str] | None = None) -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)  # logging is set up from the settings, so not yet
        return 2
    setup_logging(settings.log_level, service="consumers")
    return run(settings, frozenset(sys.argv[1:] if argv is None else argv))


def run(settings: Settings, only: frozenset[str] = frozenset()) -> int:
    """Run the consumer workers until SIGINT/SIGTERM; the exit code says how it ended."""
    code = 0
    try:
        asyncio.run(_run_until_signalled(settings, only))
    except* KafkaNotConfigured as group:
        log.error("cannot start the consumers", extra={"error": str(group.exceptions[0])})  # noqa: TRY400
        code = 2
    except* Exception:
        log.exception("a consumer worker failed")
        code = 1
    return code


if __name__ == "__main__":
    raise SystemExit(main())
