"""The keys a gateway remembers as accepted within the dedup window, and what each answered.

The interface the ingest path uses (``gateway/``) and the dedup state reader fills from Kafka.
This first version keeps a plain dict; its memory is far from the bound the dedup design states
(issue #13: 10 million keys in at most 300 MB per gateway process), which a compact layout
replaces without changing the interface.

A key is a digest the caller computes (connector id and the sender's key, hashed), so the index
never holds a sender's text. A value is an opaque 64-bit integer (the caller packs where the
original landed into it). Times are whole seconds since the epoch.
"""

from __future__ import annotations


class DedupIndex:
    """Digest → (value, accepted at) for the keys accepted in the last ``window_s`` seconds."""

    def __init__(self, window_s: int) -> None:
        self.window_s = window_s
        self._entries: dict[bytes, tuple[int, int]] = {}

    def add(self, digest: bytes, value: int, accepted_at_s: int) -> None:
        """Remember ``digest`` as accepted at ``accepted_at_s``; the first acceptance wins."""
        self._entries.setdefault(digest, (value, accepted_at_s))

    def get(self, digest: bytes, now_s: int) -> int | None:
        """The value kept for ``digest``, or None if unknown or accepted before the window."""
        entry = self._entries.get(digest)
        if entry is None or entry[1] <= now_s - self.window_s:
            return None
        return entry[0]

    def expire(self, now_s: int) -> None:
        """Forget what was accepted before the window (memory stays bounded by the window)."""
        cutoff = now_s - self.window_s
        self._entries = {d: e for d, e in self._entries.items() if e[1] > cutoff}

    def __len__(self) -> int:
        return len(self._entries)
