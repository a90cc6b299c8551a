"""The chart's operator on kind, as a user with a cluster runs it: `helm install` of the image
`make images` built (loaded into the nodes with `kind load`), a container under a real kubelet
with the chart's security context and probes, in-cluster configuration, and Prometheus asked by
its Service name (`prometheus.monitoring`, cluster DNS). It promotes a healthy canary of model
server containers, and rolls a faulty one back by itself.

Runs on the kind provider only (`make e2e-kind`): the local world's pods are processes that the
chart's operator, a container, could not reach.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from e2e import test_helm_install
from e2e.fixtures import given, then, when
from e2e.fixtures.world import Kubectl, WorldInfo, eventually

pytestmark = [
    pytest.mark.cluster, pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("E2E_CLUSTER", "local") != "kind",
                       reason="the chart's operator as a container needs the kind provider (make e2e-kind)"),
]


def values() -> dict[str, Any]:
    """One replica of `modelrollout:dev` on the control plane (the pools' taints keep it off the workers)."""
    return {
        "image": {"repository": "modelrollout", "tag": "dev", "pullPolicy": "Never"},
        "replicaCount": 1,
        "nodeSelector": {"node-role.kubernetes.io/control-plane": ""},
        "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                         "effect": "NoSchedule"}],
        "prometheus": {"url": "http://prometheus.monitoring:9090"},
    }


def ready_operator_pod(kubectl: Kubectl, namespace: str) -> dict[str, Any] | None:
    pods = json.loads(kubectl("get", "pods", "-n", namespace, "-l", "app.kubernetes.io/name=modelrollout",
                              "-o", "json").stdout)["items"]
    if len(pods) != 1:
        return None
    conditions = {c["type"]: c["status"] for c in pods[0]["status"].get("conditions", [])}
    return pods[0] if conditions.get("Ready") == "True" else None


def test_the_charts_operator_promotes_a_healthy_canary_and_rolls_back_a_faulty_one(
        world: WorldInfo, kubectl: Kubectl, namespace: str, release_namespace: str, tmp_path: Path) -> None:
    helm = test_helm_install.Helm(world, tmp_path / "helm")
    release = helm.install(release_namespace, values())
    try:
        pod = eventually(lambda: ready_operator_pod(kubectl, release_namespace), 180,
                         what="the chart's operator pod Ready")
        status = pod["status"]["containerStatuses"][0]
        assert status["containerID"].startswith("containerd://") and status["restartCount"] == 0, status
        context = pod["spec"]["containers"][0]["securityContext"]
        assert context["readOnlyRootFilesystem"] and context["capabilities"]["drop"] == ["ALL"]

        name = given.model_deployment(kubectl, namespace, given.example("canary-gateway-api"), rps=100,
                                      change=given.canary_10_50_100)
        stable = then.phase_becomes(kubectl, namespace, name, "Succeeded", 120)["stableRevision"]
        when.new_version(kubectl, namespace, name, "1.1.0")
        candidate = then.phase_becomes(kubectl, namespace, name, "Progressing", 60)["canaryRevision"]
        done = then.phase_becomes(kubectl, namespace, name, "Succeeded", 240)
        assert done["stableRevision"] == candidate != stable
        assert done["history"][-1]["outcome"] == "Promoted", done["history"][-1]

        when.new_version(kubectl, namespace, name, "1.2.0", FAULT_ERROR_RATE="0.3")
        faulty = then.phase_becomes(kubectl, namespace, name, "Progressing", 60)["canaryRevision"]
        rolled_back = then.phase_becomes(kubectl, namespace, name, "RolledBack", 240)
        assert rolled_back["stableRevision"] == candidate and faulty in rolled_back["rejectedRevisions"]
        assert "error-rate" in rolled_back["history"][-1]["reason"], rolled_back["history"][-1]
    finally:
        helm("uninstall", release.name, "--namespace", release_namespace, "--wait", check=False)
