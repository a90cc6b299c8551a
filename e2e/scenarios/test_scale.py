"""The scale subresource: `kubectl scale` sets spec.replicas in any phase, never starts a
rollout, and mid-canary both tracks follow the new total at the current weight; status.replicas
(the pods answering requests, as Argo Rollouts' HPAReplicas) and status.selector say what a
HorizontalPodAutoscaler needs."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from e2e.fixtures import given, then, when
from e2e.fixtures.operator import OperatorProcess
from e2e.fixtures.world import Kubectl, eventually, get_json

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


def _judged_at_half(body: dict[str, Any]) -> None:
    body["spec"].pop("smokeTest", None)
    body["spec"]["strategy"]["canary"]["steps"] = [{"setWeight": 50}, {"analyze": {"duration": "10m"}}]


def test_kubectl_scale_to_zero_ends_traffic_and_pauses_the_rollout(kubectl: Kubectl, namespace: str,
                                                                   operator: OperatorProcess) -> None:
    name = given.model_deployment(kubectl, namespace, given.example("canary-gateway-api"), change=_judged_at_half)
    stable = then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)["stableRevision"]
    when.new_version(kubectl, namespace, name, "1.1.0")
    canary = eventually(lambda: (s := then.status(kubectl, namespace, name)).get("canaryWeight") == 50 and s, 90,
                        what="the canary at 50 %")["canaryRevision"]

    kubectl("scale", "-n", namespace, f"mdep/{name}", "--replicas=0")
    paused = eventually(lambda: (s := then.status(kubectl, namespace, name)).get("pauseReason") == "ScaledToZero"
                        and s, 30, what="the rollout paused ScaledToZero")
    assert (paused["phase"], paused["canaryRevision"]) == ("Paused", canary)
    eventually(lambda: then.deployments(kubectl, namespace, name) == {stable: 0, canary: 0}, 30,
               what="no pod of either revision")
    assert then.route_weights(kubectl, namespace, name).get(f"{name}-canary", 0) == 0, "the route back on stable"
    eventually(lambda: not get_json(kubectl, "pods", "-n", namespace, "-l", f"modelrollout.io/name={name}")["items"],
               60, what="every pod gone: traffic has ended")
    time.sleep(20)  # two analysis intervals: nothing is judged and nothing fails while at zero
    held = then.status(kubectl, namespace, name)
    assert (held["phase"], held["pauseReason"], held["canaryRevision"]) == ("Paused", "ScaledToZero", canary)
    assert [h["outcome"] for h in held["history"]] == ["Promoted"], "no rollback at zero"

    kubectl("scale", "-n", namespace, f"mdep/{name}", "--replicas=4")
    resumed = eventually(lambda: (s := then.status(kubectl, namespace, name)).get("canaryWeight") == 50
                         and s.get("phase") == "Progressing" and s, 120, what="the step resumed at 50 %")
    assert (resumed["canaryRevision"], resumed["stableRevision"]) == (canary, stable)
    assert then.deployments(kubectl, namespace, name) == {stable: 4, canary: 2}
