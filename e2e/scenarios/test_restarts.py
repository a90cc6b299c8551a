"""The operator killed with SIGKILL at a random moment of a rollout, and started again, reaches the
same outcome: all progress lives in status, so nothing is lost and nothing is done twice.

The moment is drawn from a seeded generator; the seed is printed, and E2E_KILL_SEED replays it.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from e2e.fixtures import given, then, when
from e2e.fixtures.operator import OperatorProcess
from e2e.fixtures.world import Kubectl, eventually

pytestmark = pytest.mark.cluster

SEED = int(os.environ.get("E2E_KILL_SEED", str(int(time.time()))))
print(f"kill moments drawn with E2E_KILL_SEED={SEED}")


canary = given.short_canary


# Blue-green and shadow resuming from status after a crash are covered by test_leader_kills, where
# the standby takes them over from status 20 times; here the lone operator restarts cold.
CASES: list[tuple[str, Callable[[dict[str, Any]], None], dict[str, str], str, float]] = [
    # example, change, env of the new version, expected outcome, window (s) to kill in
    ("canary-gateway-api", canary, {}, "Promoted", 60),
    ("canary-gateway-api", canary, {"FAULT_ERROR_RATE": "0.3"}, "RolledBack", 20),
]


@pytest.mark.parametrize("example, change, env, outcome, window", [
    # A healthy canary resumed after a kill is also what test_leader_kills shows (the standby
    # resumes from status): CI runs the faulty case, `make e2e-long` both.
    pytest.param(*CASES[0], id="canary-healthy", marks=pytest.mark.long),
    pytest.param(*CASES[1], id="canary-faulty"),
])
def test_killed_operator_reaches_the_same_outcome(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess, example: str,
        change: Callable[[dict[str, Any]], None], env: dict[str, str], outcome: str, window: float,
        request: pytest.FixtureRequest) -> None:
    moment = random.Random(f"{SEED}-{request.node.name}").uniform(1.0, window)
    name = given.model_deployment(kubectl, namespace, given.example(example), rps=80, change=change)
    stable = then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)["stableRevision"]
    when.new_version(kubectl, namespace, name, "9.9.9", **env)
    candidate = then.phase_becomes(kubectl, namespace, name, "Progressing", 60)["canaryRevision"]
    started = time.monotonic()
    eventually(lambda: time.monotonic() - started >= moment, moment + 5, interval=0.2, what="the kill moment")
    before = then.status(kubectl, namespace, name)
    operator.restart_after_kill()

    final_phase = "Succeeded" if outcome == "Promoted" else "RolledBack"
    done = then.phase_becomes(kubectl, namespace, name, final_phase, 300)
    assert done["history"][-1]["outcome"] == outcome, (moment, before)
    assert done["history"][-1]["revision"] == candidate
    assert sum(1 for h in done["history"] if h["revision"] == candidate) == 1, "the rollout ended twice"
    expected_stable = candidate if outcome == "Promoted" else stable
    assert done["stableRevision"] == expected_stable
    eventually(lambda: {r for r, n in then.deployments(kubectl, namespace, name).items() if n > 0}
               == {expected_stable}, 90, what="only the outcome's revision runs")
