"""The scale subresource: `kubectl scale` sets spec.replicas in any phase, never starts a
rollout, and mid-canary both tracks follow the new total at the current weight; status.replicas
(the pods answering requests, as Argo Rollouts' HPAReplicas) and status.selector say what a
HorizontalPodAutoscaler needs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from e2e.fixtures import given, then, when
from e2e.fixtures.operator import OperatorProcess
from e2e.fixtures.world import Kubectl, eventually

pytestmark = pytest.mark.cluster


def _held_at_half(body: dict[str, Any]) -> None:
    body["spec"].pop("smokeTest", None)
    body["spec"]["strategy"]["canary"]["steps"] = [{"setWeight": 50}, {"pause": {}}]


def _scale_view(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    path = f"/apis/modelrollout.io/v1alpha1/namespaces/{namespace}/modeldeployments/{name}/scale"
    scale: dict[str, Any] = json.loads(kubectl("get", "--raw", path).stdout)
    return scale


def test_kubectl_scale_when_serving_and_mid_canary(kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> None:
    name = given.model_deployment(kubectl, namespace, given.example("canary-gateway-api"), change=_held_at_half)
    stable = then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)["stableRevision"]

    kubectl("scale", "-n", namespace, f"mdep/{name}", "--replicas=6")
    eventually(lambda: then.deployments(kubectl, namespace, name) == {stable: 6}, 60, what="6 stable pods")
    serving = eventually(lambda: (s := then.status(kubectl, namespace, name)).get("replicas") == 6 and s, 30,
                         what="status.replicas 6")
    assert serving["stableRevision"] == stable and serving.get("canaryRevision") is None, "no new revision"
    assert serving["selector"] == f"modelrollout.io/name={name}"
    scale = _scale_view(kubectl, namespace, name)
    assert (scale["spec"]["replicas"], scale["status"]["replicas"]) == (6, 6)
    assert scale["status"]["selector"] == f"modelrollout.io/name={name}"

    when.new_version(kubectl, namespace, name, "1.1.0")
    paused = then.phase_becomes(kubectl, namespace, name, "Paused", 90)
    canary = paused["canaryRevision"]
    assert paused["canaryWeight"] == 50
    kubectl("scale", "-n", namespace, f"mdep/{name}", "--replicas=4")
    # Stable keeps the new total while the GPU budget allows; the canary runs 50 % of it beside.
    eventually(lambda: then.deployments(kubectl, namespace, name) == {stable: 4, canary: 2}, 60,
               what="4 stable pods and 2 canary pods, 50 % of 4")
    after = eventually(lambda: (s := then.status(kubectl, namespace, name)).get("replicas") == 6 and s, 30,
                       what="status.replicas 6: the pods answering requests, stable and canary")
    assert (after["phase"], after["canaryRevision"], after["canaryWeight"]) == ("Paused", canary, 50)
