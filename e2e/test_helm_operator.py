"""The chart's own operator pods roll a model out: after `helm install`, the pod runner runs the
two pods the chart's Deployment made (their command, their env, a token of their ServiceAccount
bound to each pod); one of them takes the Lease, an example ModelDeployment rolls out, the
leader's /metrics shows that rollout, and `helm uninstall` stops both."""

from __future__ import annotations

import dataclasses
import json
import re
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e import test_helm_install
from e2e.cluster.processes import tail
from e2e.fixtures import given, then, when
from e2e.fixtures.operator import OperatorProcess
from e2e.fixtures.world import Kubectl, WorldInfo, eventually

pytestmark = pytest.mark.cluster

ADDRESS = "e2e.modelrollout.io/address"


@dataclasses.dataclass(frozen=True)
class ChartPod:
    """The operator as the chart deploys it, running as its pod."""

    namespace: str
    name: str
    address: str
    log: Path

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://{self.address}/metrics", timeout=5) as answer:
            text: str = answer.read().decode()
        return text

    def log_tail(self, lines: int) -> str:
        return tail(self.log, lines)


REPLICAS = 2  # the chart's default


def operator_pods(kubectl: Kubectl, namespace: str) -> list[dict[str, Any]] | None:
    pods = json.loads(kubectl("get", "pods", "-n", namespace, "-l", "app.kubernetes.io/name=modelrollout",
                              "-o", "json").stdout)["items"]
    ready = [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                    for c in p["status"].get("conditions", []))
             and ADDRESS in (p["metadata"].get("annotations") or {})]
    return ready if len(pods) == REPLICAS and len(ready) == REPLICAS else None


def _leads(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=2) as answer:
            text: str = answer.read().decode()
    except OSError:
        return False
    return re.search(r"^modelrollout_leader\{[^}]*\} 1\.0$", text, re.MULTILINE) is not None


@pytest.fixture
def chart_operator(world: WorldInfo, kubectl: Kubectl, operator: OperatorProcess,
                   tmp_path: Path) -> Iterator[ChartPod]:
    """The session's operator stopped (it would compete for another Lease); the chart's pods in its place,
    and the one that leads."""
    if world.local is None:
        pytest.skip("on kind the chart's pod runs in a container; reaching its /metrics needs the local pod runner")
    helm = test_helm_install.Helm(world, tmp_path / "helm")
    namespace = f"chart-{uuid.uuid4().hex[:5]}"
    kubectl("create", "namespace", namespace)
    operator.stop()
    release = None
    try:
        release = helm.install(namespace, {
            "podAnnotations": {"e2e.modelrollout.io/run": "operator"},
            "prometheus": {"url": world.prometheus_url},
            "podAddressAnnotation": ADDRESS,
            "analysis": {"idleInterval": "20s"},  # the chart's sampleStep: auto
        })
        pods = eventually(lambda: operator_pods(kubectl, namespace), 90, what="the chart's operator pods Ready")
        addresses = [p["metadata"]["annotations"][ADDRESS] for p in pods]
        pod = eventually(lambda: next((p for p in pods if _leads(p["metadata"]["annotations"][ADDRESS])), None),
                         30, what="one of the chart's pods holds the Lease")
        meta = pod["metadata"]
        yield ChartPod(namespace, meta["name"], meta["annotations"][ADDRESS],
                       world.local.layout.logs / "pods" / f"{namespace}_{meta['name']}.log")
        helm("uninstall", release.name, "--namespace", namespace, "--wait")
        release = None
        eventually(lambda: not any(_answers(a) for a in addresses), 30,
                   what="the operator processes gone after helm uninstall")
    finally:
        if release is not None:
            helm("uninstall", release.name, "--namespace", namespace, "--wait", check=False)
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        operator.start()


def _answers(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def test_the_charts_operator_pod_rolls_out_and_its_metrics_show_it(
        kubectl: Kubectl, namespace: str, chart_operator: ChartPod) -> None:
    def short(body: dict[str, Any]) -> None:
        body["spec"]["strategy"]["canary"]["steps"] = [{"setWeight": 20}, {"analyze": {"duration": "20s"}}]

    name = given.model_deployment(kubectl, namespace, given.example("canary-gateway-api"), rps=60, change=short)
    then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)
    when.new_version(kubectl, namespace, name, "1.1.0")
    weight = re.compile(rf'modelrollout_canary_weight{{name="{name}",namespace="{namespace}"}} 20\.0')
    eventually(lambda: weight.search(chart_operator.metrics()), 90, what="the canary weight in /metrics")
    done = then.phase_becomes(kubectl, namespace, name, "Succeeded", 150)
    assert done["history"][-1]["outcome"] == "Promoted"
    metrics = chart_operator.metrics()
    assert re.search(rf'modelrollout_verdicts_total{{metric="error-rate[^"]*",name="{name}",namespace="{namespace}",'
                     r'verdict="Pass"} [1-9]', metrics), metrics[-2000:]
    assert re.search(r'modelrollout_rollouts{phase="Succeeded"} [1-9]', metrics)
    assert re.search(r"modelrollout_analysis_query_seconds_count [1-9]", metrics)
    log = chart_operator.log_tail(2000)
    # It is the pod's ServiceAccount talking: RBAC refusals would read 'User "system:serviceaccount:..." cannot'.
    assert not re.search(r"system:serviceaccount:\S+\" cannot", log)
    assert f'"namespace": "{namespace}"' in log or namespace in log, "the pod's log shows the rollout"
