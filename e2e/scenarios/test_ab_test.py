"""A/B tests end to end: examples/ab-test.yaml with the load generator drawing the cohort header on
30 % of the requests, the model server converting at OUTCOME_RATE, and the operator routing the
cohort by the HTTPRoute's header match and judging the challenger on Prometheus's counts."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from e2e.fixtures import given, then, when
from e2e.fixtures.operator import OperatorProcess
from e2e.fixtures.world import Kubectl, Prometheus, eventually, get_json

pytestmark = pytest.mark.cluster

HEADERS_ANNOTATION = "e2e.modelrollout.io/headers"
RPS = 100
COHORT = 30
"""Percent of the requests that carry x-cohort: b."""
SCRAPE_S = 15
"""The longest scrape interval of the load generator's and model servers' series in the world."""


def _ab_test(duration: str) -> Any:
    def change(body: dict[str, Any]) -> None:
        body["metadata"]["annotations"][HEADERS_ANNOTATION] = f"x-cohort=b@{COHORT}"
        body["spec"]["strategy"]["abTest"]["duration"] = duration
    return change


def _on_istio(body: dict[str, Any]) -> None:
    body["spec"]["traffic"] = {"provider": "Istio", "istio": {"hosts": [body["metadata"]["name"]]}}


def _started(kubectl: Kubectl, namespace: str, duration: str, istio: bool = False) -> tuple[str, str]:
    body = given.set_env(given.example("ab-test"), OUTCOME_RATE="0.04")
    if istio:
        _on_istio(body)
    name = given.model_deployment(kubectl, namespace, body, rps=RPS, change=_ab_test(duration))
    stable = then.phase_becomes(kubectl, namespace, name, "Succeeded", 120)["stableRevision"]
    return name, stable


def _sent(prometheus: Prometheus, namespace: str) -> dict[tuple[str, str], float]:
    """The load generator's requests so far, by (backend, tagged)."""
    query = f'sum by (backend, tagged) (loadgen_requests_total{{namespace="{namespace}"}})'
    return {(s["metric"].get("backend", ""), s["metric"].get("tagged", "")): float(s["value"][1])
            for s in prometheus.query(query)}


def _cohort_routed(kubectl: Kubectl, namespace: str, name: str) -> bool:
    rules = get_json(kubectl, "httproute", name, "-n", namespace)["spec"]["rules"]
    return len(rules) == 2 and bool(rules[0].get("matches"))


def test_a_better_challenger_gets_only_the_cohort_wins_and_is_promoted(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess, prometheus: Prometheus) -> None:
    name, stable = _started(kubectl, namespace, "6m")
    when.new_version(kubectl, namespace, name, "2.0.0", OUTCOME_RATE="0.06")
    challenger = then.phase_becomes(kubectl, namespace, name, "Progressing", 60)["canaryRevision"]
    eventually(lambda: _cohort_routed(kubectl, namespace, name), 120, what="the cohort rule in the HTTPRoute")

    # Tagged requests reach only the challenger, untagged ones only stable: the load generator's
    # counts with the cohort rule in place, from two scrapes after it took effect (it reads routes
    # every second; Prometheus scrapes every 15 s by default).
    time.sleep(2 * SCRAPE_S + 2)
    before = eventually(lambda: _sent(prometheus, namespace) or None, 30, what="loadgen counters")
    eventually(lambda: then.status(kubectl, namespace, name).get("phase") != "Progressing"
               or _sent(prometheus, namespace).get((f"{name}-canary", "yes"), 0)
               >= before.get((f"{name}-canary", "yes"), 0) + 600, 120, what="600 cohort requests")
    after = _sent(prometheus, namespace)
    delta = {key: after.get(key, 0.0) - before.get(key, 0.0) for key in after}
    assert delta.get((f"{name}-canary", "yes"), 0) >= 600, delta
    assert delta.get((f"{name}-stable", "yes"), 0) == 0, delta
    assert delta.get((f"{name}-canary", "no"), 0) == 0, delta
    # and by track, as the model servers count what they answered
    share = prometheus.scalar(
        f'sum(rate(model_requests_total{{namespace="{namespace}",modeldeployment="{name}",track="canary"}}[1m]))'
        f' / sum(rate(model_requests_total{{namespace="{namespace}",modeldeployment="{name}"}}[1m]))')
    assert share is not None and abs(share - COHORT / 100) < 0.08, share

    done = then.phase_becomes(kubectl, namespace, name, "Succeeded", 420)
    assert done["stableRevision"] == challenger != stable
    assert done["history"][-1]["outcome"] == "Promoted"
    won = [e["message"] for e in then.events(kubectl, namespace, name) if e["reason"] == "ChallengerWon"]
    assert len(won) == 1, won
    # the interval at the win lies above 1 + minimumEffect
    lower = float(re.search(r"CS \[([0-9.]+),", won[0]).group(1))  # type: ignore[union-attr]
    assert lower > 1.02, won
    # status.analysis keeps the goal's last evidence (from the promotion's ticks, on more data)
    goal = next(entry for entry in done.get("analysis", []) if entry["metric"] == "conversion (goal)")
    assert goal["verdict"] == "Pass" and goal["ratio"] > 1.02 and goal["interval"]["lower"] >= 1.0, goal


