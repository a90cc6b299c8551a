"""A HorizontalPodAutoscaler scales a ModelDeployment for real: the controller-manager's HPA
controller reads the generic preset's request rate per pod through prometheus-adapter (built
from its Go module, serving custom.metrics.k8s.io through the API server) and writes
spec.replicas through the scale subresource. examples/autoscaling/hpa.yaml is applied as written."""

from __future__ import annotations

from typing import Any

import pytest

from e2e.cluster.layout import REPO
from e2e.fixtures import given, then
from e2e.fixtures.operator import OperatorProcess
from e2e.fixtures.world import Kubectl, eventually, get_json
from e2e.loadgen.routing import RPS_ANNOTATION

pytestmark = pytest.mark.cluster

HPA = REPO / "examples/autoscaling/hpa.yaml"


def _two_replicas(body: dict[str, Any]) -> None:
    body["spec"]["replicas"] = 2


def _pods_per_revision(kubectl: Kubectl, namespace: str, name: str) -> int:
    return sum(then.deployments(kubectl, namespace, name).values())


def _hpa(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = get_json(kubectl, "hpa", name, "-n", namespace)
    return body


def test_hpa_scales_up_with_traffic_and_back_down(kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> None:
    name = given.model_deployment(kubectl, namespace, given.example("canary-gateway-api"), rps=20,
                                  change=_two_replicas)
    stable = then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)["stableRevision"]
    kubectl("apply", "-n", namespace, "-f", str(HPA))

    def metric_served() -> dict[str, Any] | None:
        status = _hpa(kubectl, namespace, name).get("status") or {}
        able = [c for c in status.get("conditions", []) if c["type"] == "ScalingActive"]
        return status if able and able[0]["status"] == "True" and status.get("currentMetrics") else None

    calm = eventually(metric_served, 120, interval=3.0, what="the HPA reading model_requests_per_second")
    assert calm["desiredReplicas"] == 2, f"20 req/s over 2 pods is below the target of 20 per pod: {calm}"

    kubectl("annotate", "--overwrite", "-n", namespace, f"mdep/{name}", f"{RPS_ANNOTATION}=200")
    eventually(lambda: then.status(kubectl, namespace, name).get("replicas", 0) >= 4
               and _pods_per_revision(kubectl, namespace, name) >= 4, 240, interval=3.0,
               what="the HPA scaling the ModelDeployment to at least 4 pods at 200 req/s")
    busy = then.status(kubectl, namespace, name)
    assert busy["stableRevision"] == stable and busy.get("canaryRevision") is None, "scaling is no new revision"
    peak = _hpa(kubectl, namespace, name)["status"]["desiredReplicas"]
    assert 4 <= peak <= 6

    kubectl("annotate", "--overwrite", "-n", namespace, f"mdep/{name}", f"{RPS_ANNOTATION}=20")
    eventually(lambda: then.status(kubectl, namespace, name).get("replicas") == 2
               and then.deployments(kubectl, namespace, name) == {stable: 2}, 300, interval=3.0,
               what="the HPA scaling back to 2 pods once traffic falls to 20 req/s")
    after = then.status(kubectl, namespace, name)
    assert (after["phase"], after["stableRevision"]) == ("Succeeded", stable)
    assert [h["outcome"] for h in after.get("history", [])].count("Promoted") <= 1, "no rollout was started"


def test_the_keda_example_is_a_scaled_object_keda_accepts(kubectl: Kubectl, namespace: str) -> None:
    """KEDA does not run in the world; its own ScaledObject CRD (from its Go module) checks the
    example's shape on the API server, strict about unknown fields."""
    applied = kubectl("apply", "--dry-run=server", "--validate=strict", "-n", namespace,
                      "-f", str(REPO / "examples/autoscaling/keda-scaledobject.yaml"))
    assert "scaledobject.keda.sh/canary-gateway-api created (server dry run)" in applied.stdout
    refused = kubectl("apply", "--dry-run=server", "--validate=strict", "-n", namespace, "-f", "-", check=False,
                      input=(REPO / "examples/autoscaling/keda-scaledobject.yaml").read_text()
                      .replace("minReplicaCount", "minReplicas"))
    assert refused.returncode != 0 and "minReplicas" in refused.stderr, "the CRD checks the fields"
