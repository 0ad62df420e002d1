"""Which state readers a gateway worker answers for in ``/health/ready`` and ``/metrics``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.dedup import Deduplicator
    from inlet.statelog.kafka import LogReader


class StateReaders:
    """This worker's state readers, for ``/health/ready`` and ``/metrics``: the connectors', and
    the dedup reader while it runs (read anew each time), from the first time it caught up.

    A dedup reader started while the worker serves (a connector has just turned dedup on, so every
    worker starts one at once) does not make the worker unready while it first catches up: its
    claims wait for it or answer 503 alone, and the plain connectors' requests, which do not need
    it, keep being served rather than the whole gateway leaving the load balancer for a moment.
    """

    def __init__(self, connectors: LogReader, dedup: Deduplicator) -> None:
        self._connectors = connectors
        self._dedup = dedup
        self._counted: LogReader | None = None  # the dedup reader seen caught up

    def __iter__(self) -> Iterator[LogReader]:
        yield self._connectors
        reader = self._dedup.reader
        if reader is None:
            return
        if reader is not self._counted:
            if not reader.status().caught_up:
                return
            self._counted = reader
        yield reader
