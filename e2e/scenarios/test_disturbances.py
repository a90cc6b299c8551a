"""A rollout under disturbance ends as it would without it:

- another writer patches the ModelDeployment's labels and annotations and the Deployments'
  unrelated fields every 100 ms: nothing is aborted, stuck or rolled back, no step repeats;
- the API server is restarted mid-analysis: the operator's watches come back and it goes on;
- the ModelDeployment is deleted mid-analysis and created again under the same name: the new
  object starts from scratch (no history, no analysis window of the old one).
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from e2e.fixtures import given, then, when
from e2e.fixtures.operator import OperatorProcess
from e2e.fixtures.trail import StatusTrail
from e2e.fixtures.world import Kubectl, WorldInfo, eventually

pytestmark = pytest.mark.cluster

GROUP, VERSION, PLURAL = "modelrollout.io", "v1alpha1", "modeldeployments"


class ConcurrentWriter:
    """Patches fields the operator does not own, every `period` seconds, on its own thread."""

    def __init__(self, world: WorldInfo, namespace: str, name: str, period: float = 0.1) -> None:
        settings = client.Configuration()
        config.load_kube_config(config_file=str(world.kubeconfig), client_configuration=settings)  # type: ignore[no-untyped-call, unused-ignore]
        api = client.ApiClient(settings)
        self.custom, self.apps = client.CustomObjectsApi(api), client.AppsV1Api(api)
        self.namespace, self.name, self.period = namespace, name, period
        self.writes = self.refused = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ConcurrentWriter:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        for n in itertools.count():
            if self.stopping.wait(self.period):
                return
            mark = {"metadata": {"labels": {"team-tick": str(n % 7)},
                                 "annotations": {"example.com/touched": str(n)}}}
            try:
                self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, self.name, mark)
                self.writes += 1
                for deployment in self.apps.list_namespaced_deployment(
                        self.namespace, label_selector=f"modelrollout.io/name={self.name}").items:
                    self.apps.patch_namespaced_deployment(deployment.metadata.name, self.namespace, {
                        "metadata": {"annotations": {"example.com/touched": str(n)}},
                        "spec": {"revisionHistoryLimit": 3 + n % 5}})
                    self.writes += 1
            except ApiException:
                self.refused += 1  # a Deployment removed between the list and the patch


def test_a_concurrent_writer_changes_no_outcome(
        world: WorldInfo, kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> None:
    name = given.model_deployment(kubectl, namespace, given.example("canary-gateway-api"), rps=100,
                                  change=given.short_canary)
    then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)
    trail = StatusTrail(world, namespace, name)
    try:
        with ConcurrentWriter(world, namespace, name) as writer:
            when.new_version(kubectl, namespace, name, "1.1.0")
            candidate = then.phase_becomes(kubectl, namespace, name, "Progressing", 60)["canaryRevision"]
            done = then.phase_becomes(kubectl, namespace, name, "Succeeded", 240)
    finally:
        trail.stop()
    print(f"\nconcurrent writer: {writer.writes} patches, {writer.refused} refused")
    assert writer.writes >= 200, writer.writes  # it really wrote all along the rollout
    assert done["history"][-1]["outcome"] == "Promoted" and done["history"][-1]["revision"] == candidate
    assert not any(h["outcome"] in ("Aborted", "RolledBack") for h in done["history"]), done["history"]
    steps = trail.steps_of(candidate)
    assert steps == list(range(steps[-1] + 1)) and steps[-1] >= 3, f"a step was repeated or skipped: {steps}"
    labels = then.deployments(kubectl, namespace, name)
    assert {r for r, n in labels.items() if n > 0} == {candidate}


def test_the_api_server_restarted_mid_analysis(
        world: WorldInfo, kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> None:
    if world.local is None:
        pytest.skip("restarting the API server needs the local world (kind runs it in a container)")
    local = world.local
    name = given.model_deployment(kubectl, namespace, given.example("canary-gateway-api"), rps=100,
                                  change=given.short_canary)
    then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)
    when.new_version(kubectl, namespace, name, "1.1.0")
    eventually(lambda: then.status(kubectl, namespace, name).get("canaryWeight") == 10, 90, what="10 % canary")
    restarts_before = sum_samples(operator, "modelrollout_watch_restarts_total")
    local.restart_apiserver()
    # The operator's watches broke with the connection and are opened again.
    eventually(lambda: sum_samples(operator, "modelrollout_watch_restarts_total") > restarts_before, 60,
               what="the operator's watches opened again")
    done = then.phase_becomes(kubectl, namespace, name, "Succeeded", 240)
    assert done["history"][-1]["outcome"] == "Promoted"
    assert operator.alive(), operator.log_tail()


def sum_samples(operator: OperatorProcess, metric: str) -> float:
    total = 0.0
    for line in operator.metrics().splitlines():
        if line.startswith((metric + "{", metric + " ")):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_deleted_and_recreated_mid_analysis_starts_from_scratch(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> None:
    body = given.example("canary-gateway-api")
    name = given.model_deployment(kubectl, namespace, body, rps=100, change=given.short_canary)
    old_stable = then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)["stableRevision"]
    when.new_version(kubectl, namespace, name, "1.1.0")
    eventually(lambda: any(a.get("samples") for a in then.status(kubectl, namespace, name).get("analysis", [])),
               90, what="an analysis with evidence")
    old_uid = kubectl("get", "mdep", name, "-n", namespace, "-o", "jsonpath={.metadata.uid}").stdout
    kubectl("delete", "mdep", name, "-n", namespace, "--wait=true", "--timeout=60s")
    eventually(lambda: not then.deployments(kubectl, namespace, name), 60, what="the old Deployments collected")

    given.model_deployment(kubectl, namespace, body, rps=100, change=given.short_canary)
    uid = kubectl("get", "mdep", name, "-n", namespace, "-o", "jsonpath={.metadata.uid}").stdout
    assert uid != old_uid
    fresh = then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)
    assert fresh["stableRevision"] == old_stable  # the same spec makes the same revision
    assert [h["revision"] for h in fresh.get("history", [])] == [old_stable], fresh.get("history")
    assert not fresh.get("canaryRevision") and not fresh.get("analysis"), fresh

    # Its first rollout's analysis counts only what came after it started.
    started = time.monotonic()
    when.new_version(kubectl, namespace, name, "1.2.0")

    def first_evidence() -> dict[str, Any] | None:
        found = [a for a in then.status(kubectl, namespace, name).get("analysis", []) if a.get("samples")]
        return found[0] if found else None

    evidence = eventually(first_evidence, 90, what="the new object's first evidence")
    # 100 requests/s over the time since the rollout started, with a scrape of slack: an analysis
    # window left over from the deleted object would hold far more.
    most = 100 * (time.monotonic() - started + 30)
    assert evidence["samples"] <= most, (evidence, most)
    assert then.phase_becomes(kubectl, namespace, name, "Succeeded", 240)["history"][-1]["outcome"] == "Promoted"
