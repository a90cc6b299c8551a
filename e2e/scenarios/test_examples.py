"""Every file in examples/ rolls a new version out on the real control plane, as written, with its
waits shortened so the suite stays quick."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from e2e.cluster.layout import REPO
from e2e.fixtures import given, then, when
from e2e.fixtures.operator import OperatorProcess
from e2e.fixtures.world import Kubectl, WorldInfo, eventually

pytestmark = pytest.mark.cluster

EXAMPLES = sorted(p.stem for p in (REPO / "examples").glob("*.yaml"))
ROLLED_OUT = [name for name in EXAMPLES if name != "ab-test"]
"""An A/B test keeps a challenger only if it is better: test_ab_test.py rolls out examples/ab-test.yaml
with a better challenger, a challenger no better, and one that breaks a guardrail."""
ALSO_ROLLED_OUT_ELSEWHERE = {"blue-green", "canary-gateway-api", "canary-gpu-no-surge", "canary-manual", "shadow"}
"""Examples that other scenarios roll out as written (test_readme.py runs canary-gateway-api word
for word; test_strategies.py, test_gpu.py, test_manual.py, test_leader_kills.py): CI leaves their
runs here to `make e2e-long`."""
SHORT = {"analyze": "15s", "pause": "5s", "shadow": "20s", "prePromotionAnalysis": "15s",
         "postPromotionAnalysis": "10s", "scaleDownDelay": "10s"}


def shorten(body: dict[str, Any]) -> None:
    strategy = body["spec"]["strategy"]
    for step in (strategy.get("canary") or {}).get("steps", []):
        if "analyze" in step:
            step["analyze"]["duration"] = SHORT["analyze"]
        if "pause" in step and step["pause"].get("duration"):
            step["pause"]["duration"] = SHORT["pause"]
    if strategy.get("shadow"):
        strategy["shadow"]["duration"] = SHORT["shadow"]
    blue_green = strategy.get("blueGreen") or {}
    for key in ("prePromotionAnalysis", "postPromotionAnalysis"):
        if key in blue_green:
            blue_green[key]["duration"] = SHORT[key]
    if "scaleDownDelay" in blue_green:
        blue_green["scaleDownDelay"] = SHORT["scaleDownDelay"]


def test_every_example_is_tested() -> None:
    assert len(EXAMPLES) >= 7 and {"blue-green", "shadow", "canary-istio", "canary-replica-ratio"} <= set(EXAMPLES)


@pytest.mark.parametrize("example", [
    pytest.param(name, marks=pytest.mark.long) if name in ALSO_ROLLED_OUT_ELSEWHERE else name for name in ROLLED_OUT])
def test_example_rolls_out_a_new_version(kubectl: Kubectl, world: WorldInfo, namespace: str,
                                         operator: OperatorProcess, example: str) -> None:
    body = given.example(example)
    name = given.model_deployment(kubectl, namespace, body, change=shorten)
    stable = then.phase_becomes(kubectl, namespace, name, "Succeeded", 120)["stableRevision"]
    when.new_version(kubectl, namespace, name, "2.0.0")

    def rollout_started() -> str | None:  # a blue-green switch can be over between two looks
        status = then.status(kubectl, namespace, name)
        moved = status.get("stableRevision") if status.get("stableRevision") != stable else None
        return status.get("canaryRevision") or moved

    candidate = eventually(rollout_started, 60, what=f"{example}: the rollout of 2.0.0 started")
    assert candidate != stable

    def promoted() -> dict[str, Any] | None:
        status = then.status(kubectl, namespace, name)
        if status.get("phase") == "Paused" and status.get("pauseReason") == "AwaitingPromotion":
            assert when.plugin(world, "promote", name, "-n", namespace).returncode == 0
        return status if status.get("phase") == "Succeeded" and status.get("stableRevision") == candidate else None

    done = eventually(promoted, 300, interval=2.0, what=f"{example}: the new version promoted")
    assert done["history"][-1]["outcome"] == "Promoted"


def test_examples_need_nothing_of_the_local_world() -> None:
    for path in Path(REPO / "examples").glob("*.yaml"):
        assert "e2e.modelrollout.io" not in path.read_text(), f"{path.name} names an e2e annotation"


def test_examples_parse_as_the_operator_reads_them() -> None:
    from modelrollout.api import resources
    for path in Path(REPO / "examples").glob("*.yaml"):
        resources.ModelDeployment.model_validate(given.example(path.stem))
