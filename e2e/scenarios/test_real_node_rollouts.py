"""Canaries whose pods are real containers on the real node (e2e/realnode), driven by the chart's
operator running there as a container (`helm install` of the `make images` image): the model-server
image run by containerd and runc, Ready through the kubelet's own probes, scraped by pod IP by the
node's Prometheus (Kubernetes service discovery), and sent traffic by the load generator on their
pod IPs. The operator judges from that Prometheus and smoke-tests a pod on its pod IP; it sees
crash loops, absent images and killed containers through the kubelet's pod status.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from e2e import test_helm_install
from e2e.fixtures import given, then, when
from e2e.fixtures.operator import OperatorProcess
from e2e.fixtures.world import Kubectl, WorldInfo, eventually, get_json
from e2e.podrunner.runner import is_pod_ready
from e2e.realnode.node import LABEL, TOLERATION, RealNode
from e2e.scenarios import test_real_node_operator as chart

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.xdist_group("real-node")]


@pytest.fixture(scope="module")
def charts_operator(real_node: RealNode, world: WorldInfo, kubectl: Kubectl, operator: OperatorProcess,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The chart's operator on the real node for this module; the session's operator is stopped
    meanwhile (two would act on the same objects)."""
    namespace = f"chart-rollouts-{uuid.uuid4().hex[:5]}"
    kubectl("create", "namespace", namespace)
    operator.stop()
    helm = test_helm_install.Helm(world, tmp_path_factory.mktemp("helm"))
    release = helm.install(namespace, chart.values_for_the_real_node(real_node))
    try:
        eventually(lambda: chart.ready_operator_pod(kubectl, namespace, "dev"), 120,
                   what="the chart's operator pod Ready on the real node")
        yield
    finally:
        helm("uninstall", release.name, "--namespace", namespace, "--wait", check=False)
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        operator.start()


def on_the_real_node(node: RealNode, **extra: Any) -> given.Body:
    """The Gateway API canary example (its gpuPool and resources left out), two replicas on the
    real node, judged from the node's Prometheus, with the short canary's steps; `extra` spec fields."""
    body = copy.deepcopy(given.example("canary-gateway-api"))
    spec = body["spec"]
    spec["replicas"] = 2
    del spec["gpuPool"]
    pod_spec = spec["template"]["spec"]
    pod_spec["nodeSelector"] = {LABEL[0]: LABEL[1]}
    pod_spec["tolerations"] = [TOLERATION]
    pod_spec["terminationGracePeriodSeconds"] = 5
    server = given.container(body)
    server.update({"image": "modelrollout-modelserver:dev", "imagePullPolicy": "Never"})
    server.pop("resources", None)
    given.short_canary(body)
    spec["analysis"]["prometheus"] = {"address": node.from_pods(node.ports.prometheus)}
    spec.update(extra)
    return body


def rolled_out(kubectl: Kubectl, namespace: str, node: RealNode, **env: str) -> tuple[str, dict[str, Any]]:
    """The first version Succeeded on the real node, then version 1.1.0 (with `env`) applied."""
    name = given.model_deployment(kubectl, namespace, on_the_real_node(node), rps=80)
    then.phase_becomes(kubectl, namespace, name, "Succeeded", 150)
    pods = get_json(kubectl, "pods", "-n", namespace, "-l", f"modelrollout.io/name={name}")["items"]
    assert pods and {p["spec"]["nodeName"] for p in pods} == {node.name}
    assert all(p["status"]["containerStatuses"][0]["containerID"].startswith("containerd://") for p in pods)
    when.new_version(kubectl, namespace, name, "1.1.0", **env)
    return name, then.phase_becomes(kubectl, namespace, name, "Progressing", 90)


def test_a_faulty_canary_of_real_containers_rolls_back(
        real_node: RealNode, kubectl: Kubectl, namespace: str, charts_operator: None) -> None:
    name, progressing = rolled_out(kubectl, namespace, real_node, FAULT_ERROR_RATE="0.3")
    done = then.phase_becomes(kubectl, namespace, name, "RolledBack", 240)
    last = done["history"][-1]
    assert last["outcome"] == "RolledBack" and last["revision"] == progressing["canaryRevision"], last
    # The analysis (error-rate) or the smoke test (a request that drew the 30 % fault) catches it.
    assert "error-rate" in last["reason"] or ("SmokeTestFailed" in last["reason"]
                                              and "FAULT_ERROR_RATE" in last["reason"]), last


