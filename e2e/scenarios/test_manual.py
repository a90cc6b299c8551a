"""People steer rollouts with `kubectl modelrollout`: pause waits, promote goes on, abort and undo
roll back; an update in the middle of a canary starts over from stable."""

from __future__ import annotations

from typing import Any

import pytest

from e2e.fixtures import argocd, given, then, when
from e2e.fixtures.operator import OperatorProcess
from e2e.fixtures.world import Kubectl, WorldInfo, eventually, get_json

pytestmark = pytest.mark.cluster


def short_manual(body: dict[str, Any]) -> None:
    body["spec"]["strategy"]["canary"]["steps"] = [
        {"setWeight": 20}, {"analyze": {"duration": "30s"}}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]


def canary_weight(kubectl: Kubectl, namespace: str, name: str) -> int:
    return then.route_weights(kubectl, namespace, name).get(f"{name}-canary", 0)


def test_pause_waits_promote_goes_on_abort_rolls_back(
        kubectl: Kubectl, world: WorldInfo, namespace: str, operator: OperatorProcess) -> None:
    name = given.model_deployment(kubectl, namespace, given.example("canary-manual"), rps=150, change=short_manual)
    stable = then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)["stableRevision"]
    when.new_version(kubectl, namespace, name, "1.1.0")

    # 30 canary requests/s for 30 s show the 1 % SLO with room; at 12/s the analysis could end
    # inconclusive on a loaded machine and pause for that reason instead.
    paused = then.phase_becomes(kubectl, namespace, name, "Paused", 200)
    assert paused["pauseReason"] == "AwaitingPromotion" and paused["currentStep"] == 2
    assert canary_weight(kubectl, namespace, name) == 20
    # It keeps waiting: a later look finds the same step.
    eventually(lambda: then.status(kubectl, namespace, name).get("currentStep") == 2, 5)
    status = when.plugin(world, "status", name, "-n", namespace)
    assert status.returncode == 0, status.stderr
    assert "pause (until promoted)" in status.stdout and "AwaitingPromotion" in status.stdout
    suspended = argocd.health(get_json(kubectl, "mdep", name, "-n", namespace),
                              record_as="e2e-paused-awaiting-promotion")
    assert suspended["status"] == "Suspended", suspended

    promoted = when.plugin(world, "promote", name, "-n", namespace)
    assert promoted.returncode == 0, promoted.stderr
    eventually(lambda: canary_weight(kubectl, namespace, name) == 50, 60, what="50 % after promote")
    then.phase_becomes(kubectl, namespace, name, "Paused", 60)

    aborted = when.plugin(world, "abort", name, "-n", namespace)
    assert aborted.returncode == 0, aborted.stderr
    done = then.phase_becomes(kubectl, namespace, name, "RolledBack", 60)
    assert done["stableRevision"] == stable
    assert done["history"][-1]["outcome"] == "Aborted"
    assert done["lastCommand"]["verb"] == "abort" and done["lastCommand"]["accepted"] is True
    assert then.route_weights(kubectl, namespace, name).get(f"{name}-canary", 0) == 0
    aborted_health = argocd.health(get_json(kubectl, "mdep", name, "-n", namespace), record_as="e2e-aborted")
    assert aborted_health["status"] == "Degraded" and "aborted" in aborted_health["message"], aborted_health


def test_undo_returns_to_the_previous_revision(
        kubectl: Kubectl, world: WorldInfo, namespace: str, operator: OperatorProcess) -> None:
    def quick(body: dict[str, Any]) -> None:
        body["spec"]["strategy"]["canary"]["steps"] = [{"setWeight": 50}, {"pause": {"duration": "5s"}}]

    name = given.model_deployment(kubectl, namespace, given.example("canary-manual"), rps=40, change=quick)
    first = then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)["stableRevision"]
    when.new_version(kubectl, namespace, name, "1.1.0")
    second = eventually(lambda: (s := then.status(kubectl, namespace, name)).get("stableRevision") != first
                        and s.get("phase") == "Succeeded" and s, 120, what="1.1.0 promoted")["stableRevision"]

    undone = when.plugin(world, "undo", name, "-n", namespace)
    assert undone.returncode == 0, undone.stderr
    back = eventually(lambda: (s := then.status(kubectl, namespace, name)).get("stableRevision") == first
                      and s.get("phase") in ("Succeeded", "RolledBack") and s, 120, what="back to the first revision")
    assert second in back["rejectedRevisions"]
    eventually(lambda: set(then.deployments(kubectl, namespace, name)) == {first}, 60, what="only the first runs")
    history = when.plugin(world, "history", name, "-n", namespace)
    assert history.returncode == 0 and second in history.stdout


def test_update_during_canary_starts_over_with_the_newest(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> None:
    def slow(body: dict[str, Any]) -> None:
        body["spec"]["strategy"]["canary"]["steps"] = [{"setWeight": 20}, {"pause": {"duration": "10m"}}]

    name = given.model_deployment(kubectl, namespace, given.example("canary-manual"), rps=40, change=slow)
    stable = then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)["stableRevision"]
    when.new_version(kubectl, namespace, name, "1.1.0")
    middle = eventually(lambda: (s := then.status(kubectl, namespace, name)).get("canaryWeight") == 20 and s, 90,
                        what="the first canary at 20 %")["canaryRevision"]

    when.new_version(kubectl, namespace, name, "1.2.0")
    newest = eventually(lambda: (s := then.status(kubectl, namespace, name)).get("canaryRevision")
                        not in (None, middle) and s, 60, what="a new candidate")
    assert newest["stableRevision"] == stable
    assert newest["currentStep"] in (0, 1)
    assert any(h["revision"] == middle and h["outcome"] == "Superseded" for h in newest["history"])
    eventually(lambda: middle not in then.deployments(kubectl, namespace, name), 60, what="the old candidate gone")
    eventually(lambda: then.status(kubectl, namespace, name).get("canaryWeight") == 20, 90,
               what="the newest candidate at 20 %")
