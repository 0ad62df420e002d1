"""Per-connector rate limits: token buckets, refilled continuously, shared by a gateway's workers.

``rate_limit_per_s`` is a limit per gateway, not per worker process: the buckets live in a table
every worker process maps (``_bucket_table.py``, a file in the data dir), so two workers behind one
port allow the rate once, however the connections are spread over them. Several gateway instances
each enforce it on their own (the README says so). The arithmetic is ``_buckets.py``.

A request of n records takes n tokens. One larger than the burst (one second's worth) could only
pass by owing the bucket for longer than a second, a burst the limit exists to prevent, or by
waiting for a bucket that never holds enough: it is refused, saying so (``BatchExceedsBurst``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from gateway._bucket_table import BucketTable
from gateway._buckets import burst_of
from gateway.errors import BatchExceedsBurst, RateLimited
from inlet.settings import Settings

log = logging.getLogger("inlet.gateway")


def table_path(settings: Settings) -> Path:
    """The buckets of the gateway serving ``gateway_port``: its workers share them, another
    gateway on the same machine (another port) has its own."""
    return Path(settings.data_dir) / "gateway" / f"rate-limits-{settings.gateway_port}"


class RateLimiter:
    """One bucket per connector, in a table every worker process of the gateway shares.

    ``path`` is the table's file (created on the first limited request, so a gateway whose
    connectors have no limit writes nothing); ``None`` keeps the table in this process only.
    """

    def __init__(
        self, path: Path | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._path = path
        self._clock = clock
        self._table: BucketTable | None = None

    def check(self, connector_id: str, rate: float | None, records: int) -> float:
        """0 when ``records`` may pass now (and are taken), else the seconds to wait; ``records``
        at most the burst (``admit`` refuses larger requests)."""
        if rate is None or rate <= 0:
            return 0.0
        table = self._table or self._open()
        return table.take(connector_id, rate, burst_of(rate), records, self._clock())

    def admit(self, connector_id: str, rate: float | None, records: int) -> None:
        """Take ``records`` tokens, or raise ``RateLimited`` (wait) or ``BatchExceedsBurst``."""
        if rate is None or rate <= 0:
            return
        burst = burst_of(rate)
        if records > burst:
            raise BatchExceedsBurst(records, burst)
        wait_s = self.check(connector_id, rate, records)
        if wait_s > 0:
            raise RateLimited(wait_s)

    def _open(self) -> BucketTable:
        if self._path is None:
            self._table = BucketTable.in_memory()
            return self._table
        try:
            self._table = BucketTable.at(self._path)
        except OSError as exc:
            # Still a limit, but each worker process's own: say so once.
            log.warning(
                "rate limits are per worker process: the shared table cannot be opened",
                extra={"path": str(self._path), "error": str(exc)},
            )
            self._table = BucketTable.in_memory()
        return self._table

    def close(self) -> None:
        if self._table is not None:
            self._table.close()
            self._table = None
