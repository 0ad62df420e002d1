"""The fold of ``_inlet_dedup``: which keys were accepted (and where their records landed), and
which attempt holds each key in flight. Pure and deterministic: every gateway process folds the
same records in the same order per partition, so all agree on who holds a key.

Entries (msgspec JSON), keyed by the key's digest (``gateway/dedup_keys.py``) plus one byte:

* ``claim`` (digest + ``c``): attempt ``owner`` (process id + attempt number) takes the key for
  ``lease_ms`` from ``at_ms`` (its writer's clock). It wins if, *in log order*, no other claim on
  the key is live at its ``at_ms`` and the key is not accepted; else it is ignored (the loser
  learns so once its reader has folded past its own claim).
* ``released`` (digest + ``c``, replacing the claim under compaction): the holder gave the key up
  (its attempt was refused or failed): the next claim wins at once.
* ``accepted`` (digest + ``a``, a key of its own so that a later claim never compacts it away):
  the key's records are in Kafka. ``count`` records; ``landings``, per record, ``[partition,
  offset]``; for a request key (``request``), the fold also files each record's landing under its
  own digest. The first acceptance of a key stands.

The topic is compacted and time-bounded (``gateway/dedup.py``): claims are compacted only after
their leases ended (``min.compaction.lag.ms``), acceptances deleted after the longest window.
"""

from __future__ import annotations

from typing import Final

import msgspec

from gateway.dedup_keys import DIGEST_BYTES, UNKNOWN_LANDING, nth_record_digest, pack_landing
from inlet.dedup_index import DedupIndex
from inlet.statelog.fold import CorruptRecord
from inlet.topics import DEDUP_TOPIC

CLAIM_SUFFIX: Final = b"c"
# A claim is forgotten this long after its lease ended: well past any clock skew between the
# writers, so pruning never changes who holds a key in flight.
_PRUNE_AFTER_MS: Final = 60_000
ACCEPTED_SUFFIX: Final = b"a"


class Claim(msgspec.Struct, frozen=True, tag="claim"):
    owner: str
    at_ms: int
    lease_ms: int

    @property
    def until_ms(self) -> int:
        return self.at_ms + self.lease_ms


class Released(msgspec.Struct, frozen=True, tag="released"):
    owner: str
    at_ms: int


class Accepted(msgspec.Struct, frozen=True, tag="accepted"):
    owner: str
    at_ms: int
    window_s: int
    count: int
    request: bool = False
    # Per record, [partition, offset]; None when not known (then a duplicate's answer names the
    # records without where they landed).
    landings: list[tuple[int, int]] | None = None


Entry = Claim | Released | Accepted
_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder(Entry)


def encode_entry(entry: Entry) -> bytes:
    return _encoder.encode(entry)


def entry_key(digest: bytes, entry: Entry) -> bytes:
    return digest + (ACCEPTED_SUFFIX if isinstance(entry, Accepted) else CLAIM_SUFFIX)


class DedupIndexes:
    """One ``DedupIndex`` per window in use: an acceptance is kept for the window its connector
    had when it was accepted (a changed window applies to keys accepted after the change)."""

    def __init__(self) -> None:
        self._by_window: dict[int, DedupIndex] = {}

    def add(self, digest: bytes, value: int, accepted_at_s: int, window_s: int) -> None:
        index = self._by_window.get(window_s)
        if index is None:
            index = self._by_window[window_s] = DedupIndex(window_s)
        index.add(digest, value, accepted_at_s)

    def get(self, digest: bytes, now_s: int) -> int | None:
        for index in self._by_window.values():
            value = index.get(digest, now_s)
            if value is not None:
                return value
        return None

    def expire(self, now_s: int) -> None:
        for index in self._by_window.values():
            index.expire(now_s)

    def __len__(self) -> int:
        return sum(map(len, self._by_window.values()))


class DedupFold:
    """Folds ``_inlet_dedup`` records (a ``Folder``: ``inlet/statelog/fold.py``)."""

    def __init__(self) -> None:
        self.accepted = DedupIndexes()
        # Claims not yet released nor accepted: as many as attempts in flight, plus those whose
        # holder died (until ``prune`` drops them after their lease).
        self.claims: dict[bytes, Claim] = {}

    def apply(self, topic: str, key: bytes, value: bytes | None) -> None:
        if topic != DEDUP_TOPIC or value is None:
            return  # a tombstone: nothing to forget that time does not
        if len(key) != DIGEST_BYTES + 1:
            raise CorruptRecord(f"{topic}: a key of {len(key)} bytes")
        digest = key[:DIGEST_BYTES]
        try:
            entry = _decoder.decode(value)
        except msgspec.DecodeError as exc:
            raise CorruptRecord(f"{topic}: {exc}") from exc
        if isinstance(entry, Claim):
            self._claim(digest, entry)
        elif isinstance(entry, Released):
            held = self.claims.get(digest)
            if held is not None and held.owner == entry.owner:
                del self.claims[digest]
        else:
            self._accept(digest, entry)

    def _claim(self, digest: bytes, claim: Claim) -> None:
        if self.accepted.get(digest, claim.at_ms // 1000) is not None:
            return  # accepted already: the claimant answers "duplicate"
        held = self.claims.get(digest)
        if held is None or held.owner == claim.owner or held.until_ms <= claim.at_ms:
            self.claims[digest] = claim

    def _accept(self, digest: bytes, accepted: Accepted) -> None:
        at_s, window = accepted.at_ms // 1000, accepted.window_s
        if self.accepted.get(digest, at_s) is not None:
            return  # the first acceptance stands
        self.claims.pop(digest, None)
        landings = accepted.landings
        if accepted.request:
            self.accepted.add(digest, accepted.count, at_s, window)
            for index, (partition, offset) in enumerate(landings or ()):
                self.accepted.add(
                    nth_record_digest(digest, index), pack_landing(partition, offset), at_s, window
                )
        else:
            value = UNKNOWN_LANDING if not landings else pack_landing(*landings[0])
            self.accepted.add(digest, value, at_s, window)

    def holder(self, digest: bytes) -> Claim | None:
        return self.claims.get(digest)

    def prune(self, now_ms: int) -> None:
        """Forget claims whose lease ended (a later claim wins over them anyway) and
        acceptances older than their window: memory stays bounded."""
        cutoff = now_ms - _PRUNE_AFTER_MS
        self.claims = {d: c for d, c in self.claims.items() if c.until_ms > cutoff}
        self.accepted.expire(now_ms // 1000)
