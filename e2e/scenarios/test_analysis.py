"""The analysis engine on real metrics: A/A promotes, real regressions roll back, and an unreachable
Prometheus holds a rollout without deciding anything, then carries on with the evidence kept."""

from __future__ import annotations

from typing import Any

import pytest

from e2e.fixtures import given, then, when
from e2e.fixtures.operator import OperatorProcess
from e2e.fixtures.world import Kubectl, WorldInfo, consistently, eventually

pytestmark = pytest.mark.cluster


def judged(steps: list[dict[str, Any]], **env: str) -> Any:
    def change(body: dict[str, Any]) -> None:
        # No smoke test: one request to a server that fails 5-10 % of its answers would sometimes
        # roll back before the analysis, and these scenarios are about the analysis.
        body["spec"].pop("smokeTest", None)
        body["spec"]["strategy"]["canary"]["steps"] = steps
        body["spec"]["analysis"]["metrics"] = [
            {"name": "error-rate", "compare": {"tolerance": 0.1}},
            # p99 may be 5 % slower: the tolerance is on the value, so it sits well below the +50 % to catch
            # (docs/analysis.md, "Choosing tolerances").
            {"name": "p99-latency", "compare": {"tolerance": 0.05}},
        ]
        if env:
            server = given.container(body)
            server["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return change


TWO_LOOKS = [{"setWeight": 10}, {"analyze": {"duration": "60s"}}, {"setWeight": 50}, {"analyze": {"duration": "30s"}}]


def test_same_model_twice_promotes(kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> None:
    name = given.model_deployment(kubectl, namespace, given.example("canary-gateway-api"), rps=200,
                                  change=judged(TWO_LOOKS, FAULT_LATENCY_MS="10"))
    then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)
    when.new_version(kubectl, namespace, name, "1.0.1", FAULT_LATENCY_MS="10")
    candidate = then.phase_becomes(kubectl, namespace, name, "Progressing", 60)["canaryRevision"]
    done = then.phase_becomes(kubectl, namespace, name, "Succeeded", 300)
    assert done["stableRevision"] == candidate
    assert done["history"][-1]["outcome"] == "Promoted"


@pytest.mark.parametrize("stable_env, canary_env, metric", [
    ({"FAULT_ERROR_RATE": "0.05"}, {"FAULT_ERROR_RATE": "0.10"}, "error-rate"),
    ({"FAULT_LATENCY_MS": "20"}, {"FAULT_LATENCY_MS": "30"}, "p99-latency"),
], ids=["errors-2x", "latency-plus-50pct"])
def test_regression_rolls_back(kubectl: Kubectl, namespace: str, operator: OperatorProcess,
                               stable_env: dict[str, str], canary_env: dict[str, str], metric: str) -> None:
    name = given.model_deployment(kubectl, namespace, given.example("canary-gateway-api"), rps=200,
                                  change=judged(TWO_LOOKS, **stable_env))
    then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)
    when.new_version(kubectl, namespace, name, "1.1.0", **canary_env)
    done = then.phase_becomes(kubectl, namespace, name, "RolledBack", 300)
    last = done["history"][-1]
    assert last["outcome"] == "RolledBack" and metric in last["reason"], last
    failed = [a for a in done["analysis"] if a["verdict"] == "Fail"]
    assert any(metric in a["metric"] for a in failed), done["analysis"]


def test_prometheus_down_holds_then_carries_on(
        kubectl: Kubectl, world: WorldInfo, namespace: str, operator: OperatorProcess) -> None:
    if world.local is None:
        pytest.skip("stopping Prometheus needs the local world (kind runs it in-cluster)")
    steps = [{"setWeight": 10}, {"analyze": {"duration": "40s"}}, {"setWeight": 30}, {"analyze": {"duration": "20s"}}]
    name = given.model_deployment(kubectl, namespace, given.example("canary-gateway-api"), rps=150,
                                  change=judged(steps))
    then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)
    when.new_version(kubectl, namespace, name, "1.1.0")
    eventually(lambda: then.status(kubectl, namespace, name).get("canaryWeight") == 10, 90, what="10 % canary")
    world.local.stop_prometheus()
    try:
        eventually(lambda: any(a["verdict"] == "Error" for a in then.status(kubectl, namespace, name)
                               .get("analysis", [])), 60, what="the analysis reporting Error")

        def holding() -> bool:
            status = then.status(kubectl, namespace, name)
            return (status["phase"] in ("Progressing", "Paused") and status.get("canaryWeight") == 10
                    and status.get("canaryRevision") is not None)

        consistently(holding, 45, what="no promotion, no rollback, the same weight while Prometheus is down")
    finally:
        world.local.start_prometheus()
    done = then.phase_becomes(kubectl, namespace, name, "Succeeded", 240)
    assert done["history"][-1]["outcome"] == "Promoted"
