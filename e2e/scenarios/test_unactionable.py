"""ModelDeployments the schema lets through but that cannot be acted on: the operator marks them
Degraded with a reason that names the problem, or holds, and never crashes."""

from __future__ import annotations

import json

import pytest
import yaml

from e2e.cluster.layout import REPO
from e2e.fixtures import then
from e2e.fixtures.operator import OperatorProcess
from e2e.fixtures.world import Kubectl

pytestmark = pytest.mark.cluster

CORPUS = REPO / "tests" / "api" / "unactionable"
OUTCOMES = {  # file -> (phase, Degraded reason or None, words status.message must contain)
    "coarse-replica-ratio": ("Succeeded", None, []),
    "invalid-pod-spec": ("Degraded", "InvalidSpec", ["restartPolicy"]),
    "invalid-promql": ("Degraded", "InvalidSpec", ["spec.analysis.metrics[0].query", "parse error"]),
    "missing-gateway": ("Succeeded", None, []),  # no controller here reports on routes: see the test below
    "missing-token-secret": ("Degraded", "InvalidSpec", ["bearerTokenSecret", "Secret"]),
    "pool-too-small": ("Degraded", "ProgressDeadlineExceeded",
                       ["3/4 pods ready", "1 stable pod Pending", "nvidia.com/gpu", "progressDeadline"]),
    "pool-without-nodes": ("Degraded", "ProgressDeadlineExceeded",
                           ["0/2 pods ready", "2 stable pods Pending", "progressDeadline"]),
    "unknown-preset-metric": ("Degraded", "InvalidSpec", ["gpu-temperature", "error-rate"]),
    "unknown-query-placeholder": ("Degraded", "InvalidSpec", ["spec.analysis.metrics[0].query", "{{pod}}"]),
}


def test_every_unactionable_file_says_what_it_should_lead_to() -> None:
    assert sorted(OUTCOMES) == sorted(p.stem for p in CORPUS.glob("*.yaml"))


def apply_corpus_file(kubectl: Kubectl, namespace: str, stem: str) -> str:
    body = yaml.safe_load((CORPUS / f"{stem}.yaml").read_text())
    body["metadata"]["namespace"] = namespace
    kubectl("apply", "-f", "-", input=yaml.safe_dump(body))
    return str(body["metadata"]["name"])


@pytest.mark.parametrize("stem", sorted(OUTCOMES))
def test_unactionable_input_is_reported_not_acted_on(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess, stem: str) -> None:
    name = apply_corpus_file(kubectl, namespace, stem)
    phase, reason, words = OUTCOMES[stem]
    status = then.phase_becomes(kubectl, namespace, name, phase, 90)
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    if reason is None:
        assert degraded["status"] == "False", status
    else:
        assert (degraded["status"], degraded["reason"]) == ("True", reason), status
    for word in words:
        assert word in status["message"], status["message"]
    assert operator.alive(), operator.log_tail()


def _controller_says(kubectl: Kubectl, namespace: str, name: str, accepted: str, reason: str, message: str) -> None:
    """Writes an HTTPRoute's status as a Gateway controller does, through the status subresource."""
    generation = int(kubectl("get", "httproute", name, "-n", namespace, "-o",
                             "jsonpath={.metadata.generation}").stdout)
    condition = {"type": "Accepted", "status": accepted, "reason": reason, "message": message,
                 "observedGeneration": generation, "lastTransitionTime": "2026-11-25T12:00:00Z"}
    status = {"parents": [{"parentRef": {"name": "no-such-gateway", "namespace": "gateways"},
                           "controllerName": "example.net/gateway", "conditions": [condition]}]}
    kubectl("patch", "httproute", name, "-n", namespace, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": status}))


def test_a_route_its_gateway_does_not_accept_holds_degraded_until_it_does(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> None:
    name = apply_corpus_file(kubectl, namespace, "missing-gateway")
    then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)

    missing = "Gateway gateways/no-such-gateway not found"
    _controller_says(kubectl, namespace, name, "False", "NoMatchingParent", missing)
    status = then.phase_becomes(kubectl, namespace, name, "Degraded", 60)
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "RouteNotAccepted"), status
    assert f"Accepted is False (NoMatchingParent: {missing})" in status["message"], status["message"]
    assert then.route_weights(kubectl, namespace, name) == {f"{name}-stable": 100}

    _controller_says(kubectl, namespace, name, "True", "Accepted", "Route is accepted")
    then.phase_becomes(kubectl, namespace, name, "Succeeded", 60)
