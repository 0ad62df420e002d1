"""deploy/observability/: the alert rules pass promtool, and every metric they name exists."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from consumers.metrics import ConsumerMetrics
from gateway.metrics import GatewayMetrics
from inlet.model.pipelines import PartitionStatus
from registry.metrics import RegistryMetrics
from tests.conftest import IN_CI

OBSERVABILITY = Path(__file__).parents[2] / "deploy" / "observability"
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def _exposed(registry: CollectorRegistry) -> set[str]:
    """The sample names a registry's metrics are scraped under."""
    return {
        family.name + suffix
        for family in registry.collect()
        for suffix in _SUFFIXES.get(family.type, ("",))
    }


def _exported() -> set[str]:
    consumers = ConsumerMetrics()
    consumers.pipelines.publish(
        [PartitionStatus(pipeline_id="p", partition=0, updated_at=datetime.now(UTC))]
    )
    registries = [GatewayMetrics().registry, RegistryMetrics().registry, consumers.registry]
    return {name for registry in registries for name in _exposed(registry)}


def _referenced(text: str) -> set[str]:
    return set(re.findall(r"\binlet_\w+", text))


@pytest.mark.parametrize("name", ["alerts.yml", "grafana-dashboard.json"])
def test_every_metric_named_is_exported(name: str) -> None:
    text = (OBSERVABILITY / name).read_text()
    if name.endswith(".json"):
        dashboard = json.loads(text)
        text = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    referenced = _referenced(text)
    assert referenced, "the file names no metric"
    assert referenced <= _exported(), referenced - _exported()


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool is missing: scripts/ensure-promtool installs it (make test runs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.mark.parametrize(
    "command", [["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]]
)
def test_promtool_accepts_the_rules(command: list[str]) -> None:
    done = subprocess.run(
        [_promtool(), *command], cwd=OBSERVABILITY, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
