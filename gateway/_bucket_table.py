"""The token buckets of one gateway, in a file every one of its worker processes maps.

Layout: a header (a magic that names the layout, the kernel's boot id) and ``SLOTS`` slots of
(key, ``full_at``): the key is 16 bytes of BLAKE2b of the connector id, ``full_at`` a double on
``time.monotonic``'s clock, which every process of a machine shares and a reboot restarts (a table
from an earlier boot is cleared when opened). Open addressing with linear probing, bounded to a
window: a slot whose bucket is full again (``full_at`` has passed) holds nothing worth keeping and
is reused, and since a reused slot is never empty no other key's chain breaks. When a window holds
no such slot, the one nearest to full is taken over: that connector's bucket restarts full, the one
inexactness, and only with more than ``SLOTS`` connectors limited at the same moment.

Each take holds an ``flock`` on the file: a lock and an unlock syscall per request, and the kernel
drops the lock of a process that dies holding it (a worker killed mid-take wedges no other). flock
rather than fcntl record locks, which belong to a process: two tables open in one process (tests
serving two gateways) must exclude each other too.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
from pathlib import Path

from gateway._buckets import take

SLOTS = 8192
_WINDOW = 64
_MAGIC = b"inlet-rl/1\0\0\0\0\0\0"
_HEADER = struct.Struct("<16s36s")  # magic, boot id
_HEADER_SIZE = 64
_SLOT = struct.Struct("<16sd")
_SIZE = _HEADER_SIZE + SLOTS * _SLOT.size
_EMPTY = bytes(16)
_MAX_CACHED_KEYS = 100_000


def _boot_id() -> bytes:
    """This boot's id (Linux); elsewhere none, and a table is never thought to be from another."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_bytes().strip()[:36]
    except OSError:
        return b""


class BucketTable:
    """Buckets by connector id, in ``memory`` (a file's mapping, locked by ``fd``, or private)."""

    def __init__(self, memory: mmap.mmap, fd: int | None) -> None:
        self._memory = memory
        self._fd = fd
        self._keys: dict[str, bytes] = {}

    @classmethod
    def at(cls, path: Path) -> BucketTable:
        """The table in ``path``, created (or cleared, if from another layout or boot) as needed."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.fstat(fd).st_size != _SIZE:
                    os.ftruncate(fd, 0)  # new, or another layout: start from zeros
                    os.ftruncate(fd, _SIZE)
                memory = mmap.mmap(fd, _SIZE)
                if _HEADER.unpack_from(memory, 0) != _HEADER.unpack(_header()):
                    memory[:] = bytes(_SIZE)
                    memory[: _HEADER.size] = _header()
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        except BaseException:
            os.close(fd)
            raise
        return cls(memory, fd)

    @classmethod
    def in_memory(cls) -> BucketTable:
        """A table for this process alone."""
        memory = mmap.mmap(-1, _SIZE)
        memory[: _HEADER.size] = _header()
        return cls(memory, None)

    def take(
        self, connector_id: str, rate: float, burst: float, amount: float, now: float
    ) -> float:
        """Take ``amount`` from the connector's bucket: 0 if granted, else seconds to wait."""
        key = self._keys.get(connector_id)
        if key is None:
            key = self._key(connector_id)
        fd = self._fd
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            offset, full_at = self._slot(key, now)
            full_at, wait_s = take(full_at, now, rate, burst, amount)
            if wait_s == 0.0:
                # Only a grant changes a bucket (a refused take on a claimed slot writes nothing).
                _SLOT.pack_into(self._memory, offset, key, full_at)
            return wait_s
        finally:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _key(self, connector_id: str) -> bytes:
        if len(self._keys) >= _MAX_CACHED_KEYS:  # deleted connectors' keys must not pile up
            self._keys.clear()
        key = self._keys[connector_id] = hashlib.blake2b(
            connector_id.encode(), digest_size=16
        ).digest()
        return key

    def _slot(self, key: bytes, now: float) -> tuple[int, float]:
        """The offset of ``key``'s slot and its ``full_at`` (0, full, for a slot newly claimed)."""
        memory = self._memory
        start = int.from_bytes(key[:8], "little")
        spare, spare_full_at = -1, float("inf")
        for step in range(_WINDOW):
            offset = _HEADER_SIZE + ((start + step) % SLOTS) * _SLOT.size
            slot_key, full_at = _SLOT.unpack_from(memory, offset)
            if slot_key == key:
                return offset, full_at
            if slot_key == _EMPTY:
                # The end of the chain: the key is nowhere. An earlier full slot keeps it short.
                return (spare if spare_full_at <= now else offset), 0.0
            if full_at < spare_full_at:
                spare, spare_full_at = offset, full_at
        return spare, 0.0

    def close(self) -> None:
        self._memory.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _header() -> bytes:
    return _HEADER.pack(_MAGIC, _boot_id())
