from __future__ import annotations

from pathlib import Path

import pytest

from inlet.settings import SettingsError, load_settings
from inlet.tokens import ADMIN_PREFIX, ensure_admin_token, matches, new_token, token_hash


def test_settings_come_from_prefixed_environment_variables() -> None:
    settings = load_settings(
        {
            "INLET_GATEWAY_PORT": "9000",
            "INLET_PRODUCE_TIMEOUT_S": "2.5",
            "INLET_GATEWAY_FAST_PATH": "false",
            "KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
            "UNRELATED": "x",
        }
    )
    assert settings.gateway_port == 9000
    assert settings.produce_timeout_s == 2.5
    assert settings.gateway_fast_path is False
    assert settings.kafka_bootstrap_servers == "k1:9092,k2:9092"
    assert settings.gateway_url == "http://127.0.0.1:9000"


def test_a_typo_or_bad_value_is_an_error_not_a_silent_default() -> None:
    with pytest.raises(SettingsError, match="gatway_port"):
        load_settings({"INLET_GATWAY_PORT": "9000"})
    with pytest.raises(SettingsError, match="gateway_port"):
        load_settings({"INLET_GATEWAY_PORT": "not-a-port"})


def test_the_admin_token_never_shows_in_repr() -> None:
    settings = load_settings({"INLET_ADMIN_TOKEN": "inlet_admin_secret"})
    assert "inlet_admin_secret" not in repr(settings)
    assert "***" in repr(settings)


def test_admin_token_is_generated_once_and_kept(tmp_path: Path) -> None:
    token, created = ensure_admin_token(None, tmp_path)
    assert created
    assert token.startswith(ADMIN_PREFIX)
    assert (tmp_path / "admin-token").stat().st_mode & 0o777 == 0o600
    assert ensure_admin_token(None, tmp_path) == (token, False)
    assert ensure_admin_token("configured", tmp_path) == ("configured", False)


def test_tokens_are_random_and_checked_against_their_hash() -> None:
    first, second = new_token("p_"), new_token("p_")
    assert first != second
    assert len(first) - 2 >= 128 // 6  # at least 128 bits of base64 characters
    assert matches(first, token_hash(first))
    assert not matches(second, token_hash(first))


_SASL = {
    "KAFKA_BOOTSTRAP_SERVERS": "k1:9093",
    "INLET_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "INLET_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
    "INLET_KAFKA_SASL_USERNAME": "inlet",
    "INLET_KAFKA_SASL_PASSWORD": "sasl-secret-pw",
}


def test_kafka_security_settings_come_from_inlet_kafka_variables() -> None:
    settings = load_settings(
        {
            **_SASL,
            "INLET_KAFKA_SSL_CA_LOCATION": "/etc/inlet/ca.pem",
            "INLET_KAFKA_SSL_CERTIFICATE_LOCATION": "/etc/inlet/client.pem",
            "INLET_KAFKA_SSL_KEY_LOCATION": "/etc/inlet/client.key",
            "INLET_KAFKA_SSL_KEY_PASSWORD": "key-secret-pw",
        }
    )
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-256"
    assert (settings.kafka_sasl_username, settings.kafka_sasl_password) == (
        "inlet",
        "sasl-secret-pw",
    )
    assert settings.kafka_ssl_ca_location == "/etc/inlet/ca.pem"
    assert settings.kafka_ssl_key_password == "key-secret-pw"
    assert load_settings({}).kafka_security_protocol == "PLAINTEXT"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        # SASL needs all three; the message names what is missing.
        (
            {**_SASL, "INLET_KAFKA_SASL_MECHANISM": "", "INLET_KAFKA_SASL_PASSWORD": ""},
            "SASL_SSL needs INLET_KAFKA_SASL_MECHANISM, INLET_KAFKA_SASL_PASSWORD$",
        ),
        ({**_SASL, "INLET_KAFKA_SASL_USERNAME": ""}, "needs INLET_KAFKA_SASL_USERNAME$"),
        (
            {**_SASL, "INLET_KAFKA_SASL_MECHANISM": "GSSAPI"},
            r"kafka_sasl_mechanism.*one of: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
        ),
        (
            {**_SASL, "INLET_KAFKA_SECURITY_PROTOCOL": "TLS"},
            r"one of: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL",
        ),
        (
            {**_SASL, "INLET_KAFKA_SASL_MECHANISM": "scram-sha-256"},
            "Invalid enum value 'scram-sha-256'",
        ),
        # Credentials that would not be used look like security that is not there.
        (
            {"KAFKA_BOOTSTRAP_SERVERS": "k", "INLET_KAFKA_SASL_USERNAME": "inlet"},
            "INLET_KAFKA_SASL_USERNAME: only for .*SASL_PLAINTEXT or SASL_SSL .it is PLAINTEXT",
        ),
        (
            {
                **_SASL,
                "INLET_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "INLET_KAFKA_SSL_CA_LOCATION": "/ca.pem",
            },
            "INLET_KAFKA_SSL_CA_LOCATION: only for .*SSL or SASL_SSL .it is SASL_PLAINTEXT",
        ),
        (
            {**_SASL, "INLET_KAFKA_SSL_KEY_LOCATION": "/client.key"},
            "INLET_KAFKA_SSL_CERTIFICATE_LOCATION and INLET_KAFKA_SSL_KEY_LOCATION go together",
        ),
        (
            {**_SASL, "INLET_KAFKA_SSL_KEY_PASSWORD": "pw"},
            "INLET_KAFKA_SSL_KEY_PASSWORD needs INLET_KAFKA_SSL_KEY_LOCATION",
        ),
        # The local broker `inlet up` starts has no TLS or SASL listener.
        (
            {**_SASL, "KAFKA_BOOTSTRAP_SERVERS": ""},
            "is for an existing cluster .KAFKA_BOOTSTRAP_SERVERS.",
        ),
        ({"INLET_KAFKA_SASL_PASWORD": "x"}, "kafka_sasl_pasword"),  # a typo is an error
    ],
)
def test_kafka_security_combinations_are_checked_at_load(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environ)


def test_the_kafka_passwords_never_show_in_repr_str_or_rich() -> None:
    settings = load_settings(
        {
            **_SASL,
            "INLET_KAFKA_SSL_CERTIFICATE_LOCATION": "/etc/inlet/client.pem",
            "INLET_KAFKA_SSL_KEY_LOCATION": "/etc/inlet/client.key",
            "INLET_KAFKA_SSL_KEY_PASSWORD": "key-secret-pw",
            "INLET_ADMIN_TOKEN": "inlet_admin_secret",
        }
    )
    shown = [repr(settings), str(settings), f"{settings}", repr(settings.__rich_repr__())]
    for text in shown:
        for secret in ("sasl-secret-pw", "key-secret-pw", "inlet_admin_secret"):
            assert secret not in text
        assert "kafka_sasl_username='inlet'" in text or "('kafka_sasl_username', 'inlet')" in text
