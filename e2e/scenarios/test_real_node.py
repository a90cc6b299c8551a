"""A real kubelet node (containerd + runc + CNI bridge, e2e/realnode) runs the model server image.

The node joins the world as `modelrollout.io/pool=real`, with GPUs in its capacity; a pod of
modelrollout-modelserver:dev asking for one is placed there by nodeSelector, turns Ready through a
real readiness probe, and answers HTTP on its pod IP from the host. A node that is already up
(`python -m e2e.realnode up`) is reused and left running; otherwise the session starts it and
stops it at its end (e2e/fixtures/realnode.py).
"""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
import yaml

from e2e.fixtures.world import Kubectl, WorldInfo, eventually, get_json
from e2e.realnode.node import GPU_RESOURCE, GPUS, LABEL, TOLERATION, RealNode

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.xdist_group("real-node")]

PORT = 8080  # the image's CMD listens here on every address of the pod


def model_server_pod(namespace: str) -> dict[str, Any]:
    # No `ports`: the world's pod runner starts a host process for any Running pod that declares
    # one, and would fight the kubelet over this pod's status.
    probe = {"httpGet": {"path": "/healthz", "port": PORT}, "periodSeconds": 2, "failureThreshold": 30}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "real-model-server", "namespace": namespace, "labels": {"app": "real-model-server"}},
        "spec": {
            "nodeSelector": {LABEL[0]: LABEL[1]},
            "tolerations": [TOLERATION],
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 5,
            "containers": [{
                "name": "server", "image": "modelrollout-modelserver:dev", "imagePullPolicy": "Never",
                "env": [{"name": "MODEL_NAME", "value": "real"}, {"name": "MODEL_VERSION", "value": "v1"}],
                "readinessProbe": probe,
                # Scheduled only if the node advertises GPUs, as a device plugin would.
                "resources": {"limits": {GPU_RESOURCE: "1"}},
            }],
        },
    }


def run_ready_pod(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    kubectl("apply", "-f", "-", input=yaml.safe_dump(model_server_pod(namespace)))

    def ready_pod() -> dict[str, Any] | None:
        pod = get_json(kubectl, "pod", "real-model-server", "-n", namespace)
        conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
        return pod if pod["status"].get("phase") == "Running" and conditions.get("Ready") == "True" else None

    try:
        return eventually(ready_pod, 120, interval=1, what="the model server pod Running and Ready on the real node")
    except AssertionError:
        described = kubectl("describe", "pod", "real-model-server", "-n", namespace, check=False).stdout
        raise AssertionError(f"the pod did not become Ready:\n{described[-3000:]}") from None


def test_model_server_runs_as_a_real_container(real_node: RealNode, kubectl: Kubectl, namespace: str) -> None:
    node = get_json(kubectl, "node", real_node.name)
    assert node["metadata"]["labels"].get(LABEL[0]) == LABEL[1]
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    assert {"key": LABEL[0], "value": LABEL[1], "effect": "NoSchedule"} in node["spec"].get("taints", [])
    assert node["status"]["allocatable"][GPU_RESOURCE] == str(GPUS)

    pod = run_ready_pod(kubectl, namespace)
    assert pod["spec"]["nodeName"] == real_node.name
    status = pod["status"]["containerStatuses"][0]
    assert status["containerID"].startswith("containerd://")
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {GPU_RESOURCE: "1"}
    ip = pod["status"]["podIP"]

    # From the host, straight to the pod's address on the node's bridge.
    with urllib.request.urlopen(f"http://{ip}:{PORT}/healthz", timeout=5) as response:
        assert response.status == 200
    with urllib.request.urlopen(f"http://{ip}:{PORT}/metrics", timeout=5) as response:
        assert b"# TYPE" in response.read()


def test_service_cluster_ip_reaches_the_pod(real_node: RealNode, world: WorldInfo, kubectl: Kubectl,
                                            namespace: str) -> None:
    """kube-proxy (nftables mode) on the real node: the host reaches the pod through its Service."""
    if real_node.supervisor.pid_of("realnode-kube-proxy") is None:
        pytest.skip("the real node runs without kube-proxy (nft missing or E2E_REALNODE_KUBE_PROXY=0)")
    run_ready_pod(kubectl, namespace)
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "real-model-server", "namespace": namespace},
               "spec": {"selector": {"app": "real-model-server"}, "ports": [{"port": 80, "targetPort": PORT}]}}
    kubectl("apply", "-f", "-", input=yaml.safe_dump(service))
    cluster_ip = get_json(kubectl, "service", "real-model-server", "-n", namespace)["spec"]["clusterIP"]

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://{cluster_ip}/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    eventually(answers, 60, interval=1, what=f"http://{cluster_ip}/healthz through kube-proxy's rules")
