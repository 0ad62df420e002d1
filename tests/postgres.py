"""A throwaway PostgreSQL server from the installed binaries, for the test session.

``initdb`` refuses to run as root, and tests run as root in containers and CI: then the server's
binaries run as the ``postgres`` OS user (the temporary directory is given to it). The server
dies with the test process (PDEATHSIG).

It listens on 127.0.0.1, on a port picked outside the kernel's ephemeral range: PostgreSQL binds
its own port (it cannot be handed a socket), and no outgoing connection of another process can
take such a port between the pick and that bind. Another server still could: then PostgreSQL
exits with "Address already in use", and the start tries again on a new port.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from inlet.process import die_with_parent, spare_ports

SUPERUSER = "postgres"
# The one role whose password the server checks (everyone else is trusted): for the tests of a
# wrong password.
PASSWORD_ROLE = "inlet_password_checked"
_SERVER_SETTINGS = (
    "listen_addresses=127.0.0.1",
    # Throwaway data: durability costs time and buys nothing here.
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=200",
)
_PORT_ATTEMPTS = 4
_PORT_TAKEN = b"Address already in use"


class PortTaken(RuntimeError):
    pass


def postgres_bindir() -> Path | None:
    """Where ``initdb`` and ``postgres`` are: ``pg_config --bindir``, Debian's layout, or PATH."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(out.stdout.strip()))
    # Debian: /usr/lib/postgresql/<major>/bin, newest first.
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(debian)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "postgres").is_file():
            return bindir
    return None


class LocalPostgres:
    def __init__(
        self, bindir: Path, *, pick_port: Callable[[], int] = lambda: spare_ports(1)[0]
    ) -> None:
        self._bindir = bindir
        self._pick_port = pick_port
        self._root = Path(tempfile.mkdtemp(prefix="inlet-pg-"))
        self._process: subprocess.Popen[bytes] | None = None
        # Root may not run the server: hand the directory to the postgres user.
        self._user = SUPERUSER if os.geteuid() == 0 else None
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self._root, entry.pw_uid, entry.pw_gid)

    def _initdb(self, data: Path) -> None:
        options = ["-A", "trust", "-U", SUPERUSER, "-E", "UTF8", "--locale=C", "--no-sync"]
        subprocess.run(
            [str(self._bindir / "initdb"), "-D", str(data), *options],
            user=self._user,
            cwd=self._root,
            check=True,
            capture_output=True,
        )
        hba = data / "pg_hba.conf"
        checked = f"host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n"
        hba.write_text(checked + hba.read_text())  # the first line that matches decides

    def start(self, timeout_s: float = 60.0) -> str:
        data = self._root / "data"
        self._initdb(data)
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            try:
                return self._start_on(data, self._pick_port(), timeout_s)
            except PortTaken:
                if attempt == _PORT_ATTEMPTS:
                    raise
        raise AssertionError  # the loop returns or raises

    def _start_on(self, data: Path, port: int, timeout_s: float) -> str:
        log_path = self._root / "server.log"
        log_start = log_path.stat().st_size if log_path.exists() else 0
        log = log_path.open("ab")
        command = [str(self._bindir / "postgres"), "-D", str(data), "-p", str(port)]
        command += ["-k", str(self._root)]
        for setting in _SERVER_SETTINGS:
            command += ["-c", setting]
        self._process = subprocess.Popen(
            command,
            user=self._user,
            cwd=self._root,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, async-signal-safe
        )
        log.close()
        dsn = f"postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres"
        try:
            self._wait_ready(dsn, data, timeout_s)
        except RuntimeError:
            with log_path.open("rb") as lines:
                lines.seek(log_start)
                if _PORT_TAKEN in lines.read():
                    raise PortTaken(f"port {port} taken") from None
            raise
        return dsn

    def _wait_ready(self, dsn: str, data: Path, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.log_tail()}")
            try:
                with psycopg.connect(dsn, connect_timeout=2) as conn:
                    row = conn.execute("SHOW data_directory").fetchone()
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
                continue
            # Another server that took the port first would answer too, until ours exits.
            if row is not None and Path(row[0]).resolve() == data.resolve():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"another server answers on {dsn}")
            time.sleep(0.1)

    @property
    def pid(self) -> int | None:
        """The postmaster's process id (its children are the server's other processes)."""
        return None if self._process is None else self._process.pid

    def log_tail(self) -> str:
        path = self._root / "server.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            # SIGINT is the "fast" shutdown: it does not wait for clients to disconnect.
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
        with contextlib.suppress(OSError):
            shutil.rmtree(self._root)
