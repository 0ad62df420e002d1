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
