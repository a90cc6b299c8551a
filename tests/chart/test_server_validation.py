"""The real API server judges what the chart renders: every object of every values file passes a
server-side dry run with strict field validation, and the operator's pod is admitted by the
PodSecurity admission controller at level "restricted".

The e2e world has no Prometheus Operator, so its ServiceMonitor and PodMonitor kinds are the only
ones left out of the dry run (test_render.py checks them field by field); the test asserts that
they are the only ones left out.
"""

from __future__ import annotations

import copy
import json
import pathlib
from typing import Any

import pytest
import yaml

from e2e.fixtures.world import Kubectl

pytestmark = pytest.mark.cluster

VALUES_DIR = pathlib.Path(__file__).parent / "values"
VALUES = sorted(VALUES_DIR.glob("*.yaml"))
NOT_IN_THE_WORLD = {"ServiceMonitor", "PodMonitor"}
EXPECTED_LEFT_OUT = {"default": set(), "namespaced": set(), "tls-token": set(),
                     "monitoring": {"ServiceMonitor", "PodMonitor"}, "restricted": {"PodMonitor"}}


def render_for(chart: Any, values: pathlib.Path, namespace: str, **extra: Any) -> list[dict[str, Any]]:
    """The chart released into `namespace`; watched namespaces, if any, become ones that exist."""
    given = yaml.safe_load(values.read_text()) or {}
    set_json = {"watchNamespaces": [namespace, "default"]} if given.get("watchNamespaces") else {}
    objects: list[dict[str, Any]] = chart.render(values, namespace=namespace, release="chart-check",
                                                 set_json=set_json, **extra)
    return objects


@pytest.mark.parametrize("values", VALUES, ids=lambda p: p.stem)
def test_the_api_server_accepts_every_rendered_object(chart: Any, kubectl: Kubectl, namespace: str,
                                                      values: pathlib.Path) -> None:
    objects = render_for(chart, values, namespace, include_crds=True)
    kept = [o for o in objects if o["kind"] not in NOT_IN_THE_WORLD]
    left_out = {o["kind"] for o in objects} - {o["kind"] for o in kept}
    assert left_out == EXPECTED_LEFT_OUT[values.stem]
    assert "CustomResourceDefinition" in {o["kind"] for o in kept}
    result = kubectl("apply", "--server-side", "--dry-run=server", "--validate=strict", "--force-conflicts",
                     "--field-manager=chart-check", "-f", "-", input=yaml.safe_dump_all(kept), check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("(server dry run)") == len(kept), result.stdout
    assert "Warning" not in result.stderr, result.stderr


def test_the_api_server_refuses_a_broken_object(chart: Any, kubectl: Kubectl, namespace: str) -> None:
    """The dry run above can fail: an unknown field in the Deployment is refused."""
    objects = render_for(chart, VALUES_DIR / "default.yaml", namespace)
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    result = kubectl("apply", "--server-side", "--dry-run=server", "--validate=strict", "--field-manager=chart-check",
                     "-f", "-", input=yaml.safe_dump(deployment), check=False)
    assert result.returncode != 0
    assert "livenessProbes" in result.stderr


def pod_of(deployment: dict[str, Any], namespace: str) -> dict[str, Any]:
    template = copy.deepcopy(deployment["spec"]["template"])
    metadata = {"name": "operator-pod-check", "namespace": namespace, "labels": template["metadata"]["labels"]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}


@pytest.fixture
def restricted_namespace(kubectl: Kubectl, namespace: str) -> str:
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/enforce-version=latest")
    return namespace


@pytest.mark.parametrize("values", ["default", "tls-token", "restricted"])
def test_the_operator_pod_is_admitted_as_restricted(chart: Any, kubectl: Kubectl, restricted_namespace: str,
                                                    values: str) -> None:
    objects = render_for(chart, VALUES_DIR / f"{values}.yaml", restricted_namespace)
    account = next(o for o in objects if o["kind"] == "ServiceAccount")
    kubectl("apply", "-f", "-", input=yaml.safe_dump(account))  # the pod's ServiceAccount must exist
    pod = pod_of(next(o for o in objects if o["kind"] == "Deployment"), restricted_namespace)
    result = kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(pod), check=False)
    assert result.returncode == 0, result.stderr
    assert "violates PodSecurity" not in result.stderr, result.stderr
    assert json.loads(result.stdout)["metadata"]["namespace"] == restricted_namespace


def test_pod_security_refuses_a_pod_that_is_not_restricted(chart: Any, kubectl: Kubectl,
                                                          restricted_namespace: str) -> None:
    """The admission above can fail: without the container's securityContext the pod is refused."""
    objects = render_for(chart, VALUES_DIR / "default.yaml", restricted_namespace)
    account = next(o for o in objects if o["kind"] == "ServiceAccount")
    kubectl("apply", "-f", "-", input=yaml.safe_dump(account))
    pod = pod_of(next(o for o in objects if o["kind"] == "Deployment"), restricted_namespace)
    del pod["spec"]["containers"][0]["securityContext"]
    result = kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False)
    assert result.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in result.stderr, result.stderr
    assert "allowPrivilegeEscalation != false" in result.stderr
