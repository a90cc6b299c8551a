"""The Helm chart installed into the real control plane.

These installs leave the operator pod a kwok fake (e2e/test_helm_operator.py has the pod runner
run it as the operator), and assert what the chart itself is responsible for: the release installs; the CRD is there and
established; the operator's ServiceAccount has exactly the permissions the operator uses, as the
API server's authorizer answers them (a SelfSubjectRulesReview and `kubectl auth can-i`), and a
token of that ServiceAccount authenticates as it; the operator pod is scheduled (kwok reports it
Running); `helm uninstall` removes every object of the release but keeps the CRD (Helm never
deletes what it installed from crds/).

`service_account_kubeconfig` is for running the operator from source with the chart's identity.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.cluster import pki
from e2e.cluster.layout import REPO
from e2e.fixtures.world import Kubectl, WorldInfo, eventually, get_json
from tests.chart import permissions

pytestmark = pytest.mark.cluster

CHART = REPO / "charts" / "modelrollout"
TOKEN_SECRET = "prometheus-token"

NAMESPACED = permissions.NAMESPACED
CLUSTER_WIDE = permissions.merge(permissions.CAPACITY, permissions.NAMESPACES)
# Granted to every authenticated user by the API server's default roles, not by the chart.
EVERYONE = {"authorization.k8s.io", "authentication.k8s.io"}

Rule = tuple[str, str, str, str]  # (apiGroup, resource, verb, resourceName or "")


@dataclasses.dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    service_account: str
    notes: str

    @property
    def fullname(self) -> str:
        return f"{self.name}-modelrollout"

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


class Helm:
    def __init__(self, world: WorldInfo, home: Path) -> None:
        self.world = world
        self.env = {**os.environ, "HELM_CACHE_HOME": str(home / "cache"), "HELM_CONFIG_HOME": str(home / "config"),
                    "HELM_DATA_HOME": str(home / "data")}

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(self.world.bin / "helm"), f"--kubeconfig={self.world.kubeconfig}", *args]
        result = subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=300)
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def install(self, namespace: str, values: dict[str, Any]) -> Release:
        name = f"mr-{uuid.uuid4().hex[:5]}"
        args = ["install", name, str(CHART), "--namespace", namespace]
        for key, value in values.items():
            args += ["--set-json", f"{key}={json.dumps(value)}"]
        notes = self(*args).stdout
        return Release(name=name, namespace=namespace, service_account=f"{name}-modelrollout", notes=notes)


def service_account_kubeconfig(world: WorldInfo, kubectl: Kubectl, namespace: str, service_account: str,
                               path: Path, duration: str = "2h") -> Path:
    """A kubeconfig that authenticates as the ServiceAccount, with a token from the TokenRequest API.

    The cluster entry (server, CA) is the world's own; the context's namespace is `namespace`.
    Run the operator from source with it (KUBECONFIG=path) to have exactly the chart's permissions.
    """
    token = kubectl("create", "token", service_account, "-n", namespace, f"--duration={duration}").stdout.strip()
    admin = yaml.safe_load(world.kubeconfig.read_text())
    current = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
    cluster = next(c for c in admin["clusters"] if c["name"] == current["cluster"])
    return pki.write_token_kubeconfig(path, cluster["cluster"], f"{namespace}:{service_account}", token, namespace)


def granted(kubectl: Kubectl, release: Release, namespace: str) -> set[Rule]:
    """What the API server's authorizer lets the operator do in `namespace` (SelfSubjectRulesReview)."""
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
              "spec": {"namespace": namespace}}
    answer = json.loads(kubectl("create", f"--as={release.user}", "--validate=false", "-o", "json", "-f", "-",
                                input=json.dumps(review)).stdout)
    assert not answer["status"].get("incomplete"), answer["status"]
    rules: set[Rule] = set()
    for rule in answer["status"]["resourceRules"]:
        for group in rule.get("apiGroups", []):
            if group in EVERYONE:
                continue
            for resource in rule.get("resources", []):
                for verb in rule["verbs"]:
                    for name in rule.get("resourceNames") or [""]:
                        rules.add((group, resource, verb, name))
    return rules


NAMESPACE_RECEIVER: Rule = ("", "secrets", "get", "modelrollout-notifications")
"""Each watched namespace's notification receiver (docs/notifications.md)."""


