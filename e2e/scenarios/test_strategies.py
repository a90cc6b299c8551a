"""Blue-green and shadow end to end, with traffic as the load generator (a stand-in gateway) sends it."""

from __future__ import annotations

from typing import Any

import pytest

from e2e.fixtures import given, then, when
from e2e.fixtures.operator import OperatorProcess
from e2e.fixtures.world import Kubectl, Prometheus, eventually

pytestmark = pytest.mark.cluster


def loadgen(prometheus: Prometheus, metric: str, namespace: str) -> dict[str, float]:
    query = f'sum by (backend) ({metric}{{namespace="{namespace}"}})'
    return {s["metric"].get("backend", ""): float(s["value"][1]) for s in prometheus.query(query)}


def test_blue_green_previews_without_user_traffic_switches_at_once_and_keeps_the_old_pods(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess, prometheus: Prometheus) -> None:
    def short(body: dict[str, Any]) -> None:
        body["spec"]["strategy"]["blueGreen"] = {"autoPromote": True, "scaleDownDelay": "40s",
                                                 "prePromotionAnalysis": {"duration": "20s"}}

    name = given.model_deployment(kubectl, namespace, given.example("blue-green"), rps=80, change=short)
    old = then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)["stableRevision"]
    when.new_version(kubectl, namespace, name, "2.0.0")
    new = then.phase_becomes(kubectl, namespace, name, "Progressing", 60)["canaryRevision"]
    eventually(lambda: then.deployments(kubectl, namespace, name).get(new) == 2, 60, what="a full-size preview")

    def switched() -> dict[str, Any] | None:
        current = then.status(kubectl, namespace, name)
        return current if current.get("stableRevision") == new else None

    weights_seen: set[tuple[tuple[str, int], ...]] = set()

    def watch_switch() -> dict[str, Any] | None:
        weights_seen.add(tuple(sorted(then.route_weights(kubectl, namespace, name).items())))
        return switched()

    eventually(watch_switch, 120, interval=0.5, what="the switch")
    # Before the switch users only ever reached stable: the route never split between the two.
    assert weights_seen <= {((f"{name}-stable", 100),), ((f"{name}-preview", 0), (f"{name}-stable", 100))}
    users = loadgen(prometheus, "loadgen_requests_total", namespace)
    assert users.get(f"{name}-preview", 0) == 0
    # The old revision keeps its pods for scaleDownDelay, then goes.
    assert then.deployments(kubectl, namespace, name).get(old) == 2
    eventually(lambda: old not in then.deployments(kubectl, namespace, name), 120, what="old pods gone after the delay")
    done = then.phase_becomes(kubectl, namespace, name, "Succeeded", 60)
    assert done["history"][-1]["outcome"] == "Promoted"
    served = then.requests_by_revision(prometheus, namespace, name)
    assert served.get(new, 0) > 0


def test_shadow_mirrors_only_then_hands_over_to_canary(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess, prometheus: Prometheus) -> None:
    def short(body: dict[str, Any]) -> None:
        body["spec"]["strategy"]["shadow"]["duration"] = "30s"
        body["spec"]["strategy"]["canary"]["steps"] = [{"setWeight": 25}, {"analyze": {"duration": "20s"}}]

    name = given.model_deployment(kubectl, namespace, given.example("shadow"), rps=80, change=short)
    then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)
    when.new_version(kubectl, namespace, name, "2.0.0")
    candidate = then.phase_becomes(kubectl, namespace, name, "Progressing", 60)["canaryRevision"]

    def mirrored() -> dict[str, float] | None:
        copies = loadgen(prometheus, "loadgen_mirrored_total", namespace)
        return copies if copies.get(f"{name}-shadow", 0) >= 200 else None

    eventually(mirrored, 90, what="mirrored copies reaching the shadow")
    assert loadgen(prometheus, "loadgen_requests_total", namespace).get(f"{name}-shadow", 0) == 0
    status = then.status(kubectl, namespace, name)
    assert status.get("mirrorPercent") == 100 and not status.get("canaryWeight")
    # It answers the copies; the shadow now gets them as soon as its pod is Ready (a watch wakes the
    # rollout), which can be before Prometheus's first scrape of that pod.
    eventually(lambda: then.requests_by_revision(prometheus, namespace, name).get(candidate, 0) > 0, 45,
               what="the shadow's own count of the copies in Prometheus")

    eventually(lambda: then.route_weights(kubectl, namespace, name).get(f"{name}-canary") == 25, 120,
               what="handed over to the canary at 25 %")
    done = then.phase_becomes(kubectl, namespace, name, "Succeeded", 120)
    assert done["stableRevision"] == candidate