def says(status: dict[str, Any], text: str) -> bool:
    """`text` in status.message or a condition's message (where a hold for pods is told)."""
    return text in status.get("message", "") or any(text in c.get("message", "") for c in status.get("conditions", []))


def test_a_crash_looping_version_is_seen_through_the_kubelets_back_off_and_rolled_back(
        real_node: RealNode, kubectl: Kubectl, namespace: str, charts_operator: None) -> None:
    name = given.model_deployment(kubectl, namespace, on_the_real_node(real_node, progressDeadline="60s"), rps=80)
    then.phase_becomes(kubectl, namespace, name, "Succeeded", 150)
    when.new_version(kubectl, namespace, name, "1.1.0", FAULT_CRASH="1")
    eventually(lambda: says(then.status(kubectl, namespace, name), "CrashLoopBackOff"), 90,
               what="the kubelet's CrashLoopBackOff in the rollout's status")
    done = then.phase_becomes(kubectl, namespace, name, "RolledBack", 120)
    last = done["history"][-1]
    assert last["outcome"] == "RolledBack" and "crash-looping" in last["reason"], last
    restarts = re.search(r"(\d+) restarts", last["reason"])
    assert restarts and int(restarts.group(1)) >= 1, last
    assert done["stableRevision"] != done["history"][-1]["revision"]


def test_a_version_whose_image_is_absent_is_held_with_the_kubelets_reason_then_rolled_back(
        real_node: RealNode, kubectl: Kubectl, namespace: str, charts_operator: None) -> None:
    name = given.model_deployment(kubectl, namespace, on_the_real_node(real_node, progressDeadline="45s"), rps=80)
    then.phase_becomes(kubectl, namespace, name, "Succeeded", 150)

    def absent_image(body: dict[str, Any]) -> None:
        body["spec"]["model"]["version"] = "1.1.0"
        given.container(body)["image"] = "modelrollout-modelserver:absent"

    when.changed(kubectl, namespace, name, absent_image)
    def held_for_the_image() -> dict[str, Any] | None:
        status = then.status(kubectl, namespace, name)
        return status if says(status, "ErrImageNeverPull") else None

    held = eventually(held_for_the_image, 90, what="the kubelet's ErrImageNeverPull in the rollout's status")
    assert held["phase"] == "Progressing", held
    done = then.phase_becomes(kubectl, namespace, name, "RolledBack", 120)
    assert "ErrImageNeverPull" in done["history"][-1]["reason"], done["history"][-1]
    stable = get_json(kubectl, "pods", "-n", namespace, "-l", f"modelrollout.io/revision={done['stableRevision']}")
    assert sum(1 for p in stable["items"] if is_pod_ready(p)) == 2, "users kept two ready stable pods"


def test_a_healthy_canary_promotes_and_a_container_killed_by_the_runtime_is_restarted_meanwhile(
        real_node: RealNode, kubectl: Kubectl, namespace: str, charts_operator: None) -> None:
    body = on_the_real_node(real_node)
    body["spec"]["strategy"]["canary"]["steps"] = [{"setWeight": 50}, {"analyze": {"duration": "60s"}}]
    name = given.model_deployment(kubectl, namespace, body, rps=80)
    then.phase_becomes(kubectl, namespace, name, "Succeeded", 150)
    when.new_version(kubectl, namespace, name, "1.1.0")
    canary = eventually(lambda: then.status(kubectl, namespace, name).get("canaryRevision"), 60, what="a canary")

    def ready_canary_pod() -> dict[str, Any] | None:
        pods = get_json(kubectl, "pods", "-n", namespace, "-l", f"modelrollout.io/revision={canary}")["items"]
        return next((p for p in pods if is_pod_ready(p)), None)

    pod = eventually(ready_canary_pod, 90, what="the canary pod ready")
    real_node.kill_container(pod["status"]["containerStatuses"][0]["containerID"])

    def restarted() -> bool:
        seen = get_json(kubectl, "pod", pod["metadata"]["name"], "-n", namespace)
        return seen["status"]["containerStatuses"][0]["restartCount"] >= 1 and is_pod_ready(seen)

    eventually(restarted, 60, what="the kubelet restarting the killed container, Ready again")
    done = then.phase_becomes(kubectl, namespace, name, "Succeeded", 180)
    assert done["history"][-1]["outcome"] == "Promoted" and done["history"][-1]["revision"] == canary, done["history"]
    judged = [a for a in done.get("analysis", []) if a.get("canarySamples")]
    assert judged, f"no evidence from the node's Prometheus: {done.get('analysis')}"
