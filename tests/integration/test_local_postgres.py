"""tests/postgres.py: a start whose picked port another process took goes on with a new port."""

from __future__ import annotations

import psycopg

from inlet.process import listening_socket, spare_ports
from tests.conftest import postgres_unavailable
from tests.postgres import LocalPostgres, postgres_bindir


def test_a_start_whose_picked_port_is_taken_tries_a_new_port() -> None:
    bindir = postgres_bindir()
    if bindir is None:
        postgres_unavailable("run scripts/ensure-postgres")
        return
    with listening_socket() as occupied:  # listens, never answers: not a PostgreSQL server
        taken = occupied.getsockname()[1]
        picked: list[int] = []

        def pick() -> int:
            picked.append(taken if not picked else spare_ports(1)[0])
            return picked[-1]

        server = LocalPostgres(bindir, pick_port=pick)
        try:
            dsn = server.start()
            assert len(picked) == 2, picked
            assert f":{picked[1]}/" in dsn
            with psycopg.connect(dsn, connect_timeout=10) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        finally:
            server.stop()
