"""An idle ModelDeployment costs the API server about nothing: no polling, no LIST.

N ModelDeployments are rolled out (pods that stay kwok fakes, made Ready by the pod runner, some
on a GPU pool) and left alone. The API server's own `apiserver_request_total` is read over a
minute with the operator running, then over the same time with it stopped; the difference is
the operator's. It must be at most 0.01 requests/s per idle object, and the operator's own
count of its requests (`modelrollout_kube_requests_total`) must show no LIST at all.
"""

from __future__ import annotations

import copy
import re
import time
from collections import Counter
from typing import Any

import pytest

from e2e.fixtures import given, then
from e2e.fixtures.operator import OperatorProcess
from e2e.fixtures.world import Kubectl, eventually

pytestmark = pytest.mark.cluster

OBJECTS = 30
ON_GPUS = 8
WINDOW_S = 60.0
PER_OBJECT_MAX = 0.01
NOT_OURS = {"leases"}
"""Node and controller heartbeats: the largest background, and nothing the operator touches."""
_SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$", re.MULTILINE)
_OURS = re.compile(r'^modelrollout_kube_requests_total\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$', re.MULTILINE)


def idle(index: int) -> dict[str, Any]:
    body = copy.deepcopy(given.example("canary-replica-ratio"))
    body["metadata"] = {"name": f"idle-{index:03d}"}
    body["spec"]["replicas"] = 1
    template = body["spec"]["template"]
    template["metadata"] = {"annotations": {"e2e.modelrollout.io/run": "none"}}
    if index < ON_GPUS:
        body["spec"]["gpuPool"] = {"nodeSelector": {"modelrollout.io/pool": "a100"}, "resource": "nvidia.com/gpu",
                                   "maxExtraGPUs": 1}
        template["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": 1}}
        template["spec"]["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    return body


def _labels(text: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', text))


def server_requests(kubectl: Kubectl) -> Counter[tuple[str, str]]:
    """apiserver_request_total by (verb, resource), heartbeats left out."""
    text = kubectl("get", "--raw", "/metrics").stdout
    out: Counter[tuple[str, str]] = Counter()
    for match in _SAMPLE.finditer(text):
        found = _labels(match["labels"])
        if found.get("resource") not in NOT_OURS:
            out[(found.get("verb", ""), found.get("resource", ""))] += int(float(match["value"]))
    return out


def own_requests(operator: OperatorProcess) -> Counter[str]:
    out: Counter[str] = Counter()
    for match in _OURS.finditer(operator.metrics()):
        out[_labels(match["labels"]).get("verb", "")] += int(float(match["value"]))
    return out


def over_window(kubectl: Kubectl, seconds: float) -> Counter[tuple[str, str]]:
    before = server_requests(kubectl)
    time.sleep(seconds)  # a measurement window, not a wait for a state
    after = server_requests(kubectl)
    after.subtract(before)
    return after


def test_idle_model_deployments_cost_the_api_server_about_nothing(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> None:
    names = [given.model_deployment(kubectl, namespace, idle(i)) for i in range(OBJECTS)]

    def all_succeeded() -> bool | None:
        phases = [s.get("phase") for s in then.status_of_all(kubectl, namespace).values()]
        return True if phases.count("Succeeded") == OBJECTS else None

    eventually(all_succeeded, 240, interval=2.0, what=f"{OBJECTS} ModelDeployments Succeeded")
    time.sleep(15)  # let the last writes and wake-ups settle before measuring

    ours_before = own_requests(operator)
    with_operator = over_window(kubectl, WINDOW_S)
    ours = own_requests(operator)
    ours.subtract(ours_before)
    operator.stop()
    try:
        background = over_window(kubectl, WINDOW_S)
    finally:
        operator.start()

    total_with, total_without = sum(with_operator.values()), sum(background.values())
    per_object = max(0, total_with - total_without) / WINDOW_S / OBJECTS
    lists = sum(n for (verb, _), n in with_operator.items() if verb == "LIST")
    lists_background = sum(n for (verb, _), n in background.items() if verb == "LIST")
    report = (f"{OBJECTS} idle objects over {WINDOW_S:.0f} s: {total_with} requests with the operator, "
              f"{total_without} without; {per_object:.4f}/s per object; operator's own: {dict(ours)}; "
              f"LIST {lists} with, {lists_background} without\n"
              f"more with the operator: {sorted((with_operator - background).items())}\n"
              f"background: {background.most_common(8)}")
    print(report)
    assert per_object <= PER_OBJECT_MAX, report
    assert ours.get("LIST", 0) == 0, report
    assert sum(ours.values()) / WINDOW_S / OBJECTS <= PER_OBJECT_MAX, report
    assert all(then.status(kubectl, namespace, n).get("phase") == "Succeeded" for n in names)
