"""Inlet's settings: one typed object, read from ``INLET_*`` environment variables.

``KAFKA_BOOTSTRAP_SERVERS`` (no prefix, as Kafka tooling spells it) points Inlet at an existing
cluster; when it is unset, ``inlet up`` starts a local broker. How every client reaches that
cluster (TLS, SASL) is ``INLET_KAFKA_*``: the librdkafka property names, dots spelled as
underscores, under Inlet's prefix so that a typo in one is an error like any other unknown
``INLET_*`` variable (the bare ``KAFKA_*`` names are shared with Kafka's own scripts and images,
so unknown ones cannot be refused). Secrets (the admin token, the Kafka passwords, an external
schema registry's credentials, given apart or in its URL) are never part of ``repr`` or logs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit, urlunsplit

import msgspec

from inlet.logs import LogFormat
from inlet.sink_rules import parse_sink_hosts

_PREFIX = "INLET_"

Positive = msgspec.Meta(gt=0)

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

_SECRETS = (
    "admin_token",
    "secret_key",
    "schema_registry_basic_auth",
    "kafka_sasl_password",
    "kafka_ssl_key_password",
)


class SettingsError(Exception):
    pass


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
    # How every client (librdkafka's and aiokafka's) authenticates to that cluster; applied in
    # one place, inlet/kafka.py:client_config. Checked together in __post_init__.
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_ssl_ca_location: str | None = None  # PEM; unset: the system's CAs
    kafka_ssl_certificate_location: str | None = None  # client certificate (PEM), for mutual TLS
    kafka_ssl_key_location: str | None = None
    kafka_ssl_key_password: str | None = None
    # Local broker: how many nodes (1, or 3 for the fault tests) and the first client port.
    kafka_nodes: int = 1
    kafka_port: int = 9092
    kafka_heap: str = "512m"
    # Services.
    host: str = "127.0.0.1"
    registry_port: int = 8081
    gateway_port: int = 8080
    gateway_workers: int = 2  # gateway processes sharing the port (measured: see bench/README.md)
    # A listening socket the server is handed, by file descriptor, instead of binding its port
    # itself: whoever started it bound the port, so no other process could take it in between
    # (deploy/_listen.py). It must be bound to the port setting above, which URLs are built from.
    registry_listen_fd: int | None = None
    gateway_listen_fd: int | None = None
    # How long a new server worker process may take to answer the server's first health check
    # (uvicorn's timeout_worker_healthcheck; it kills and replaces a worker that takes longer).
    # Measured on 2 cores beside a starting broker, from spawn to that answer: 1.3-1.8 s with
    # both cores busy, 3.1-4.3 s with 8 busy loops (to a finished start-up: 5-6 s and 8-13 s).
    # uvicorn's 5 s killed and replaced a worker 5.7 s after its spawn at the latter load; the
    # issue saw such restarts over and over at load 8-20. A generous bound costs nothing: the
    # server notices a worker's death at once, whatever this is (deploy/_serve.py).
    worker_startup_timeout_s: int = 60
    # Every HTTP server Inlet runs (each gateway worker process, the registry): how long a client
    # may hold a connection without progress, and how many connections one process serves; the
    # rules are in deploy/_connections.py. The body's: http_body_timeout_s for it to start coming,
    # then one more second per http_body_min_rate bytes (a steady sender at that rate is never cut).
    http_keep_alive_timeout_s: Annotated[int, Positive] = 5
    http_head_timeout_s: Annotated[float, Positive] = 10.0
    http_body_timeout_s: Annotated[float, Positive] = 10.0
    http_body_min_rate: Annotated[int, Positive] = 32 * 1024  # bytes/s
    http_max_connections: Annotated[int, Positive] = 1024  # per process; lowered to fit its fds
    http_max_head_bytes: Annotated[int, Positive] = 64 * 1024  # a request's target and header lines
    consumers_metrics_port: int = 8082  # the consumers process's /metrics (0: the system picks)
    # What ingest URLs are built from; defaults to http://<host>:<gateway_port>.
    public_gateway_url: str | None = None
    admin_token: str | None = None
    # Seals secrets kept at rest (pipeline DSNs): URL-safe base64 of 32 bytes (inlet/sealing.py);
    # by default generated once and kept in the data dir.
    secret_key: str | None = None
    # How long a console sign-in lasts (registry/console/session.py): from the sign-in, not
    # renewed by use, so a session left open on a shared machine ends.
    console_session_hours: Annotated[int, Positive] = 12
    # New connector topics.
    topic_partitions: int = 3
    topic_replication_factor: int = -1  # -1: the broker's default.replication.factor
    # Another Confluent-compatible registry instead of Inlet's own (registry/remote_schemas.py),
    # and its Basic-auth credentials as Confluent's clients spell them: "user:password".
    schema_registry_url: str | None = None
    schema_registry_basic_auth: str | None = None
    # Where files pipelines may write (relative directories are below it); None: <data_dir>/files.
    files_root: str | None = None
    # The hosts PostgreSQL sinks may reach, comma-separated (inlet/sink_rules.py); None: any.
    sink_hosts: str | None = None
    # Gateway limits and deadlines.
    produce_timeout_s: float = 10.0
    max_body_bytes: int = 10 * 1024 * 1024  # after decompression
    max_record_bytes: int = 1024 * 1024
    # Records one request may hold: counted while parsing, the body refused (413) at the first
    # record over it. A real webhook batch is far smaller; it bounds a request's work.
    max_records_per_request: int = 100_000
    # The largest record batch Inlet hands to Kafka, as Kafka counts it: the producers'
    # `message.max.bytes` and the `max.message.bytes` of the topics Inlet creates, one number so
    # the gateway can size every record before producing any (inlet/record_size.py).
    # librdkafka's default; Kafka's own topic default (1,048,588) is larger.
    max_message_bytes: int = 1_000_000
    max_errors_listed: int = 100
    # Each ingest request's records in a Kafka transaction (the requests of a few milliseconds
    # share one), so read_committed consumers see a request whole or not at all. Off by default:
    # measured, it cost 35-40% of scenario (a)'s records/s and more of single-record requests
    # (README "Transactions").
    gateway_transactions: bool = False
    # The gateway's plain-ASGI hot path for ingest requests (gateway/_fast_path.py); off, Litestar
    # answers them all, the same way, more slowly (for comparison: bench/README.md).
    gateway_fast_path: bool = True
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # "auto": readable lines when stderr is a terminal, JSON lines otherwise (inlet/logs.py).
    log_format: LogFormat = "auto"
    # A state record no fold can read (bad key, bad JSON, wrong shape) is counted and skipped with
    # a warning; with strict_state it stops the state reader instead (readiness then says 503).
    strict_state: bool = False

    def __post_init__(self) -> None:
        problems = _kafka_security_problems(self)
        if self.sink_hosts is not None:
            try:
                parse_sink_hosts(self.sink_hosts)
            except ValueError as exc:
                problems.append(str(exc))
        if problems:
            raise SettingsError("; ".join(problems))

    def _shown(self) -> dict[str, Any]:
        """The fields as ``repr`` (and rich's pretty printer) may show them: secrets masked."""
        fields = {f: getattr(self, f) for f in self.__struct_fields__}
        for secret in _SECRETS:
            if fields[secret] is not None:
                fields[secret] = "***"
        if fields["schema_registry_url"] is not None:
            fields["schema_registry_url"] = without_userinfo(fields["schema_registry_url"])
        return fields

    def __repr__(self) -> str:
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in self._shown().items()) + ")"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        # msgspec's own __rich_repr__ lists the raw fields (rich tracebacks with locals use it).
        return list(self._shown().items())

    @property
    def files_root_dir(self) -> str:
        return self.files_root or str(Path(self.data_dir) / "files")

    @property
    def gateway_url(self) -> str:
        return self.public_gateway_url or f"http://{self.host}:{self.gateway_port}"

    @property
    def registry_url(self) -> str:
        return f"http://{self.host}:{self.registry_port}"