def expand(table: dict[tuple[str, str], set[str]]) -> set[Rule]:
    """The rules of a permission table; one with the namespaced permissions also reads the receiver's Secret."""
    rules = {(group, resource, verb, "") for (group, resource), verbs in table.items() for verb in verbs}
    return rules | {NAMESPACE_RECEIVER} if NAMESPACED.keys() <= table.keys() else rules


def can(kubectl: Kubectl, release: Release, *args: str) -> bool:
    result = kubectl("auth", "can-i", f"--as={release.user}", *args, check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), result.stderr
    return answer == "yes"


@pytest.fixture(scope="module")
def helm(world: WorldInfo, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(world, tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="module")
def installed(helm: Helm, kubectl: Kubectl) -> Iterator[Release]:
    """A cluster-wide release with a Prometheus bearer token Secret, in its own namespace."""
    namespace = f"helm-install-{uuid.uuid4().hex[:5]}"
    kubectl("create", "namespace", namespace)
    try:
        release = helm.install(namespace, {"prometheus.bearerTokenSecret.name": TOKEN_SECRET})
        yield release
        helm("uninstall", release.name, "--namespace", namespace, "--wait", check=False)
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_the_release_is_deployed_and_says_how_to_check_it(helm: Helm, installed: Release) -> None:
    status = json.loads(helm("status", installed.name, "--namespace", installed.namespace, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    assert f"rollout status deployment/{installed.fullname}" in installed.notes
    assert ":8080/metrics" in installed.notes and ":8081/healthz" in installed.notes


def test_the_crd_is_established(kubectl: Kubectl, installed: Release) -> None:
    crd = get_json(kubectl, "crd", "modeldeployments.modelrollout.io")
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    shipped = yaml.safe_load((CHART / "crds" / "modeldeployments.yaml").read_text())
    assert [v["name"] for v in crd["spec"]["versions"]] == [v["name"] for v in shipped["spec"]["versions"]]


def test_the_operator_has_exactly_the_permissions_it_uses(kubectl: Kubectl, installed: Release) -> None:
    expected = expand(permissions.merge(NAMESPACED, CLUSTER_WIDE, permissions.LEADER_ELECTION)) | {
        ("", "secrets", "get", TOKEN_SECRET)}
    assert granted(kubectl, installed, installed.namespace) == expected
    assert granted(kubectl, installed, "default") == expand(permissions.merge(NAMESPACED, CLUSTER_WIDE)), (
        "the token and the Lease only at home")

    ns = installed.namespace
    allowed = [
        ("list", "nodes"), ("watch", "namespaces"),
        ("patch", "modeldeployments.modelrollout.io", "-n", "default"),
        ("update", "modeldeployments.modelrollout.io", "--subresource=status", "-n", ns),
        ("create", "deployments.apps", "-n", "default"), ("delete", "services", "-n", ns),
        ("patch", "pods", "-n", ns), ("create", "events", "-n", ns),
        ("update", "httproutes.gateway.networking.k8s.io", "-n", ns),
        ("delete", "virtualservices.networking.istio.io", "-n", ns),
        ("get", f"secret/{TOKEN_SECRET}", "-n", ns),
        ("update", "leases.coordination.k8s.io", "-n", ns),
    ]
    refused = [
        ("get", "secrets", "-n", ns), ("list", "secrets", "-n", ns), ("get", "secret/other", "-n", ns),
        ("get", f"secret/{TOKEN_SECRET}", "-n", "default"),
        ("delete", "modeldeployments.modelrollout.io", "-n", ns),
        ("create", "modeldeployments.modelrollout.io", "-n", ns),
        ("create", "pods", "-n", ns), ("delete", "pods", "-n", ns), ("get", "configmaps", "-n", ns),
        ("update", "leases.coordination.k8s.io", "-n", "default"), ("delete", "leases.coordination.k8s.io", "-n", ns),
        ("delete", "nodes"), ("patch", "nodes"), ("get", "namespaces"), ("create", "namespaces"),
        ("list", "customresourcedefinitions.apiextensions.k8s.io"), ("create", "clusterrolebindings"),
        ("*", "*"),
    ]
    wrong = [" ".join(a) + ": refused" for a in allowed if not can(kubectl, installed, *a)]
    wrong += [" ".join(a) + ": allowed" for a in refused if can(kubectl, installed, *a)]
    assert not wrong, "\n".join(wrong)


def test_a_token_of_the_service_account_authenticates_as_it(world: WorldInfo, kubectl: Kubectl, installed: Release,
                                                            tmp_path: Path) -> None:
    path = service_account_kubeconfig(world, kubectl, installed.namespace, installed.service_account,
                                      tmp_path / "operator.kubeconfig")

    def as_operator(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(world.bin / "kubectl"), f"--kubeconfig={path}", *args],
                              capture_output=True, text=True, timeout=60)

    whoami = json.loads(as_operator("auth", "whoami", "-o", "json").stdout)
    assert whoami["status"]["userInfo"]["username"] == installed.user
    assert as_operator("get", "modeldeployments", "-A").returncode == 0
    assert as_operator("get", "nodes").returncode == 0
    forbidden = as_operator("get", "secrets")
    assert forbidden.returncode != 0 and "Forbidden" in forbidden.stderr


def test_the_operator_pod_is_scheduled(kubectl: Kubectl, installed: Release) -> None:
    def running() -> dict[str, Any] | None:
        pods = get_json(kubectl, "pods", "-n", installed.namespace, "-l",
                        f"app.kubernetes.io/instance={installed.name}")["items"]
        return next((p for p in pods if p["status"].get("phase") == "Running" and p["spec"].get("nodeName")), None)

    pod = eventually(running, 60, what="the operator pod Running on a node")
    assert pod["spec"]["serviceAccountName"] == installed.service_account
    node = get_json(kubectl, "node", pod["spec"]["nodeName"])
    assert "nvidia.com/gpu" not in node["status"]["capacity"], "the operator takes no GPU node"


def _objects(manifest: str) -> list[tuple[str, str, str | None]]:
    return [(o["kind"], o["metadata"]["name"], o["metadata"].get("namespace"))
            for o in yaml.safe_load_all(manifest) if o]


def test_a_namespaced_release_is_confined_and_uninstall_leaves_nothing(helm: Helm, kubectl: Kubectl,
                                                                       namespace: str) -> None:
    watched = f"{namespace}-ml"
    kubectl("create", "namespace", watched)
    release: Release | None = None
    try:
        release = helm.install(namespace, {"watchNamespaces": [watched]})
        assert granted(kubectl, release, watched) == expand(permissions.merge(NAMESPACED, permissions.CAPACITY))
        assert granted(kubectl, release, namespace) == expand(permissions.merge(permissions.CAPACITY,
                                                                                permissions.LEADER_ELECTION))
        assert can(kubectl, release, "create", "deployments.apps", "-n", watched)
        assert not can(kubectl, release, "create", "deployments.apps", "-n", namespace)
        assert not can(kubectl, release, "patch", "modeldeployments.modelrollout.io", "-n", "default")
        assert can(kubectl, release, "list", "nodes")
        assert can(kubectl, release, "list", "pods", "--all-namespaces")  # GPUs held by anyone's pods
        assert not can(kubectl, release, "patch", "pods", "-n", namespace)
        assert not can(kubectl, release, "list", "namespaces")

        objects = _objects(helm("get", "manifest", release.name, "--namespace", namespace).stdout)
        kinds = {kind for kind, _, _ in objects}
        assert {"ServiceAccount", "Deployment", "Service", "ClusterRole", "ClusterRoleBinding", "Role",
                "RoleBinding"} <= kinds

        helm("uninstall", release.name, "--namespace", namespace, "--wait", "--timeout=120s")
        uninstalled, release = release, None
        for kind, name, object_namespace in objects:
            where = ["-n", object_namespace] if object_namespace else []
            result = kubectl("get", kind, name, *where, "--ignore-not-found", "-o", "name", check=False)
            assert result.returncode == 0 and not result.stdout.strip(), f"{kind}/{name} is left behind"

        def no_pods() -> bool:
            pods = get_json(kubectl, "pods", "-n", namespace, "-l", f"app.kubernetes.io/instance={uninstalled.name}")
            return not pods["items"]

        eventually(no_pods, 60, what="the operator pod gone")
        assert not helm("list", "-q", "--namespace", namespace).stdout.strip(), uninstalled.name
        kept = get_json(kubectl, "crd", "modeldeployments.modelrollout.io")
        assert {c["type"]: c["status"] for c in kept["status"]["conditions"]}["Established"] == "True", (
            "Helm keeps the CRDs of crds/ on uninstall"
        )
    finally:
        if release is not None:  # the test failed before its own uninstall
            helm("uninstall", release.name, "--namespace", namespace, "--wait", check=False)
        kubectl("delete", "namespace", watched, "--wait=false", check=False)
