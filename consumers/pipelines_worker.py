"""``python -m consumers.pipelines_worker``: the pipeline feeds alone, in their own process.

``inlet consumers`` runs ``run_pipelines`` next to the other workers; this runs only the feeds
(to scale them apart from the rest, and in tests that kill a feed process with SIGKILL).
SIGINT/SIGTERM stop it cleanly: open files are finished, the group is left.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from consumers.pipelines import run_pipelines
from inlet.logs import setup_logging
from inlet.settings import Settings, SettingsError, load_settings

log = logging.getLogger("inlet.consumers.pipelines")


async def _run_until_signalled(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await run_pipelines(settings, stop)


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)  # logging is set up from the settings, so not yet
        return 2
    setup_logging(settings.log_level, service="pipelines")
    try:
        asyncio.run(_run_until_signalled(settings))
    except Exception:
        log.exception("the pipeline feeds failed")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
