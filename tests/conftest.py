"""Test tiers share one real Kafka per session.

Where it comes from, in order: ``KAFKA_BOOTSTRAP_SERVERS`` if set; else a local broker from the
Maven Central jars (Java + Maven), on ports the OS assigns; else testcontainers' Kafka where a
Docker engine answers. Under ``CI=true`` a test that needs Kafka fails when none can be had.
The local broker also has a SASL_PLAINTEXT listener for ``SASL_USERS`` (PLAIN and SCRAM-SHA-256),
for the tests of Inlet's clients authenticating.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.broker import LocalKafka, env_cache_dir
from inlet.settings import Settings

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
SASL_USERS = {"inlet": "inlet-sasl-test-password"}


def kafka_unavailable(reason: str) -> None:
    """Fail under CI (a missing Kafka is a broken build there), skip on a developer's laptop."""
    message = f"no Kafka for the tests: {reason}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def _testcontainers_kafka() -> Iterator[str] | None:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
    except Exception:
        return None
    from testcontainers.kafka import KafkaContainer

    def _run() -> Iterator[str]:
        with KafkaContainer("apache/kafka:4.1.1").with_kraft() as container:
            yield container.get_bootstrap_server()

    return _run()


@pytest.fixture(scope="session", autouse=True)
def default_data_dir_stays_empty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests keep state in their own temporary directories, never in the user's data dir.

    ``Settings()`` without ``data_dir`` means ``$XDG_DATA_HOME/inlet`` (else
    ``~/.local/share/inlet``): during the session that is an empty directory of its own, and a test
    that wrote there fails the session. (The Kafka jar cache, ``~/.cache/inlet``, is a cache and
    shared on purpose.)
    """
    base = tmp_path_factory.mktemp("xdg-data-home")
    previous = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(base)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["XDG_DATA_HOME"]
        else:
            os.environ["XDG_DATA_HOME"] = previous
    written = sorted(str(path.relative_to(base)) for path in base.rglob("*"))
    if written:
        pytest.fail(f"tests wrote into the default data dir instead of their tmp_path: {written}")


@dataclass(frozen=True)
class SessionKafka:
    bootstrap: str
    sasl_bootstrap: str | None = None  # only the local broker has the SASL listener


@pytest.fixture(scope="session")
def kafka_cluster() -> Iterator[SessionKafka]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield SessionKafka(configured)
        return
    if shutil.which("java") and (shutil.which("mvn") or any(env_cache_dir().glob("kafka-*/libs"))):
        broker = LocalKafka(
            data_dir=None,
            cache_dir=env_cache_dir(),
            first_port=None,
            quiet=True,
            sasl_users=SASL_USERS,
        )
        try:
            yield SessionKafka(broker.start(), broker.sasl_bootstrap_servers)
        finally:
            broker.stop()
        return
    container = _testcontainers_kafka()
    if container is None:
        kafka_unavailable("set KAFKA_BOOTSTRAP_SERVERS, install Java 17+ and Maven, or run Docker")
        return
    for bootstrap in container:
        yield SessionKafka(bootstrap)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_cluster: SessionKafka) -> str:
    return kafka_cluster.bootstrap


@pytest.fixture
def settings(kafka_bootstrap: str, tmp_path: Path) -> Settings:
    return Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        data_dir=str(tmp_path / "data"),
        topic_partitions=1,
    )


def postgres_unavailable(reason: str) -> None:
    """Like ``kafka_unavailable``: fail under CI, skip on a developer's laptop."""
    message = f"no PostgreSQL for the tests: {reason}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """``TEST_POSTGRES_DSN`` if set, else a throwaway server from the installed binaries."""
    configured = os.environ.get("TEST_POSTGRES_DSN")
    if configured:
        yield configured
        return
    from tests.postgres import LocalPostgres, postgres_bindir

    bindir = postgres_bindir()
    if bindir is None:
        postgres_unavailable("run scripts/ensure-postgres, or set TEST_POSTGRES_DSN")
        return
    server = LocalPostgres(bindir)
    try:
        yield server.start()
    finally:
        server.stop()
