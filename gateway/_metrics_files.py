"""The gateway's metric files: prometheus_client's multiprocess mode, kept bounded and exact.

Every worker process writes its values to its own mmap files in one directory (per gateway
instance; ``deploy/cli.py`` makes it empty before the workers start); a scrape, answered by any
worker, adds them all up. This module adds what the library leaves to its user:

- **Dead workers' files are merged, not kept.** Counter and histogram files of processes that are
  gone are added into one ``<type>_dead.db`` per type, so the directory holds one file per live
  worker and type plus those, however often workers are restarted; their live gauges are deleted
  (``mark_process_dead``). Counters never go backwards: what a dead worker counted stays counted.
- **A merge is atomic for scrapes.** Merges and scrapes hold one file lock. The merged archive
  also lists the pids it holds, so if a worker dies between writing the archive and deleting the
  merged files, the leftovers are ignored (never counted twice) and deleted by the next merge.
- **A worker claims its pid first.** Files under this worker's pid were left by an earlier process
  (pids are reused): they are merged before this process opens its own, so its counts start at 0.
- **Labels of deleted connectors go.** ``render``'s ``keep`` drops their samples from the scrape,
  its ``archive`` from the merged archive (in multiprocess mode, ``Metric.remove`` cannot reach
  other processes' files).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

# Whether a sample's ``connector`` label names a connector to keep showing.
KeepConnector = Callable[[str], bool]

_ADDITIVE = ("counter", "histogram")  # types whose raw file values add up across processes
_DEAD = "dead"
# The archive's own record of the pids merged into it (not a metric: never scraped).
_MERGED = "inlet_metric_files_merged_pid"


class _ValueFile(Protocol):
    def write_value(self, key: str, value: float, timestamp: float) -> None: ...
    def close(self) -> None: ...


# prometheus_client's file helpers are untyped: their types, as this module uses them.
_read_values: Callable[[str], Iterator[tuple[str, float, float, int]]] = (
    MmapedDict.read_all_values_from_file
)
_open_values: Callable[[str], _ValueFile] = MmapedDict
_mark_process_dead: Callable[[int, str], None] = mark_process_dead
_merged_metrics: Callable[[list[str]], Iterable[Metric]] = MultiProcessCollector.merge


def _pid_of(path: Path) -> int | None:
    """The pid in ``counter_123.db`` or ``gauge_livesum_123.db``; None for the archives."""
    tail = path.stem.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _connector_of(key: str) -> str | None:
    labels: dict[str, str] = json.loads(key)[2]
    return labels.get("connector")


class MetricFiles:
    """The metric files directory of one gateway instance (``PROMETHEUS_MULTIPROC_DIR``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_path = path / "lock"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def claim(self, pid: int) -> None:
        """Before this process (``pid``) opens its files: merge what an earlier ``pid`` left."""
        with self._locked():
            self._merge(lambda p: p == pid or not _alive(p), keep=lambda _: True)

    def render(self, keep: KeepConnector, archive: KeepConnector) -> bytes:
        """The scrape: every process's values added up, dead workers' files merged first."""
        with self._locked():
            self._merge(lambda p: not _alive(p), archive)
            files = [str(f) for f in self.path.glob("*.db")]
            registry = CollectorRegistry(auto_describe=False)
            registry.register(_Filtered(_merged_metrics(files), keep))
            return generate_latest(registry)

    def _merge(self, gone: Callable[[int], bool], keep: KeepConnector) -> None:
        """Merge the files of the processes ``gone`` says are gone into the archives."""
        by_pid: dict[int, list[Path]] = defaultdict(list)
        for f in self.path.glob("*.db"):
            pid = _pid_of(f)
            if pid is not None:
                by_pid[pid].append(f)
        for typ in _ADDITIVE:
            of_type = {pid: of for pid, files in by_pid.items() if (of := _of_type(files, typ))}
            self._merge_type(typ, of_type, gone, keep)
        for pid in by_pid:
            if gone(pid):
                _mark_process_dead(pid, str(self.path))  # its live gauges

    def _merge_type(
        self,
        typ: str,
        by_pid: dict[int, list[Path]],
        gone: Callable[[int], bool],
        keep: KeepConnector,
    ) -> None:
        archive = self.path / f"{typ}_{_DEAD}.db"
        values, merged = _read_archive(archive)
        # Leftovers of a merge interrupted after its commit point: counted already.
        for f in (f for pid in merged for f in by_pid.pop(pid, [])):
            f.unlink()
        dead = {pid: files for pid, files in by_pid.items() if gone(pid)}
        for f in (f for files in dead.values() for f in files):
            for key, value, _, _ in _read_values(str(f)):
                values[key] = values.get(key, 0.0) + value
        kept = {k: v for k, v in values.items() if (c := _connector_of(k)) is None or keep(c)}
        if not dead and not merged and len(kept) == len(values):
            return
        _write_archive(archive, kept, dead)  # the commit point of this merge
        for f in (f for files in dead.values() for f in files):
            f.unlink()
        if dead:
            _write_archive(archive, kept, ())


def _of_type(files: list[Path], typ: str) -> list[Path]:
    return [f for f in files if f.name.startswith(f"{typ}_")]


def _read_archive(path: Path) -> tuple[dict[str, float], set[int]]:
    values: dict[str, float] = {}
    merged: set[int] = set()
    if not path.exists():
        return values, merged
    for key, value, _, _ in _read_values(str(path)):
        if json.loads(key)[0] == _MERGED:
            merged.add(int(value))
        else:
            values[key] = value
    return values, merged


def _write_archive(path: Path, values: dict[str, float], merged: Iterable[int]) -> None:
    """Replace the archive at once (a rename): a scrape sees the old one or the new one."""
    new = path.with_suffix(".new")  # not "*.db": never read as a metric file
    new.unlink(missing_ok=True)
    archive = _open_values(str(new))
    try:
        for key, value in values.items():
            archive.write_value(key, value, 0.0)
        for pid in merged:
            archive.write_value(mmap_key(_MERGED, _MERGED, ["pid"], [str(pid)], ""), pid, 0.0)
    finally:
        archive.close()
    new.replace(path)


class _Filtered(Collector):
    """Merged metrics without the samples of connectors ``keep`` refuses, nor the archive's list."""

    def __init__(self, metrics: Iterable[Metric], keep: KeepConnector) -> None:
        self._metrics = metrics
        self._keep = keep

    def collect(self) -> Iterator[Metric]:
        for metric in self._metrics:
            if metric.name == _MERGED:
                continue
            metric.samples = [
                s
                for s in metric.samples
                if (c := s.labels.get("connector")) is None or self._keep(c)
            ]
            yield metric
