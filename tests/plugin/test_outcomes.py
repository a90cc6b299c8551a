"""When `status --timeout` stops waiting, and with which exit code."""

from __future__ import annotations

from typing import Any

import pytest

from modelrollout.api import resources
from modelrollout.kubectl_plugin import outcomes

SPEC: dict[str, Any] = {
    "model": {"name": "m", "version": "1"},
    "template": {"spec": {"containers": [
        {"name": "server", "image": "x", "ports": [{"name": "http", "containerPort": 8080}]}]}},
    "traffic": {"provider": "ReplicaRatio"},
    "strategy": {"type": "Canary", "canary": {"steps": [{"setWeight": 50}]}},
}


def body(generation: int, observed: int | None, phase: str | None, stalled: str | None = None) -> Any:
    status: dict[str, Any] = {}
    if observed is not None:
        status["observedGeneration"] = observed
    if phase is not None:
        status["phase"] = phase
    if stalled is not None:
        status["conditions"] = [{"type": "Stalled", "status": stalled, "reason": "AnalysisFailed",
                                 "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    return resources.ModelDeployment.model_validate(
        {"metadata": {"name": "m", "generation": generation}, "spec": SPEC, "status": status})


@pytest.mark.parametrize("generation, observed, phase, stalled, expected", [
    (3, 3, "Succeeded", None, outcomes.Exit.SUCCEEDED),
    (4, 3, "Succeeded", None, None),  # the status is of the spec before the change
    (3, None, None, None, None),  # the operator has not looked yet
    (3, 3, "RolledBack", "True", outcomes.Exit.FAILED),
    (3, 3, "Degraded", None, outcomes.Exit.FAILED),
    (3, 3, "Paused", "True", outcomes.Exit.FAILED),  # a failed analysis waits for a person
    (3, 3, "Paused", "False", None),  # a pause step, or waiting for a promotion
    (3, 3, "Progressing", "False", None),
])
def test_finished(generation: int, observed: int | None, phase: str | None, stalled: str | None,
                  expected: outcomes.Exit | None) -> None:
    assert outcomes.finished(body(generation, observed, phase, stalled)) == expected
