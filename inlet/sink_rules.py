"""Where pipelines may deliver: files below one root, databases on the allowed hosts only.

An admin token lets its holder define pipelines; without these rules a files pipeline could write
any path the consumers can (``/etc/…``, ``/proc/self/cwd/…``), and a PostgreSQL one could make
the consumers connect to any host and port. The registry checks a definition when a pipeline is
made (a ``Problem`` naming the field: 422), and the feed checks again right before it opens its
sink: the consumers' host may resolve paths differently (symlinks made since), and a pipeline
stored before a rule was set is held to it too.

Files: ``INLET_FILES_ROOT`` (default ``<data dir>/files``). A pipeline's ``directory`` is a path
relative to it (an absolute path inside it is taken too), normalised and stored relative to the
root with symlinks resolved, so two spellings of one directory are one sink. ``..``, control
characters (NUL among them), a symlink that leads out of the root and the root itself are refused.

Hosts: ``INLET_SINK_HOSTS``, comma-separated: host names (``db.internal``; ``*.db.internal`` for
any name below it), IP addresses or networks (``10.0.0.0/8``), or socket directories
(``/var/run/postgresql``). Unset: any host. Every ``host`` and ``hostaddr`` of a DSN must be
allowed; names are compared as written (not resolved), so list the names you trust DNS for.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from inlet.errors import Problem

if TYPE_CHECKING:
    from inlet.settings import Settings

DIRECTORY_FIELD = "sink.directory"
DSN_FIELD = "sink.dsn"
MAX_DIRECTORY_CHARS = 1024
MAX_NAME_BYTES = 255  # one path component (NAME_MAX)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class SinkRefused(Exception):
    """A sink these rules do not allow; ``problem`` names the field and says why."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(f"{problem.field}: {problem.reason}")
        self.problem = problem


def _refuse(field: str, reason: str) -> SinkRefused:
    return SinkRefused(Problem(field=field, reason=reason))


@dataclass(frozen=True)
class HostRules:
    """``INLET_SINK_HOSTS`` parsed."""

    names: frozenset[str]
    suffixes: tuple[str, ...]  # from "*.example.com": ".example.com"
    networks: tuple[_Network, ...]
    sockets: frozenset[str]

    def allows(self, host: str) -> bool:
        if host.startswith("/"):
            return os.path.normpath(host) in self.sockets
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            name = host.lower().rstrip(".")
            return name in self.names or name.endswith(self.suffixes)
        return any(address in network for network in self.networks)


def parse_sink_hosts(text: str) -> HostRules:
    """``INLET_SINK_HOSTS``; raises ``ValueError`` naming an entry it cannot read."""
    names: set[str] = set()
    suffixes: list[str] = []
    networks: list[_Network] = []
    sockets: set[str] = set()
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        if entry.startswith("/"):
            sockets.add(os.path.normpath(entry))
        elif entry.startswith("*."):
            suffixes.append(entry[1:].lower().rstrip("."))
        elif re.fullmatch(r"[0-9a-fA-F.:/\[\]]+", entry) and any(c in entry for c in ".:"):
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                reason = f"INLET_SINK_HOSTS: {entry!r} is not an address or network"
                raise ValueError(reason) from None
        elif re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\.?", entry):
            names.add(entry.lower().rstrip("."))
        else:
            raise ValueError(f"INLET_SINK_HOSTS: {entry!r} is not a host name, address or path")
    if not (names or suffixes or networks or sockets):
        raise ValueError("INLET_SINK_HOSTS: no host listed (unset it to allow any host)")
    return HostRules(frozenset(names), tuple(suffixes), tuple(networks), frozenset(sockets))


@dataclass(frozen=True)
class SinkRules:
    files_root: Path
    hosts: HostRules | None  # None: any host

    @classmethod
    def from_settings(cls, settings: Settings) -> SinkRules:
        hosts = None if settings.sink_hosts is None else parse_sink_hosts(settings.sink_hosts)
        return cls(Path(settings.files_root_dir), hosts)

    # --- Files. ---

    def directory(self, directory: str) -> Path:
        """The real directory ``directory`` names, below the root; raises ``SinkRefused``."""
        _check_spelling(directory)
        root = Path(os.path.realpath(self.files_root))
        given = PurePosixPath(directory)
        if given.is_absolute():
            # Inside the root as configured or as resolved (the root may itself be a symlink).
            inside = [
                base
                for base in (Path(os.path.normpath(self.files_root)), root)
                if Path(os.path.normpath(given)).is_relative_to(base)
            ]
            if not inside:
                raise _refuse(DIRECTORY_FIELD, _OUTSIDE)
            candidate = Path(os.path.normpath(given))
        else:
            candidate = root / given
        real = Path(os.path.realpath(candidate))
        if real == root or not real.is_relative_to(root):
            raise _refuse(DIRECTORY_FIELD, _OUTSIDE)
        return real

    def stored_directory(self, directory: str) -> str:
        """How ``directory`` is stored: relative to the root, resolved (checked first)."""
        root = Path(os.path.realpath(self.files_root))
        return self.directory(directory).relative_to(root).as_posix()

    def directory_problems(self, directory: str) -> list[Problem]:
        try:
            self.directory(directory)
        except SinkRefused as exc:
            return [exc.problem]
        return []

    # --- Hosts. ---

    def check_hosts(self, params: dict[str, str]) -> None:
        """Refuse a DSN (parsed, ``conninfo_to_dict``) that reaches a host not allowed."""
        if self.hosts is None:
            return
        if "service" in params:
            raise _refuse(DSN_FIELD, "service is not allowed while INLET_SINK_HOSTS is set")
        targets = [
            host
            for key in ("host", "hostaddr")
            for host in str(params.get(key) or "").split(",")
            if host
        ]
        if not targets:
            reason = "must name its host (INLET_SINK_HOSTS restricts the hosts sinks may reach)"
            raise _refuse(DSN_FIELD, reason)
        for host in targets:
            if not self.hosts.allows(host):
                reason = f"host {host!r} is not one of the hosts INLET_SINK_HOSTS allows"
                raise _refuse(DSN_FIELD, reason)

    def host_problems(self, params: dict[str, str]) -> list[Problem]:
        try:
            self.check_hosts(params)
        except SinkRefused as exc:
            return [exc.problem]
        return []


_OUTSIDE = (
    "must be a directory below the files root (INLET_FILES_ROOT), given relative to it, e.g. "
    '"orders"; symlinks may not lead out of it'
)


def _check_spelling(directory: str) -> None:
    if not directory.strip():
        raise _refuse(DIRECTORY_FIELD, "must not be blank")
    if _CONTROL.search(directory):
        raise _refuse(DIRECTORY_FIELD, "must not contain NUL or other control characters")
    if len(directory) > MAX_DIRECTORY_CHARS:
        raise _refuse(DIRECTORY_FIELD, f"must be at most {MAX_DIRECTORY_CHARS} characters")
    parts = PurePosixPath(directory).parts
    if ".." in parts:
        raise _refuse(DIRECTORY_FIELD, 'must not contain ".."')
    if any(len(part.encode()) > MAX_NAME_BYTES for part in parts):
        raise _refuse(DIRECTORY_FIELD, f"each name in it must be at most {MAX_NAME_BYTES} bytes")
