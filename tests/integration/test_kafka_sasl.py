"""Inlet's clients authenticate with the settings alone: librdkafka's and aiokafka's, over SASL.

Against the session broker's SASL_PLAINTEXT listener (PLAIN and SCRAM-SHA-256): the state log
(admin, transactional producer, aiokafka reader) and the gateway's producer work through it, and
a wrong password is refused by both client libraries, so the listener really checks.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from inlet.kafka import AsyncProducer, OutgoingRecord, client_config, producer_config
from inlet.settings import SaslMechanism, Settings
from inlet.statelog.fold import Record
from inlet.statelog.kafka import KafkaStateLog, LogReader
from tests.conftest import SASL_USERS, SessionKafka, kafka_unavailable

pytestmark = pytest.mark.kafka

USER, PASSWORD = next(iter(SASL_USERS.items()))


class Seen:
    """A fold that keeps the last value per key."""

    def __init__(self) -> None:
        self.values: dict[bytes, bytes | None] = {}

    def apply(self, topic: str, key: bytes, value: bytes | None) -> None:
        self.values[key] = value


def _sasl_settings(
    kafka_cluster: SessionKafka, tmp_path: Path, mechanism: SaslMechanism, password: str = PASSWORD
) -> Settings:
    if kafka_cluster.sasl_bootstrap is None:
        kafka_unavailable("the SASL tests need the local test broker's SASL listener")
    return Settings(
        kafka_bootstrap_servers=kafka_cluster.sasl_bootstrap,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username=USER,
        kafka_sasl_password=password,
        data_dir=str(tmp_path / "data"),
    )


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
async def test_the_state_log_and_the_producer_work_over_sasl(
    kafka_cluster: SessionKafka, tmp_path: Path, mechanism: SaslMechanism
) -> None:
    settings = _sasl_settings(kafka_cluster, tmp_path, mechanism)
    topic = f"_test_sasl_{uuid.uuid4().hex[:8]}"
    seen = Seen()
    state_log = KafkaStateLog(settings, seen, [topic])  # creates the topic with an AdminClient
    await state_log.start()
    try:
        # A transactional librdkafka write, folded by the aiokafka reader before transact returns.
        await state_log.transact(lambda: ([Record(topic, b"written", b"by-the-log")], None))
        assert seen.values == {b"written": b"by-the-log"}

        # The gateway's producer (producer_config) through the same listener.
        producer = AsyncProducer(producer_config(settings, client_id="sasl-test"))
        try:
            sent = await producer.produce_batch([OutgoingRecord(topic, b"by-the-producer", b"p")])
            assert sent == 1
        finally:
            await asyncio.to_thread(producer.close)
        await state_log.sync()
        assert seen.values == {b"written": b"by-the-log", b"p": b"by-the-producer"}
    finally:
        await state_log.stop()


async def test_a_wrong_password_is_refused_by_both_client_libraries(
    kafka_cluster: SessionKafka, tmp_path: Path
) -> None:
    wrong = _sasl_settings(kafka_cluster, tmp_path, "SCRAM-SHA-256", password="not-the-password")
    reader = LogReader(wrong, Seen(), ["_inlet_absent"], name="sasl-test")
    try:
        with pytest.raises(KafkaConnectionError):  # aiokafka: SaslAuthenticationFailed, logged
            await reader.start(timeout_s=10)
    finally:
        await reader.stop()
    admin = AdminClient(client_config(wrong, client_id="sasl-test"))
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=3)
    # ... while the right password, with the same everything else, gets metadata.
    right = _sasl_settings(kafka_cluster, tmp_path, "SCRAM-SHA-256")
    assert AdminClient(client_config(right, client_id="sasl-test")).list_topics(timeout=10).brokers
