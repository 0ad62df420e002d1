"""The chaos suite's short version: the three cheapest scenarios, each once, on one stack.

The whole suite is ``make chaos`` (chaos/); here a broker kill -9 and restart, a broker SIGSTOP and
a gateway worker kill -9 run against real processes (a local broker, ``inlet registry``, ``inlet
gateway`` with 2 workers) while writers send with retries, and every run must keep the invariants:
no acknowledged record lost, no phantom, no duplicate a retry does not explain, no 5xx but 503.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from chaos.run import run_scenario
from chaos.scenarios import SCENARIOS, Scenario
from chaos.stack import Stack
from chaos.writers import Load
from deploy.broker import env_cache_dir
from tests.conftest import kafka_unavailable

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.timeout(300)]

QUICK = [s for s in SCENARIOS if s.quick]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not shutil.which("java") or not (
        shutil.which("mvn") or any(env_cache_dir().glob("kafka-*/libs"))
    ):
        kafka_unavailable("the chaos scenarios run their own broker: Java 17+ and Maven needed")
    stack = Stack(tmp_path_factory.mktemp("chaos"))
    try:
        yield stack.start()
    finally:
        stack.stop()


@pytest.mark.parametrize("scenario", QUICK, ids=[s.name for s in QUICK])
async def test_no_acknowledged_record_is_lost_or_doubled(stack: Stack, scenario: Scenario) -> None:
    verdict = await run_scenario(stack, scenario, 1, Load())
    summary = verdict.as_json()
    assert verdict.acked > 0, summary
    assert verdict.lost == 0, summary
    assert verdict.phantom == 0, summary
    assert verdict.dups_unexplained == 0, summary
    assert verdict.non_503_5xx == 0, summary
    # The fault was seen and got over: answers came back after it.
    assert verdict.recovery_to_first_200_s is not None, summary
