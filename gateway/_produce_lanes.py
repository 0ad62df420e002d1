"""Two producers per gateway worker: one for small requests, one for large ones.

A record of a small request (a webhook) handed to the same producer as a large request's waits
behind the large one's records twice: in librdkafka's queue of the partition they share (sent in
order, up to ``PRODUCE_WINDOW`` ahead), and in the producer's one queue of delivery reports,
which its poll thread serves one record at a time, each needing the GIL. Traced beside a 10 MiB
body (``bench/hostile_bench.py``, 2026-12-01), a single record sent while the large request was
being handed over waited 13-26 ms at p50 for its ack, against 8-13 ms while the body was parsed
(8 runs); on a producer of its own, 7.5-16 ms, as while parsed. There it finds only other small
requests' records ahead of it.

A request is large when it has more than ``STEP_RECORDS`` records: exactly the requests that are
handed over in slices, under the window (``AsyncProducer.produce_steps``). So scenario (a) of
``bench/gateway_bench.py`` (500-record arrays) and every smaller request keep a producer to
themselves, as before.

Records of two requests on two producers are not ordered with each other; they were not before
either unless one request was answered before the other was sent (and then they still are: its
records were acknowledged before the next request's were produced).

The local queue's bounds (``inlet/kafka.py``: records, kilobytes) are the worker's, shared
between the two lanes half and half, so a worker holds no more than before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inlet.codec.steps import STEP_RECORDS, WaitingSteps
from inlet.kafka import AsyncProducer, Delivery, RecordFields, TrackedProducer, producer_config
from inlet.settings import Settings

# The queue bounds split between the lanes (each lane gets half of what one producer had).
_SPLIT = ("queue.buffering.max.messages", "queue.buffering.max.kbytes")


class LanedProducer:
    """A ``TrackedProducer``: calls of up to ``threshold`` records to ``small``, others to
    ``large``."""

    def __init__(
        self, small: TrackedProducer, large: TrackedProducer, *, threshold: int = STEP_RECORDS
    ) -> None:
        self.small = small
        self.large = large
        self._threshold = threshold

    def lane_for(self, count: int) -> TrackedProducer:
        return self.small if count <= self._threshold else self.large

    def produce_steps(
        self, records: Sequence[RecordFields], delivery: Delivery
    ) -> WaitingSteps[None]:
        return self.lane_for(len(records)).produce_steps(records, delivery)

    def close(self, timeout: float = 5.0) -> None:
        """Flush and stop both (off the event loop), each within half of ``timeout``."""
        self.small.close(timeout / 2)
        self.large.close(timeout / 2)


def lane_config(settings: Settings, *, client_id: str, large: bool) -> dict[str, Any]:
    """A lane's producer settings: durable as ``producer_config`` makes every producer, with half
    of the local queue one producer would have."""
    whole = producer_config(settings, client_id=client_id)
    halves = {key: max(1, int(whole[key]) // 2) for key in _SPLIT}
    named = f"{client_id}-large" if large else client_id
    return producer_config(settings, client_id=named, **halves)


def laned_producer(settings: Settings, *, client_id: str) -> LanedProducer:
    return LanedProducer(
        AsyncProducer(lane_config(settings, client_id=client_id, large=False)),
        AsyncProducer(lane_config(settings, client_id=client_id, large=True)),
    )
