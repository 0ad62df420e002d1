"""Inlet's settings: one typed object, read from ``INLET_*`` environment variables.

``KAFKA_BOOTSTRAP_SERVERS`` (no prefix, as Kafka tooling spells it) points Inlet at an existing
cluster; when it is unset, ``inlet up`` starts a local broker. Secrets (the admin token, an
external schema registry's credentials, given apart or in its URL) are never part of ``repr`` or
logs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import msgspec

_PREFIX = "INLET_"


def _default_data_dir() -> str:
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return str(base / "inlet")


def _default_cache_dir() -> str:
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return str(base / "inlet")


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Where local state lives: the local broker's data, the generated admin token.
    data_dir: str = msgspec.field(default_factory=_default_data_dir)
    # Where the Kafka jars resolved from Maven Central are cached.
    cache_dir: str = msgspec.field(default_factory=_default_cache_dir)
    # An existing cluster; None means "start a local broker" (inlet up / inlet kafka).
    kafka_bootstrap_servers: str | None = None
    # Local broker: how many nodes (1, or 3 for the fault tests) and the first client port.
    kafka_nodes: int = 1
    kafka_port: int = 9092
    kafka_heap: str = "512m"
    # Services.
    host: str = "127.0.0.1"
    registry_port: int = 8081
    gateway_port: int = 8080
    gateway_workers: int = 2  # gateway processes sharing the port (measured: see bench/README.md)
    # What ingest URLs are built from; defaults to http://<host>:<gateway_port>.
    public_gateway_url: str | None = None
    admin_token: str | None = None
    # Seals secrets kept at rest (pipeline DSNs): URL-safe base64 of 32 bytes (inlet/sealing.py);
    # by default generated once and kept in the data dir.
    secret_key: str | None = None
    # New connector topics.
    topic_partitions: int = 3
    topic_replication_factor: int = -1  # -1: the broker's default.replication.factor
    # Another Confluent-compatible registry instead of Inlet's own (registry/remote_schemas.py),
    # and its Basic-auth credentials as Confluent's clients spell them: "user:password".
    schema_registry_url: str | None = None
    schema_registry_basic_auth: str | None = None
    # Gateway limits and deadlines.
    produce_timeout_s: float = 10.0
    max_body_bytes: int = 10 * 1024 * 1024  # after decompression
    max_record_bytes: int = 1024 * 1024
    max_errors_listed: int = 100
    # The gateway's plain-ASGI hot path for ingest requests (gateway/_fast_path.py); off, Litestar
    # answers them all, the same way, more slowly (for comparison: bench/README.md).
    gateway_fast_path: bool = True
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    def __repr__(self) -> str:
        fields = {f: getattr(self, f) for f in self.__struct_fields__}
        for secret in ("admin_token", "secret_key", "schema_registry_basic_auth"):
            if fields[secret] is not None:
                fields[secret] = "***"
        if fields["schema_registry_url"] is not None:
            fields["schema_registry_url"] = without_userinfo(fields["schema_registry_url"])
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in fields.items()) + ")"

    @property
    def gateway_url(self) -> str:
        return self.public_gateway_url or f"http://{self.host}:{self.gateway_port}"

    @property
    def registry_url(self) -> str:
        return f"http://{self.host}:{self.registry_port}"


def without_userinfo(url: str) -> str:
    """``url`` without the ``user:password@`` it may carry: what logs and messages may show."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``environ`` (default: the process environment).

    Unknown ``INLET_*`` variables are an error, so a typo does not silently fall back to a default.
    """
    env = os.environ if environ is None else environ
    raw: dict[str, str] = {
        key[len(_PREFIX) :].lower(): value
        for key, value in env.items()
        if key.startswith(_PREFIX) and value != ""
    }
    if env.get("KAFKA_BOOTSTRAP_SERVERS"):
        raw["kafka_bootstrap_servers"] = env["KAFKA_BOOTSTRAP_SERVERS"]
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"bad setting: {exc} (variables are INLET_<NAME>)") from exc


class SettingsError(Exception):
    pass
