"""Canary rollouts end to end: a healthy version promotes, a faulty one rolls back by itself."""

from __future__ import annotations

from typing import Any

import pytest

from e2e.fixtures import argocd, given, then, when
from e2e.fixtures.operator import OperatorProcess
from e2e.fixtures.world import Kubectl, Prometheus, eventually, get_json

pytestmark = pytest.mark.cluster

def test_healthy_canary_promotes(kubectl: Kubectl, namespace: str, operator: OperatorProcess,
                                 prometheus: Prometheus) -> None:
    name = given.model_deployment(kubectl, namespace, given.example("canary-gateway-api"), rps=100,
                                  change=given.canary_10_50_100)
    first = then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)
    stable = first["stableRevision"]
    assert then.deployments(kubectl, namespace, name) == {stable: 4}

    when.new_version(kubectl, namespace, name, "1.1.0")
    rolling = then.phase_becomes(kubectl, namespace, name, "Progressing", 60)
    candidate = rolling["canaryRevision"]
    assert candidate != stable
    eventually(lambda: then.route_weights(kubectl, namespace, name).get(f"{name}-canary") == 10, 90,
               what="10 % to the canary")
    on_its_way = argocd.health(get_json(kubectl, "mdep", name, "-n", namespace), record_as="e2e-progressing")
    assert on_its_way["status"] == "Progressing", on_its_way
    eventually(lambda: then.route_weights(kubectl, namespace, name).get(f"{name}-canary") == 50, 150,
               what="50 % to the canary")

    done = then.phase_becomes(kubectl, namespace, name, "Succeeded", 180)
    assert done["stableRevision"] == candidate
    assert done.get("canaryRevision") is None
    assert done["history"][-1]["outcome"] == "Promoted"
    eventually(lambda: then.deployments(kubectl, namespace, name) == {candidate: 4}, 60,
               what="only the new revision runs")
    assert then.route_weights(kubectl, namespace, name) == {f"{name}-stable": 100}
    served = then.requests_by_revision(prometheus, namespace, name)
    assert served.get(candidate, 0) > 0 and served.get(stable, 0) > 0
    healthy = argocd.health(get_json(kubectl, "mdep", name, "-n", namespace), record_as="e2e-succeeded")
    assert healthy["status"] == "Healthy", healthy


def test_faulty_canary_rolls_back_before_half_the_traffic(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> None:
    name = given.model_deployment(kubectl, namespace, given.example("canary-gateway-api"), rps=100,
                                  change=given.canary_10_50_100)
    stable = then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)["stableRevision"]

    when.new_version(kubectl, namespace, name, "1.1.0", FAULT_ERROR_RATE="0.3")
    candidate = then.phase_becomes(kubectl, namespace, name, "Progressing", 60)["canaryRevision"]
    seen_weights: set[int] = set()

    def rolled_back() -> dict[str, Any] | None:
        weights = then.route_weights(kubectl, namespace, name)
        seen_weights.add(weights.get(f"{name}-canary", 0))
        current = then.status(kubectl, namespace, name)
        return current if current.get("phase") == "RolledBack" else None

    status = eventually(rolled_back, 180, interval=1.0, what="automatic rollback")
    assert max(seen_weights) < 50
    assert status["stableRevision"] == stable
    assert candidate in status["rejectedRevisions"]
    assert status["history"][-1]["outcome"] == "RolledBack"
    assert "error-rate" in status["history"][-1]["reason"]
    assert then.route_weights(kubectl, namespace, name) in ({f"{name}-stable": 100},
                                                            {f"{name}-stable": 100, f"{name}-canary": 0})
    eventually(lambda: then.deployments(kubectl, namespace, name).get(candidate, 0) == 0, 60,
               what="the new version scaled to 0")
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True" and "error-rate" in degraded["message"]
    warnings = [e for e in then.events(kubectl, namespace, name) if e["type"] == "Warning"]
    assert any("error-rate" in e["message"] for e in warnings)
    health = argocd.health(get_json(kubectl, "mdep", name, "-n", namespace), record_as="e2e-rolled-back")
    assert health["status"] == "Degraded" and "error-rate" in health["message"], health

    # The rejected revision is not tried again while the spec stays the same.
    operator.restart_after_kill()
    again = then.phase_becomes(kubectl, namespace, name, "RolledBack", 30)
    assert again.get("canaryRevision") is None
    assert then.deployments(kubectl, namespace, name).get(candidate, 0) == 0


def test_failed_smoke_test_rolls_back_before_any_traffic(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess, prometheus: Prometheus) -> None:
    name = given.model_deployment(kubectl, namespace, given.example("canary-gateway-api"), rps=50)
    stable = then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)["stableRevision"]
    when.new_version(kubectl, namespace, name, "1.1.0", FAULT_ERROR_RATE="1.0")
    done = then.phase_becomes(kubectl, namespace, name, "RolledBack", 120)
    candidate = done["history"][-1]["revision"]
    assert done["stableRevision"] == stable and candidate != stable
    reason = done["history"][-1]["reason"]
    assert "/v1/predict" in reason and "500" in reason, reason  # the response is in the reason
    assert done["smokeTest"]["passed"] is False
    # It never received user traffic: only the smoke request reached it.
    assert then.requests_by_revision(prometheus, namespace, name).get(candidate, 0) <= 1
