"""The gateway's two producers: small requests on one, large ones (those handed over in slices,
under the window) on the other, the local queue shared between them."""

from __future__ import annotations

from collections.abc import Sequence

from gateway._produce_lanes import LanedProducer, lane_config
from inlet.codec.steps import STEP_RECORDS, WaitingSteps, run
from inlet.kafka import Delivery, OutgoingRecord, RecordFields, producer_config
from inlet.settings import Settings


class Lane:
    def __init__(self) -> None:
        self.calls: list[int] = []
        self.closed: list[float] = []

    def produce_steps(
        self, records: Sequence[RecordFields], delivery: Delivery
    ) -> WaitingSteps[None]:
        self.calls.append(len(records))
        delivery.queued = len(records)
        yield from ()

    def close(self, timeout: float = 5.0) -> None:
        self.closed.append(timeout)


def _records(count: int) -> list[OutgoingRecord]:
    return [OutgoingRecord("t", b"v")] * count


def test_a_request_handed_over_in_one_go_takes_the_small_lane_a_sliced_one_the_large() -> None:
    small, large = Lane(), Lane()
    producer = LanedProducer(small, large)
    for count in (1, 500, STEP_RECORDS, STEP_RECORDS + 1, 100_000):
        delivery = Delivery.__new__(Delivery)  # counted by the lane only
        run(producer.produce_steps(_records(count), delivery))
        assert delivery.queued == count
    assert small.calls == [1, 500, STEP_RECORDS]
    assert large.calls == [STEP_RECORDS + 1, 100_000]


def test_closing_flushes_both_lanes_within_the_one_timeout() -> None:
    small, large = Lane(), Lane()
    LanedProducer(small, large).close(5.0)
    assert small.closed == [2.5]
    assert large.closed == [2.5]


def test_the_lanes_share_one_producer_s_queue_and_are_as_durable_as_it() -> None:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:9")
    whole = producer_config(settings, client_id="inlet-gateway")
    small = lane_config(settings, client_id="inlet-gateway", large=False)
    large = lane_config(settings, client_id="inlet-gateway", large=True)
    for key in ("queue.buffering.max.messages", "queue.buffering.max.kbytes"):
        assert small[key] + large[key] <= whole[key]
        assert small[key] == large[key] >= whole[key] // 2
    for config in (small, large):
        assert {k: v for k, v in config.items() if not k.startswith(("queue.", "client."))} == {
            k: v for k, v in whole.items() if not k.startswith(("queue.", "client."))
        }
    assert (small["client.id"], large["client.id"]) == ("inlet-gateway", "inlet-gateway-large")
