"""Kafka security settings reach every client builder: librdkafka's configs, aiokafka's kwargs."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from inlet.kafka import (
    KafkaNotConfigured,
    aiokafka_config,
    client_config,
    printable_config,
    producer_config,
)
from inlet.settings import Settings

BOOTSTRAP = "k1:9093,k2:9093"
KEY_PASSWORD = "key-pass-do-not-print"
SASL_PASSWORD = "sasl-pass-do-not-print"


def _pem_files(directory: Path) -> dict[str, str]:
    """A CA, and a client certificate it signed with the key encrypted: what mutual TLS reads."""
    now = datetime.datetime.now(datetime.UTC)

    def certificate(
        name: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer: Any, ca: bool
    ) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(signer, hashes.SHA256())
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    ca = certificate("test-ca", ca_key, ca_name, ca_key, ca=True)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = certificate("inlet", client_key, ca_name, ca_key, ca=False)
    files = {
        "ca": (ca.public_bytes(serialization.Encoding.PEM)),
        "cert": client.public_bytes(serialization.Encoding.PEM),
        "key": client_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(KEY_PASSWORD.encode()),
        ),
    }
    paths = {}
    for name, content in files.items():
        path = directory / f"{name}.pem"
        path.write_bytes(content)
        paths[name] = str(path)
    return paths


@pytest.fixture
def pem(tmp_path: Path) -> dict[str, str]:
    return _pem_files(tmp_path)


def _sasl_ssl(pem: dict[str, str], **changes: Any) -> Settings:
    fields: dict[str, Any] = {
        "kafka_bootstrap_servers": BOOTSTRAP,
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": "inlet",
        "kafka_sasl_password": SASL_PASSWORD,
        "kafka_ssl_ca_location": pem["ca"],
        "kafka_ssl_certificate_location": pem["cert"],
        "kafka_ssl_key_location": pem["key"],
        "kafka_ssl_key_password": KEY_PASSWORD,
    }
    return Settings(**{**fields, **changes})


def test_librdkafka_clients_get_every_security_setting(pem: dict[str, str]) -> None:
    settings = _sasl_ssl(pem)
    expected = {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "inlet",
        "sasl.password": SASL_PASSWORD,
        "ssl.ca.location": pem["ca"],
        "ssl.certificate.location": pem["cert"],
        "ssl.key.location": pem["key"],
        "ssl.key.password": KEY_PASSWORD,
    }
    consumer = client_config(settings, client_id="c", **{"group.id": "g"})
    producer = producer_config(settings, client_id="p")
    for config in (consumer, producer):
        assert {k: config[k] for k in expected} == expected
        assert config["bootstrap.servers"] == BOOTSTRAP
    assert consumer["group.id"] == "g"
    assert producer["acks"] == "all"


def test_plaintext_is_the_default_and_sets_no_credentials() -> None:
    config = client_config(Settings(kafka_bootstrap_servers=BOOTSTRAP), client_id="c")
    assert config["security.protocol"] == "PLAINTEXT"
    assert not [k for k in config if k.startswith(("sasl.", "ssl."))]
    kwargs = aiokafka_config(Settings(kafka_bootstrap_servers=BOOTSTRAP), client_id="c")
    assert kwargs == {
        "bootstrap_servers": BOOTSTRAP,
        "client_id": "c",
        "security_protocol": "PLAINTEXT",
    }


def test_no_client_may_override_the_security_settings() -> None:
    settings = Settings(kafka_bootstrap_servers=BOOTSTRAP)
    for key in ("security.protocol", "sasl.mechanisms", "ssl.endpoint.identification.algorithm"):
        with pytest.raises(ValueError, match=key):
            client_config(settings, client_id="c", **{key: "none"})
        with pytest.raises(ValueError, match=key):
            producer_config(settings, client_id="c", **{key: "none"})


def test_aiokafka_gets_the_sasl_credentials_and_an_ssl_context(pem: dict[str, str]) -> None:
    kwargs = aiokafka_config(_sasl_ssl(pem), client_id="reader")
    context = kwargs.pop("ssl_context")
    assert kwargs == {
        "bootstrap_servers": BOOTSTRAP,
        "client_id": "reader",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "inlet",
        "sasl_plain_password": SASL_PASSWORD,
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    # The configured CA is the one trusted, not (only) the system's.
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "test-ca"),),)]


def test_aiokafka_over_ssl_without_a_ca_trusts_the_system_cas() -> None:
    settings = Settings(kafka_bootstrap_servers=BOOTSTRAP, kafka_security_protocol="SSL")
    context = aiokafka_config(settings, client_id="reader")["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_aiokafka_without_tls_gets_no_ssl_context() -> None:
    settings = Settings(
        kafka_bootstrap_servers=BOOTSTRAP,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="inlet",
        kafka_sasl_password=SASL_PASSWORD,
    )
    kwargs = aiokafka_config(settings, client_id="reader")
    assert "ssl_context" not in kwargs
    assert kwargs["sasl_mechanism"] == "PLAIN"
    assert kwargs["sasl_plain_password"] == SASL_PASSWORD


def test_a_wrong_key_password_is_a_clear_error(pem: dict[str, str]) -> None:
    with pytest.raises(KafkaNotConfigured, match="INLET_KAFKA_SSL_"):
        aiokafka_config(_sasl_ssl(pem, kafka_ssl_key_password="wrong"), client_id="reader")
    with pytest.raises(KafkaNotConfigured, match="INLET_KAFKA_SSL_"):
        aiokafka_config(_sasl_ssl(pem, kafka_ssl_ca_location="/nonexistent.pem"), client_id="r")


async def test_aiokafkas_clients_take_the_translated_kwargs(pem: dict[str, str]) -> None:
    # Constructing checks the parameter names and aiokafka's own rules (SSL needs a context,
    # SASL a supported mechanism and credentials) without connecting: that happens in start().
    kwargs = aiokafka_config(_sasl_ssl(pem), client_id="reader")
    consumer = AIOKafkaConsumer(isolation_level="read_committed", **kwargs)
    producer = AIOKafkaProducer(**kwargs)
    try:
        assert consumer._client._security_protocol == "SASL_SSL"
        assert consumer._client._sasl_mechanism == "SCRAM-SHA-512"
        assert producer.client._ssl_context is kwargs["ssl_context"]
    finally:
        await consumer.stop()
        await producer.stop()


def test_printable_config_masks_the_passwords(pem: dict[str, str]) -> None:
    shown = printable_config(producer_config(_sasl_ssl(pem), client_id="p"))
    assert SASL_PASSWORD not in repr(shown)
    assert KEY_PASSWORD not in repr(shown)
    assert shown["sasl.password"] == shown["ssl.key.password"] == "***"
    assert shown["sasl.username"] == "inlet"
    assert "logger" not in shown
