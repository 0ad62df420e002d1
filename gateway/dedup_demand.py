"""Whether this worker needs its dedup reader: a part of its connectors' fold.

Folded after ``ConnectorState`` (in the same ``StateFold``), it sees each connector record once
the connector is in place, and keeps the ids of the connectors with ``dedup`` on. When that set
goes from empty to not, or back, it says so (``on_change``), in the fold's turn of the loop: a
request for a dedup connector can only be served by a fold that has already said so.
"""

from __future__ import annotations

from collections.abc import Callable

from inlet.model.connectors import ConnectorState
from inlet.statelog.fold import text_key
from inlet.topics import CONNECTORS_TOPIC


class DedupDemand:
    def __init__(self, connectors: ConnectorState, on_change: Callable[[bool], None]) -> None:
        self._connectors = connectors
        self._on_change = on_change
        self.with_dedup: set[str] = set()

    def apply(self, topic: str, key: bytes, value: bytes | None) -> None:
        if topic != CONNECTORS_TOPIC:
            return
        del value  # the connector as ``ConnectorState`` folded it (a bad record: gone there too)
        connector_id = text_key(topic, key)
        connector = self._connectors.get(connector_id)
        before = bool(self.with_dedup)
        if connector is not None and connector.dedup is not None:
            self.with_dedup.add(connector_id)
        else:
            self.with_dedup.discard(connector_id)
        if bool(self.with_dedup) != before:
            self._on_change(bool(self.with_dedup))
