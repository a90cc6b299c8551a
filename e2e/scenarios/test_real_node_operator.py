"""The chart's operator as a user runs it: `helm install` with the image `make images` built, as a
container on the real node (containerd, runc), under the chart's security context (non-root,
read-only root filesystem, no capabilities), its ServiceAccount token mounted by the kubelet,
its probes run by the kubelet, in-cluster configuration through the `kubernetes` Service, and
its /metrics scraped by Prometheus through Kubernetes service discovery.

`helm test` passes: its pod, on the node too, reaches the operator's health port through a
ClusterIP. It rolls a canary out (its analysis asks the world's Prometheus from inside the pod) to a manual
pause; `helm upgrade` to a new image tag replaces the pod; the new one takes the Lease and the
paused rollout is where it was; `kubectl modelrollout promote` finishes it.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from e2e import test_helm_install
from e2e.fixtures import given, then, when
from e2e.fixtures.world import Kubectl, WorldInfo, eventually, get_json
from e2e.realnode.node import LABEL, TOLERATION, RealNode

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.xdist_group("real-node")]

IMAGE = "modelrollout"
METRICS_PORT = 8080  # the chart's metrics.port


def ready_operator_pod(kubectl: Kubectl, namespace: str, tag: str) -> dict[str, Any] | None:
    """The one operator pod of image tag `tag`, Running and Ready, once no other is left."""
    pods = json.loads(kubectl("get", "pods", "-n", namespace, "-l", "app.kubernetes.io/name=modelrollout",
                              "-o", "json").stdout)["items"]
    if len(pods) != 1 or pods[0]["spec"]["containers"][0]["image"] != f"{IMAGE}:{tag}":
        return None
    conditions = {c["type"]: c["status"] for c in pods[0]["status"].get("conditions", [])}
    return pods[0] if conditions.get("Ready") == "True" and not pods[0]["metadata"].get("deletionTimestamp") else None


def metrics(pod: dict[str, Any]) -> str:
    with urllib.request.urlopen(f"http://{pod['status']['podIP']}:{METRICS_PORT}/metrics", timeout=5) as answer:
        text: str = answer.read().decode()
    return text


def leads(pod: dict[str, Any]) -> bool:
    try:
        return re.search(r"^modelrollout_leader\{[^}]*\} 1\.0$", metrics(pod), re.MULTILINE) is not None
    except OSError:
        return False


def scraped(prometheus: str, query: str) -> float | None:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            result = json.load(answer)["data"]["result"]
    except OSError:
        return None
    return float(result[0]["value"][1]) if result else None


def scrape_targets(world: WorldInfo, namespace: str) -> list[str]:
    """The pod runner's scrape target files for `namespace` (what the world's Prometheus reads)."""
    assert world.local is not None
    return sorted(p.name for p in world.local.layout.scrape_targets.glob(f"{namespace}__*.json"))


def values_for_the_real_node(node: RealNode) -> dict[str, Any]:
    """The chart's values for one replica of the `make images` image on the real node."""
    return {
        "image": {"repository": IMAGE, "tag": "dev", "pullPolicy": "Never"},
        "replicaCount": 1,
        "nodeSelector": {LABEL[0]: LABEL[1]},
        "tolerations": [TOLERATION],
        # By default, analyses ask the world's Prometheus (kwok's pods are scraped there).
        "prometheus": {"url": node.from_pods(node.world_ports.prometheus)},
        "analysis": {"idleInterval": "20s"},
    }


