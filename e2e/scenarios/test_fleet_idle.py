"""CI's scale smoke test: 200 idle ModelDeployments cost the API server about nothing (no polling, no LIST).

The fleet is created in bulk (pods that stay kwok fakes, made Ready by the pod runner, some on a
GPU pool) and left alone. The API server's own `apiserver_request_total` is read over a window with
the operator running, then over as long a window with it stopped; the difference is the operator's.
It must be at most 0.01 requests/s per idle object, and the operator's own count of its requests
(`modelrollout_kube_requests_total`) must show no LIST at all. `make bench-scale` runs the full
1,000 (bench/scale.py).
"""

from __future__ import annotations

import time

import pytest

from e2e.fixtures import apiserver, given, then
from e2e.fixtures.operator import OperatorProcess
from e2e.fixtures.world import Kubectl, eventually

pytestmark = pytest.mark.cluster

OBJECTS = 200
ON_GPUS = 8
WINDOW_S = 30.0
"""At 0.01/s per object the budget is 60 requests a window: one poll of every object (200) misses it."""
PER_OBJECT_MAX = 0.01


def test_idle_model_deployments_cost_the_api_server_about_nothing(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> None:
    names = given.apply_all(kubectl, namespace,
                            [given.idle(f"idle-{i:03d}", on_gpus=i < ON_GPUS) for i in range(OBJECTS)])

    def all_succeeded() -> bool | None:
        phases = [s.get("phase") for s in then.status_of_all(kubectl, namespace).values()]
        return True if phases.count("Succeeded") == OBJECTS else None

    eventually(all_succeeded, 300, interval=3.0, what=f"{OBJECTS} ModelDeployments Succeeded")
    time.sleep(12)  # the first ticks after the last write are spread over 10 s; let them pass

    ours_before = apiserver.parse_own_requests(operator.metrics())
    with_operator = apiserver.over_window(lambda: apiserver.server_requests(kubectl), WINDOW_S)
    ours = apiserver.parse_own_requests(operator.metrics())
    ours.subtract(ours_before)
    operator.stop()
    try:
        background = apiserver.over_window(lambda: apiserver.server_requests(kubectl), WINDOW_S)
    finally:
        operator.start()

    window = apiserver.Window(with_operator, background, WINDOW_S)
    per_object = window.per_second / OBJECTS
    report = (f"{OBJECTS} idle objects: {per_object:.4f}/s per object; operator's own: {dict(ours)}; "
              f"LIST (with, without) {window.lists()}\n{window.describe()}")
    print(report)
    assert per_object <= PER_OBJECT_MAX, report
    assert ours.get("LIST", 0) == 0, report
    assert sum(ours.values()) / WINDOW_S / OBJECTS <= PER_OBJECT_MAX, report
    phases = {n: s.get("phase") for n, s in then.status_of_all(kubectl, namespace).items()}
    assert all(phases.get(n) == "Succeeded" for n in names), phases
