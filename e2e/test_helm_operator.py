"""The operator runs with exactly the chart's permissions: after `helm install`, the operator from
source, authenticated as the chart's ServiceAccount, rolls an example out, and its /metrics shows
that rollout. (The chart's own pod cannot run here: kwok fakes pods, there is no container runtime.)"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e import test_helm_install
from e2e.fixtures import given, then, when
from e2e.fixtures.operator import OperatorProcess
from e2e.fixtures.world import Kubectl, WorldInfo, eventually

pytestmark = pytest.mark.cluster


@pytest.fixture
def chart_operator(world: WorldInfo, kubectl: Kubectl, operator: OperatorProcess,
                   tmp_path: Path) -> Iterator[OperatorProcess]:
    """The session's admin operator stopped; one with the chart's ServiceAccount in its place."""
    helm = test_helm_install.Helm(world, tmp_path / "helm")
    namespace = f"chart-{uuid.uuid4().hex[:5]}"
    kubectl("create", "namespace", namespace)
    release = helm.install(namespace, {})
    config = test_helm_install.service_account_kubeconfig(world, kubectl, namespace, release.service_account,
                                                          tmp_path / "kubeconfig")
    operator.stop()
    restricted = OperatorProcess(dataclasses.replace(world, kubeconfig=config), operator.log_dir)
    try:
        restricted.start()
        yield restricted
    finally:
        restricted.stop()
        helm("uninstall", release.name, "--namespace", namespace, "--wait", check=False)
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        operator.start()


def test_chart_permissions_are_enough_to_roll_out_and_metrics_show_it(
        kubectl: Kubectl, namespace: str, chart_operator: OperatorProcess) -> None:
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
    # RBAC refusals read 'User "system:serviceaccount:..." cannot <verb> resource ...'.
    assert not re.search(r"system:serviceaccount:\S+\" cannot", chart_operator.log_tail(2000))