def test_a_challenger_no_better_is_not_promoted(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess, prometheus: Prometheus) -> None:
    name, stable = _started(kubectl, namespace, "90s")
    when.new_version(kubectl, namespace, name, "2.0.0", OUTCOME_RATE="0.04")
    challenger = then.phase_becomes(kubectl, namespace, name, "Progressing", 60)["canaryRevision"]
    done = then.phase_becomes(kubectl, namespace, name, "RolledBack", 300)
    assert done["stableRevision"] == stable
    last = done["history"][-1]
    assert last["revision"] == challenger and last["outcome"] == "RolledBack"
    assert last["reason"].startswith(("Undecided", "ChallengerLost")), last
    if last["reason"].startswith("Undecided"):
        assert "undecided after 1m30s" in last["reason"] and "CS [" in last["reason"], last
    assert challenger in done["rejectedRevisions"]
    eventually(lambda: not _cohort_routed(kubectl, namespace, name), 30, what="the cohort rule gone")


def test_a_better_challenger_with_errors_is_rolled_back_by_the_guardrail(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess, prometheus: Prometheus) -> None:
    name, stable = _started(kubectl, namespace, "6m")
    when.new_version(kubectl, namespace, name, "2.0.0", OUTCOME_RATE="0.08", FAULT_ERROR_RATE="0.2")
    then.phase_becomes(kubectl, namespace, name, "Progressing", 60)
    done = then.phase_becomes(kubectl, namespace, name, "RolledBack", 300)
    assert done["stableRevision"] == stable
    assert done["history"][-1]["reason"].startswith("AnalysisFailed"), done["history"][-1]
    assert "error-rate" in done["history"][-1]["reason"]


def test_on_istio_the_cohort_goes_only_to_the_challenger(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess, prometheus: Prometheus) -> None:
    """The same routing through a VirtualService: a first `http` entry, named cohort, that matches
    the header and sends only to the challenger; every other request to stable."""
    name, _ = _started(kubectl, namespace, "6m", istio=True)
    when.new_version(kubectl, namespace, name, "2.0.0", OUTCOME_RATE="0.06")
    then.phase_becomes(kubectl, namespace, name, "Progressing", 60)

    def cohort_entry() -> dict[str, Any] | None:
        http = get_json(kubectl, "virtualservice", name, "-n", namespace)["spec"]["http"]
        return http[0] if len(http) == 2 and http[0].get("name") == "cohort" else None

    entry = eventually(cohort_entry, 120, what="the cohort entry in the VirtualService")
    assert entry["match"][0] == {"headers": {"x-cohort": {"exact": "b"}}}, entry
    assert "regex" in entry["match"][1]["headers"]["cookie"], entry
    assert [r["destination"]["host"] for r in entry["route"]] == [f"{name}-canary.{namespace}.svc.cluster.local"], entry
    time.sleep(2 * SCRAPE_S + 2)
    before = eventually(lambda: _sent(prometheus, namespace) or None, 30, what="loadgen counters")
    eventually(lambda: _sent(prometheus, namespace).get((f"{name}-canary", "yes"), 0)
               >= before.get((f"{name}-canary", "yes"), 0) + 300, 90, what="300 cohort requests")
    after = _sent(prometheus, namespace)
    delta = {key: after.get(key, 0.0) - before.get(key, 0.0) for key in after}
    assert delta.get((f"{name}-stable", "yes"), 0) == 0, delta
    assert delta.get((f"{name}-canary", "no"), 0) == 0, delta
    assert delta.get((f"{name}-stable", "no"), 0) >= 300, delta
