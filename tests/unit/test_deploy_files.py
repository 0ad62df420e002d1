"""docker-compose.yml cannot run here (no Docker engine); these checks keep it honest by reading."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from deploy.broker import POM
from deploy.cli import SERVICES
from inlet.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_compose_runs_kafka_and_inlets_services_from_the_dockerfile() -> None:
    services = _compose()["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    for name in SERVICES:  # every service `inlet up` runs
        service = services[name]
        assert (ROOT / service["build"]["dockerfile"]).exists()
        assert service["command"] == [name]
        assert service["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
    # The registry and the consumers share one data dir: the secret key sealing pipeline DSNs.
    data_dir = services["registry"]["environment"]["INLET_DATA_DIR"]
    for name in ("registry", "consumers"):
        assert services[name]["environment"]["INLET_DATA_DIR"] == data_dir
        assert f"inlet-data:{data_dir}" in services[name]["volumes"]


def test_compose_kafka_matches_the_pinned_broker_version() -> None:
    pinned = re.search(r"<kafka.version>([^<]+)</kafka.version>", POM.read_text())
    assert pinned is not None
    image = _compose()["services"]["kafka"]["image"]
    assert image == f"apache/kafka:{pinned.group(1)}"


def test_compose_ports_are_inlets_default_ports() -> None:
    services = _compose()["services"]
    defaults = Settings()
    assert services["registry"]["ports"] == [f"{defaults.registry_port}:{defaults.registry_port}"]
    assert services["gateway"]["ports"] == [f"{defaults.gateway_port}:{defaults.gateway_port}"]


def test_compose_environment_uses_only_known_settings() -> None:
    known = {f"INLET_{name.upper()}" for name in Settings.__struct_fields__}
    for name in ("registry", "gateway"):
        env = _compose()["services"][name]["environment"]
        assert {k for k in env if k.startswith("INLET_")} <= known


def test_dockerfile_copies_every_package() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {name.split(".")[0] for name in project["tool"]["setuptools"]["packages"]}
    assert packages == {"inlet", "gateway", "registry", "consumers", "deploy"}
    for package in packages:
        assert f"COPY {package} ./{package}" in dockerfile
    # The build: setup.py declares the C extension, gcc compiles it.
    assert "setup.py" in dockerfile.split("RUN uv sync")[0]
    assert "gcc" in dockerfile