def test_the_charts_operator_runs_as_a_container_and_survives_an_upgrade(
        real_node: RealNode, world: WorldInfo, kubectl: Kubectl, namespace: str, release_namespace: str,
        tmp_path: Path) -> None:
    helm = test_helm_install.Helm(world, tmp_path / "helm")
    release = helm.install(release_namespace, values_for_the_real_node(real_node))
    try:
        pod = eventually(lambda: ready_operator_pod(kubectl, release_namespace, "dev"), 120,
                         what="the chart's operator pod Ready on the real node")
        assert pod["spec"]["nodeName"] == real_node.name
        status = pod["status"]["containerStatuses"][0]
        assert status["containerID"].startswith("containerd://") and status["restartCount"] == 0, status
        context = pod["spec"]["containers"][0]["securityContext"]
        assert context["readOnlyRootFilesystem"] and context["capabilities"]["drop"] == ["ALL"]
        assert any(v.get("projected") for v in pod["spec"]["volumes"]), "the kubelet mounts the token"
        eventually(lambda: leads(pod), 60, what="the pod takes the Lease through the `kubernetes` Service")
        lease = get_json(kubectl, "lease", f"{release.fullname}-leader", "-n", release_namespace)
        assert lease["spec"]["holderIdentity"].split("_")[0] == pod["metadata"]["name"], lease["spec"]
        # The node's Prometheus finds the pod by Kubernetes service discovery and scrapes its pod IP.
        leader_series = f'modelrollout_leader{{job="realnode-operator",pod="{pod["metadata"]["name"]}"}}'
        eventually(lambda: scraped(real_node.prometheus_url, leader_series) == 1.0, 90,
                   what=f"{leader_series} in the node's Prometheus")
        # `helm test`, as the README gives it: its pod, a container on the node, asks the operator's
        # health port through a ClusterIP Service (kube-proxy) and exits 0.
        tested = helm("test", release.name, "--namespace", release_namespace, "--timeout=2m", check=False)
        assert tested.returncode == 0 and re.search(r"Phase:\s+Succeeded", tested.stdout), \
            tested.stdout + tested.stderr

        def to_pause(body: dict[str, Any]) -> None:
            body["spec"]["strategy"]["canary"]["steps"] = [
                {"setWeight": 20}, {"analyze": {"duration": "20s"}}, {"pause": {}}]

        name = given.model_deployment(kubectl, namespace, given.example("canary-manual"), rps=60, change=to_pause)
        then.phase_becomes(kubectl, namespace, name, "Succeeded", 120)
        # The stable pods are scraped by the world's Prometheus before the canary is judged on them.
        up = f'count(up{{namespace="{namespace}",modeldeployment="{name}"}} == 1)'
        eventually(lambda: scraped(world.prometheus_url, up) == 2.0, 60,
                   what=f"{up} == 2 in the world's Prometheus (target files: {scrape_targets(world, namespace)})")
        when.new_version(kubectl, namespace, name, "1.1.0")
        paused = then.phase_becomes(kubectl, namespace, name, "Paused", 150)
        assert paused["canaryWeight"] == 20, paused
        judged = [a for a in paused.get("analysis", []) if a.get("verdict") == "Pass" and a.get("samples")]
        assert judged, (f"the analysis saw no data through the pod's route to Prometheus: {paused.get('analysis')}; "
                        f"from the host, {up} = {scraped(world.prometheus_url, up)}, "
                        f"target files {scrape_targets(world, namespace)}")
        candidate = paused["canaryRevision"]
        assert re.search(rf'modelrollout_canary_weight{{name="{name}",namespace="{namespace}"}} 20\.0',
                         metrics(pod))

        # A new image tag (the same content, as a rebuilt release would have) on the node.
        subprocess.run(["docker", "tag", f"{IMAGE}:dev", f"{IMAGE}:dev-next"], check=True)
        assert real_node.import_image(f"{IMAGE}:dev-next")
        helm("upgrade", release.name, str(test_helm_install.CHART), "--namespace", release_namespace,
             "--reuse-values", "--set", "image.tag=dev-next", "--wait", "--timeout=3m")
        upgraded = eventually(lambda: ready_operator_pod(kubectl, release_namespace, "dev-next"), 120,
                              what="the upgraded operator pod alone and Ready")
        assert upgraded["metadata"]["name"] != pod["metadata"]["name"]
        eventually(lambda: leads(upgraded), 90, what="the upgraded pod takes the Lease")
        held = then.status(kubectl, namespace, name)
        assert (held["phase"], held["canaryWeight"], held["canaryRevision"]) == ("Paused", 20, candidate), held

        when.plugin(world, "promote", name, "-n", namespace)
        done = then.phase_becomes(kubectl, namespace, name, "Succeeded", 120)
        assert done["history"][-1]["outcome"] == "Promoted" and done["history"][-1]["revision"] == candidate
        assert not any(h["outcome"] in ("Aborted", "RolledBack") for h in done["history"]), done["history"]
    finally:
        helm("uninstall", release.name, "--namespace", release_namespace, "--wait", check=False)
