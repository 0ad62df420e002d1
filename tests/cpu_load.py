"""Artificial CPU load for the tests of behaviour on a busy machine: one busy loop per core."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from inlet.process import die_with_parent


@contextmanager
def busy_cores(count: int | None = None) -> Iterator[list[int]]:
    """``count`` (default: one per core) processes spinning for the block; their pids."""
    loops = [
        subprocess.Popen(
            [sys.executable, "-c", "while True: pass"],
            stdin=subprocess.DEVNULL,
            # A test process killed outright must not leave the machine busy.
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl
        )
        for _ in range(count or os.cpu_count() or 2)
    ]
    try:
        yield [loop.pid for loop in loops]
    finally:
        for loop in loops:
            loop.kill()
        for loop in loops:
            loop.wait()
