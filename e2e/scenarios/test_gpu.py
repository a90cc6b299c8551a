"""GPU-aware rollouts on the kwok GPU pools, placed by the real scheduler."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from e2e.fixtures import given, then, when
from e2e.fixtures.operator import OperatorProcess
from e2e.fixtures.world import Kubectl, eventually, get_json

pytestmark = pytest.mark.cluster


def free_gpus(kubectl: Kubectl, pool: str) -> int:
    nodes = get_json(kubectl, "nodes", "-l", f"modelrollout.io/pool={pool}")["items"]
    names = {n["metadata"]["name"] for n in nodes}
    allocatable = sum(int(n["status"]["allocatable"].get("nvidia.com/gpu", 0)) for n in nodes)
    pods = get_json(kubectl, "pods", "-A", "--field-selector", "status.phase!=Succeeded,status.phase!=Failed")["items"]
    held = 0
    for pod in pods:
        if pod["spec"].get("nodeName") in names:
            for container in pod["spec"]["containers"]:
                held += int(((container.get("resources") or {}).get("limits") or {}).get("nvidia.com/gpu", 0))
    return allocatable - held


def foreign_pods(kubectl: Kubectl, pool: str, namespace: str) -> int:
    names = {n["metadata"]["name"] for n in get_json(kubectl, "nodes", "-l", f"modelrollout.io/pool={pool}")["items"]}
    pods = get_json(kubectl, "pods", "-A")["items"]
    # A real node's DaemonSet pods (kube-proxy, the CNI's on kind) hold no GPUs.
    return sum(1 for p in pods if p["spec"].get("nodeName") in names and p["metadata"]["namespace"] != namespace
               and not any(o.get("kind") == "DaemonSet" for o in p["metadata"].get("ownerReferences") or []))


def filler(namespace: str, gpus: int) -> dict[str, Any]:
    """Other work on the pool: `gpus` single-GPU pods that hold capacity."""
    labels = {"app": "filler"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "filler", "namespace": namespace},
            "spec": {"replicas": gpus, "selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels},
                "spec": {"nodeSelector": {"modelrollout.io/pool": "a100"},
                         "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
                         "containers": [{"name": "job", "image": "registry.example/batch:1",
                                         "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}}}


def test_blue_green_holds_when_the_pool_cannot_hold_both_versions(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> None:
    def four_replicas(body: dict[str, Any]) -> None:
        body["spec"]["replicas"] = 4
        body["spec"]["gpuPool"]["maxExtraGPUs"] = 4
        body["spec"]["strategy"]["blueGreen"] = {"autoPromote": True, "scaleDownDelay": "10s"}

    name = given.model_deployment(kubectl, namespace, given.example("blue-green"), rps=40, change=four_replicas)
    then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)
    # Leave room for 1.5x the replicas: 4 running + 2 free GPUs. Pods of earlier tests may still be
    # terminating on the pool; wait until the pool holds only ours, so the count stays put.
    eventually(lambda: foreign_pods(kubectl, "a100", namespace) == 0, 180, what="other tests' pods gone from the pool")
    kubectl("apply", "-f", "-", input=yaml.safe_dump(filler(namespace, free_gpus(kubectl, "a100") - 2)))
    eventually(lambda: free_gpus(kubectl, "a100") == 2, 60, what="the pool filled to 2 free GPUs")

    when.new_version(kubectl, namespace, name, "2.0.0")

    def holding() -> dict[str, Any] | None:
        status = then.status(kubectl, namespace, name)
        progressing = next((c for c in status.get("conditions", []) if c["type"] == "Progressing"), {})
        return status if progressing.get("reason") == "InsufficientCapacity" else None

    held = eventually(holding, 60, what="InsufficientCapacity")
    message = next(c for c in held["conditions"] if c["type"] == "Progressing")["message"]
    assert message.endswith("2 missing") and "nvidia.com/gpu" in message, message
    assert held["phase"] == "Progressing" and held["stableRevision"] != held.get("canaryRevision")
    assert then.route_weights(kubectl, namespace, name) in ({f"{name}-stable": 100},
                                                            {f"{name}-stable": 100, f"{name}-preview": 0})

    kubectl("delete", "deployment", "filler", "-n", namespace)
    done = then.phase_becomes(kubectl, namespace, name, "Succeeded", 150)
    assert done["history"][-1]["outcome"] == "Promoted"


def test_canary_without_spare_gpus_replaces_stable_pods_step_by_step(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> None:
    def short(body: dict[str, Any]) -> None:
        body["spec"]["strategy"]["canary"]["steps"] = [
            {"setWeight": 34}, {"analyze": {"duration": "20s"}}, {"setWeight": 67}, {"analyze": {"duration": "20s"}}]

    name = given.model_deployment(kubectl, namespace, given.example("canary-gpu-no-surge"), rps=60, change=short)
    stable = then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)["stableRevision"]
    when.new_version(kubectl, namespace, name, "2.0.0")
    most_asked = 0
    revisions_seen: set[str] = set()

    def promoted() -> dict[str, Any] | None:
        nonlocal most_asked
        asked = then.deployments(kubectl, namespace, name)
        most_asked = max(most_asked, sum(asked.values()))
        revisions_seen.update(r for r, n in asked.items() if n > 0)
        status = then.status(kubectl, namespace, name)
        return status if status.get("phase") == "Succeeded" and status["stableRevision"] != stable else None

    done = eventually(promoted, 240, interval=0.5, what="promotion by dynamic stable scaling")
    # Both versions ran side by side, yet the operator never asked for more GPUs than the stable held.
    assert len(revisions_seen) == 2
    assert most_asked <= 3, f"asked for {most_asked} one-GPU pods with maxExtraGPUs 0 and 3 replicas"
    assert json.dumps(done["history"][-1]["outcome"]) == '"Promoted"'
    eventually(lambda: then.deployments(kubectl, namespace, name) == {done["stableRevision"]: 3}, 60,
               what="three new pods, none old")


def test_a_scale_up_beyond_the_l4_pool_runs_what_fits_and_reports_the_missing_count(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> None:
    def two_replicas(body: dict[str, Any]) -> None:
        body["spec"]["replicas"] = 2

    name = given.model_deployment(kubectl, namespace, given.example("canary-gpu-no-surge"), rps=20, change=two_replicas)
    stable = then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)["stableRevision"]
    kubectl("scale", "-n", namespace, f"mdep/{name}", "--replicas=5")  # the pool: three nodes, one L4 each

    def reported() -> tuple[dict[str, Any], int, int] | None:
        status = then.status(kubectl, namespace, name)
        progressing = next((c for c in status.get("conditions", []) if c["type"] == "Progressing"), {})
        found = re.search(r"scaling to 5 replicas: (\d+) fit, (\d+) missing", status.get("message", ""))
        if progressing.get("reason") != "InsufficientCapacity" or found is None:
            return None
        return status, int(found[1]), int(found[2])

    status, fit, missing = eventually(reported, 60, what="InsufficientCapacity with the missing count")
    assert fit + missing == 5 and 2 <= fit <= 3 and missing >= 2, status["message"]
    assert status["phase"] == "Succeeded" and status.get("canaryRevision") is None
    assert "more nvidia.com/gpu" in status["message"] and "free in pool l4" in status["message"]
    assert then.deployments(kubectl, namespace, name) == {stable: fit}, "carried out as far as it fits"
    pods = get_json(kubectl, "pods", "-n", namespace, "-l", f"modelrollout.io/name={name}")["items"]
    # Unscheduled: a real kubelet's pod is Pending for a moment after it is placed, while it starts.
    unplaced = [p for p in pods if p["status"].get("phase") == "Pending" and not p["spec"].get("nodeName")]
    assert not unplaced, "no Pending pods for the rest"
    assert any(e["reason"] == "InsufficientCapacity" for e in then.events(kubectl, namespace, name))

    kubectl("scale", "-n", namespace, f"mdep/{name}", "--replicas=2")
    back = eventually(lambda: (s := then.status(kubectl, namespace, name)) and not any(
        c["type"] == "Progressing" and c["reason"] == "InsufficientCapacity" for c in s.get("conditions", [])) and s,
        60, what="the report gone after scaling back to what fits")
    assert back["phase"] == "Succeeded" and then.deployments(kubectl, namespace, name) == {stable: 2}
