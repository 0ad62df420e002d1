"""The consumers process: every worker that reads connector topics, started and stopped together.

``run_consumers`` is what ``inlet consumers`` (and ``inlet up``) run; ``python -m consumers.main
[WORKER …]`` runs all of them, or only the named ones (``samples``, ``pipelines``): to scale the
feeds apart from the rest, and in tests that kill a feed process with SIGKILL.
If one worker fails, the others are cancelled and the error ends the process,
so a supervisor restarts the whole set from their durable state.

SIGINT/SIGTERM stop the process within ``STOP_WITHIN_S`` whatever it is doing, start-up
included: the workers get ``STOP_GRACE_S`` to finish what is pending, then they are cancelled,
and a process still not gone ``STOP_WITHIN_S`` after the signal (a blocking Kafka call in a
thread, which nothing can cancel, e.g. the state topics' creation waiting on an unreachable
Kafka for 30 s) exits at once. Exiting then is as safe as a crash, which every worker survives.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from typing import Protocol

from consumers.metrics import ConsumerMetrics, serve_metrics
from consumers.pipeline_worker import PipelinesWorker
from consumers.sample_worker import SampleWorker
from inlet.kafka import KafkaNotConfigured
from inlet.logs import flush_logs, setup_logging
from inlet.settings import Settings, SettingsError, load_settings

log = logging.getLogger("inlet.consumers")

STOP_GRACE_S = 6.0  # for the workers to write what is pending, after the stop signal
STOP_WITHIN_S = 12.0  # then the process is gone, whatever it was waiting on


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
        tasks = [
            group.create_task(worker.run(stop), name=f"consumer-{worker.name}")
            for worker in workers(settings, only, metrics)
        ]
        group.create_task(_cancel_when_overdue(stop, tasks), name="consumers-stop")


async def _cancel_when_overdue(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    """Once ``stop`` is set, cancel the workers that did not finish within the grace period
    (a worker still starting does not look at ``stop``)."""
    if not tasks:
        return
    await stop.wait()
    _done, late = await asyncio.wait(tasks, timeout=STOP_GRACE_S)
    for task in late:
        log.warning(
            "a consumer worker did not stop in time; cancelling it",
            extra={"worker": task.get_name()},
        )
        task.cancel()


async def _run_until_signalled(settings: Settings, only: frozenset[str]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stopping(signum: int) -> None:
        if not stop.is_set():
            log.info("stopping", extra={"signal": signal.Signals(signum).name})
            threading.Thread(target=_exit_when_overdue, name="consumers-exit", daemon=True).start()
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping, signum)
    metrics = ConsumerMetrics()
    server = serve_metrics(metrics, settings.host, settings.consumers_metrics_port)
    try:
        await run_consumers(settings, stop, only, metrics)
    finally:
        if server is not None:
            server.shutdown()


def _exit_when_overdue() -> None:
    """On its own thread: ends the process ``STOP_WITHIN_S`` after the stop signal at the latest
    (``asyncio.run`` waits for every worker thread at its end, however long their call takes)."""
    threading.Event().wait(STOP_WITHIN_S)
    log.warning("the consumers did not stop in time; exiting")
    flush_logs()
    os._exit(0)


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
