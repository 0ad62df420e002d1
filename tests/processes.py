"""Finding the processes a test started, at any depth, from /proc (Linux)."""

from __future__ import annotations

import uuid
from pathlib import Path

# Put in the environment of the process a test starts; every descendant inherits it, and keeps it
# when its parent dies and it is re-parented. Not INLET_*: an unknown INLET_ variable is an error.
RUN_MARK = "E2E_PROCESS_RUN"


def new_mark() -> dict[str, str]:
    """The environment entry that marks one run's processes."""
    return {RUN_MARK: uuid.uuid4().hex}


def marked(env: dict[str, str]) -> set[int]:
    """Every running process whose environment carries ``env``'s run mark."""
    needle = f"{RUN_MARK}={env[RUN_MARK]}".encode()
    found = set()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if needle in environ.read_bytes().split(b"\0"):
                found.add(int(environ.parent.name))
        except OSError:
            continue
    return {pid for pid in found if running(pid)}


def descendants(pid: int) -> set[int]:
    """Every process started (transitively) by ``pid`` and still its descendant."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def running(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return False


def commands(pids: set[int], width: int | None = 120) -> list[str]:
    """The command lines of ``pids``, shortened to ``width`` (for a failure message)."""
    found = []
    for pid in sorted(pids):
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        found.append(raw.replace(b"\0", b" ").decode(errors="replace")[:width])
    return found
