"""The dedup fold and keys (pure): who holds a key in log order, what an acceptance files, digests
and landings, and the keys a request carries."""

from __future__ import annotations

import msgspec
import pytest

from gateway.dedup_fold import (
    Accepted,
    Claim,
    DedupFold,
    Entry,
    Released,
    encode_entry,
    entry_key,
)
from gateway.dedup_keys import (
    UNKNOWN_LANDING,
    nth_record_digest,
    pack_landing,
    record_digest,
    record_keys,
    request_digest,
    request_key,
    unpack_landing,
)
from inlet.codec.bodies import BodyFormat, CsvRecords, JsonRecords
from inlet.kafka import Headers
from inlet.model.dedup import Dedup, pointer_tokens
from inlet.statelog.fold import CorruptRecord
from inlet.topics import DEDUP_TOPIC

D = request_digest("con_1", "evt_1")
LEASE = 30_000


def fold(*entries: Entry, digest: bytes = D) -> DedupFold:
    folded = DedupFold()
    for entry in entries:
        folded.apply(DEDUP_TOPIC, entry_key(digest, entry), encode_entry(entry))
    return folded


def test_the_first_live_claim_in_log_order_holds_the_key() -> None:
    folded = fold(Claim("a:1", 1_000, LEASE), Claim("b:1", 1_001, LEASE))
    holder = folded.holder(D)
    assert holder is not None
    assert holder.owner == "a:1"


def test_a_lapsed_lease_or_a_release_lets_the_next_claim_win() -> None:
    lapsed = fold(Claim("a:1", 1_000, LEASE), Claim("b:1", 1_000 + LEASE, LEASE))
    assert (lapsed.holder(D) or Claim("", 0, 0)).owner == "b:1"
    released = fold(Claim("a:1", 1_000, LEASE), Released("a:1", 1_500), Claim("b:1", 1_600, LEASE))
    assert (released.holder(D) or Claim("", 0, 0)).owner == "b:1"
    # A release by another attempt than the holder changes nothing.
    foreign = fold(Claim("a:1", 1_000, LEASE), Released("b:1", 1_500), Claim("c:1", 1_600, LEASE))
    assert (foreign.holder(D) or Claim("", 0, 0)).owner == "a:1"


def test_an_accepted_key_stays_accepted_and_a_later_claim_is_moot() -> None:
    accepted = Accepted("a:1", 2_000_000, 3600, 1, landings=[(2, 7)])
    folded = fold(Claim("a:1", 1_000_000, LEASE), accepted, Claim("b:1", 2_100_000, LEASE))
    assert folded.holder(D) is None
    assert folded.accepted.get(D, 2_100) == pack_landing(2, 7)
    # The window: gone an hour after acceptance.
    assert folded.accepted.get(D, 2_000 + 3600) is None
    # A second acceptance (a lapsed lease's writer) does not move the first one's landing.
    again = Accepted("b:1", 2_200_000, 3600, 1, landings=[(0, 1)])
    folded.apply(DEDUP_TOPIC, entry_key(D, again), encode_entry(again))
    assert folded.accepted.get(D, 2_300) == pack_landing(2, 7)


def test_a_request_acceptance_files_every_record_under_its_own_digest() -> None:
    accepted = Accepted("a:1", 5_000_000, 60, 3, request=True, landings=[(0, 4), (1, 9), (0, 5)])
    folded = fold(accepted)
    assert folded.accepted.get(D, 5_000) == 3
    landings = [folded.accepted.get(nth_record_digest(D, i), 5_000) for i in range(3)]
    assert [unpack_landing(v or 0) for v in landings] == [(0, 4), (1, 9), (0, 5)]
    unknown = fold(Accepted("a:1", 5_000_000, 60, 1), digest=record_digest("con_1", "x"))
    assert unknown.accepted.get(record_digest("con_1", "x"), 5_000) == UNKNOWN_LANDING
    assert unpack_landing(UNKNOWN_LANDING) is None


def test_prune_forgets_lapsed_claims_and_expired_acceptances() -> None:
    folded = fold(Claim("a:1", 1_000, LEASE), Accepted("b:1", 1_000, 10, 1, landings=[(0, 0)]))
    folded.apply(
        DEDUP_TOPIC,
        entry_key(b"x" * 16, Claim("c:1", 1_000, LEASE)),
        encode_entry(Claim("c:1", 1_000, LEASE)),
    )
    folded.prune(1_000 + LEASE + 120_000)
    assert folded.claims == {}
    assert len(folded.accepted) == 0


def test_corrupt_records_are_refused() -> None:
    with pytest.raises(CorruptRecord):
        DedupFold().apply(DEDUP_TOPIC, b"short", b"{}")
    with pytest.raises(CorruptRecord):
        DedupFold().apply(DEDUP_TOPIC, D + b"c", b'{"type":"nope"}')
    DedupFold().apply(DEDUP_TOPIC, D + b"c", None)  # a tombstone: nothing
    DedupFold().apply("other", b"k", b"v")


def test_digests_depend_on_connector_kind_and_key() -> None:
    assert len(D) == 16
    assert request_digest("con_1", "k") != request_digest("con_2", "k")
    assert request_digest("con_1", "k") != record_digest("con_1", "k")
    assert record_digest("con_1", "k") == record_digest("con_1", "k")
    assert nth_record_digest(D, 0) != nth_record_digest(D, 1)
    assert unpack_landing(pack_landing(1_000, 2**48 - 1)) == (1_000, 2**48 - 1)


def test_json_pointers() -> None:
    assert pointer_tokens("/a~1b/c~0d/0") == ("a/b", "c~d", "0")
    assert pointer_tokens("") == ()
    for bad in ("a", "/~2", "/x~"):
        with pytest.raises(ValueError, match=r"must|followed"):
            pointer_tokens(bad)


def test_the_keys_a_request_carries() -> None:
    raw = [msgspec.Raw(msgspec.json.encode(r)) for r in ({"id": "e1"}, {"id": 7}, {"x": 1})]
    raw.append(msgspec.Raw(b'{"id": true}'))
    batch = JsonRecords(BodyFormat.JSON, raw)
    assert record_keys(Dedup(pointer="/id"), None, batch, None) == ["e1", "7", None, None]
    nested = JsonRecords(BodyFormat.JSON, [msgspec.Raw(b'{"data": {"object": [{"id": "o"}]}}')])
    assert record_keys(Dedup(pointer="/data/object/0/id"), None, nested, None) == ["o"]
    csv = CsvRecords(["id"], [{"id": "c1"}, {"id": ""}], [2, 3])
    assert record_keys(Dedup(pointer="/id"), None, csv, None) == ["c1", None]
    assert record_keys(Dedup(header="webhook-id"), None, batch, None) is None

    assert request_key(Dedup(header="webhook-id"), None, {"webhook-id": "msg_1"}, None) == "msg_1"
    assert request_key(Dedup(header="webhook-id"), None, {}, None) is None
    firehose = {"x-amz-firehose-request-id": "req-1"}
    assert request_key(Dedup(envelope=True), "firehose", firehose, None) == "req-1"
    pubsub: list[Headers] = [[("pubsub_message_id", "m-1")]]
    assert request_key(Dedup(envelope=True), "pubsub-push", {}, pubsub) == "m-1"
    events: list[Headers] = [[("ce_source", "/s"), ("ce_id", "1")], [("ce_id", "2")]]
    one = JsonRecords(BodyFormat.NDJSON, raw[:2])
    assert record_keys(Dedup(envelope=True), "cloudevents", one, events) == ["/s\n1", None]