def _variable(field: str) -> str:
    return _PREFIX + field.upper()


def _kafka_security_problems(settings: Settings) -> list[str]:
    """What is wrong with the Kafka security settings taken together (empty: nothing)."""
    protocol = settings.kafka_security_protocol
    sasl = {
        "kafka_sasl_mechanism": settings.kafka_sasl_mechanism,
        "kafka_sasl_username": settings.kafka_sasl_username,
        "kafka_sasl_password": settings.kafka_sasl_password,
    }
    ssl = {
        "kafka_ssl_ca_location": settings.kafka_ssl_ca_location,
        "kafka_ssl_certificate_location": settings.kafka_ssl_certificate_location,
        "kafka_ssl_key_location": settings.kafka_ssl_key_location,
        "kafka_ssl_key_password": settings.kafka_ssl_key_password,
    }
    problems = []
    if protocol.startswith("SASL_"):
        missing = [_variable(f) for f, value in sasl.items() if value is None]
        if missing:
            problems.append(f"INLET_KAFKA_SECURITY_PROTOCOL={protocol} needs {', '.join(missing)}")
    else:
        # Set but unused would look like authentication that is not happening.
        given = [_variable(f) for f, value in sasl.items() if value is not None]
        if given:
            problems.append(
                f"{', '.join(given)}: only for INLET_KAFKA_SECURITY_PROTOCOL="
                f"SASL_PLAINTEXT or SASL_SSL (it is {protocol})"
            )
    if protocol in ("SSL", "SASL_SSL"):
        cert, key = settings.kafka_ssl_certificate_location, settings.kafka_ssl_key_location
        if (cert is None) != (key is None):
            problems.append(
                "INLET_KAFKA_SSL_CERTIFICATE_LOCATION and INLET_KAFKA_SSL_KEY_LOCATION go "
                "together (a client certificate and its private key)"
            )
        if settings.kafka_ssl_key_password is not None and key is None:
            problems.append("INLET_KAFKA_SSL_KEY_PASSWORD needs INLET_KAFKA_SSL_KEY_LOCATION")
    else:
        given = [_variable(f) for f, value in ssl.items() if value is not None]
        if given:
            problems.append(
                f"{', '.join(given)}: only for INLET_KAFKA_SECURITY_PROTOCOL="
                f"SSL or SASL_SSL (it is {protocol})"
            )
    if protocol != "PLAINTEXT" and not settings.kafka_bootstrap_servers:
        problems.append(
            f"INLET_KAFKA_SECURITY_PROTOCOL={protocol} is for an existing cluster "
            "(KAFKA_BOOTSTRAP_SERVERS); the local broker Inlet starts speaks PLAINTEXT"
        )
    return problems


def _choices(exc: msgspec.ValidationError) -> str:
    """`` (one of: ...)`` when ``exc`` is about a field that takes a fixed set of values."""
    where = re.search(r"at `\$\.(\w+)`", str(exc))
    if where is None:
        return ""
    hint = get_type_hints(Settings).get(where.group(1))
    literals = [hint] if get_origin(hint) is Literal else list(get_args(hint))
    choices = [v for lit in literals if get_origin(lit) is Literal for v in get_args(lit)]
    return f" (one of: {', '.join(choices)})" if choices else ""


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
        raise SettingsError(
            f"bad setting: {exc}{_choices(exc)} (variables are INLET_<NAME>)"
        ) from exc
