"""What the chart renders, values file by values file: the operator Deployment, least-privilege
RBAC (rule by rule), the Prometheus Operator objects and the dashboard ConfigMap."""

from __future__ import annotations

import json
import logging
import pathlib
import re
from typing import Any

import pytest
import yaml

from modelrollout import config
from modelrollout.api import labels
from tests.chart import permissions

REPO = pathlib.Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "modelrollout"
VALUES_DIR = pathlib.Path(__file__).parent / "values"
VALUES = sorted(VALUES_DIR.glob("*.yaml"))
RELEASE_NS = "modelrollout"


OUTSIDE_CONFIG: set[str] = set()  # every setting the chart passes is one the operator reads

Rule = tuple[str, str, str, str, str]  # (namespace or "*", apiGroup, resource, verb, resourceName or "")


def values_of(path: pathlib.Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The release's objects of a kind; `helm test` hooks are not installed (test_helm_test.py)."""
    return [o for o in objects if o["kind"] == kind
            and (o["metadata"].get("annotations") or {}).get("helm.sh/hook") != "test"]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = of_kind(objects, kind)
    assert len(found) == 1, f"{len(found)} {kind}s"
    return found[0]


def expand(table: dict[tuple[str, str], set[str]], namespace: str) -> set[Rule]:
    return {(namespace, group, resource, verb, "") for (group, resource), verbs in table.items() for verb in verbs}


def expected_rules(values: dict[str, Any]) -> set[Rule]:
    watch = values.get("watchNamespaces") or []
    if watch:
        rules = expand(permissions.CAPACITY, "*").union(*(expand(permissions.NAMESPACED, ns) for ns in watch))
    else:
        rules = expand(permissions.merge(permissions.NAMESPACED, permissions.CAPACITY, permissions.NAMESPACES), "*")
    for secret in ["modelrollout-notifications", *values.get("modelDeploymentSecrets", [])]:
        rules |= {(ns, "", "secrets", "get", secret) for ns in (watch or ["*"])}
    if values.get("leaderElection", {}).get("enabled", True):
        rules |= expand(permissions.LEADER_ELECTION, RELEASE_NS)
    token = values.get("prometheus", {}).get("bearerTokenSecret", {}).get("name")
    if token:
        rules.add((RELEASE_NS, "", "secrets", "get", token))
    return rules


def granted_rules(objects: list[dict[str, Any]], service_account: str) -> set[Rule]:
    """What the bindings grant the operator's ServiceAccount; every role must be bound to it."""
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o
             for o in objects if o["kind"] in ("Role", "ClusterRole")}
    subject = {"kind": "ServiceAccount", "name": service_account, "namespace": RELEASE_NS}
    granted: set[Rule] = set()
    bound = set()
    for binding in objects:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        assert binding["subjects"] == [subject], binding["metadata"]["name"]
        namespace = binding["metadata"].get("namespace")
        ref = binding["roleRef"]
        key = (ref["kind"], namespace if ref["kind"] == "Role" else None, ref["name"])
        assert key in roles, f"{binding['metadata']['name']} refers to a missing {key}"
        bound.add(key)
        scope = namespace if binding["kind"] == "RoleBinding" else "*"
        for rule in roles[key]["rules"]:
            assert set(rule) <= {"apiGroups", "resources", "verbs", "resourceNames"}, rule
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        for name in rule.get("resourceNames") or [""]:
                            granted.add((scope, group, resource, verb, name))
    assert bound == set(roles), f"roles bound to nothing: {set(roles) - bound}"
    return granted


@pytest.mark.parametrize("values", VALUES, ids=lambda p: p.stem)
def test_rbac_grants_exactly_what_the_operator_uses(chart: Any, values: pathlib.Path) -> None:
    objects = chart.render(values, namespace=RELEASE_NS)
    account = one(objects, "ServiceAccount")["metadata"]["name"]
    granted = granted_rules(objects, account)
    assert granted == expected_rules(values_of(values))
    assert not any("*" in (group, resource, verb) for _, group, resource, verb, _ in granted)
    assert not any(resource == "secrets" and not name for _, _, resource, _, name in granted), "no Secret in general"


def test_a_namespaced_install_has_no_cluster_role_but_for_nodes(chart: Any) -> None:
    objects = chart.render(VALUES_DIR / "namespaced.yaml")
    cluster_roles = of_kind(objects, "ClusterRole")
    assert [r["metadata"]["name"] for r in cluster_roles] == ["mr-modelrollout-nodes"]
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]) for r in of_kind(objects, "Role")}
    assert roles == {("ml", "mr-modelrollout"), ("ml-staging", "mr-modelrollout"),
                     ("modelrollout", "mr-modelrollout-leader")}  # the Lease's, in the release namespace


def test_rbac_create_false_renders_no_rbac(chart: Any) -> None:
    objects = chart.render(set_json={"rbac": {"create": False}})
    assert not [o for o in objects if o["apiVersion"].startswith("rbac.authorization.k8s.io/")]


@pytest.mark.parametrize("values", VALUES, ids=lambda p: p.stem)
def test_the_operator_deployment(chart: Any, values: pathlib.Path) -> None:
    given = values_of(values)
    objects = chart.render(values, namespace=RELEASE_NS)
    deployment = one(objects, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == given.get("replicaCount", 2)
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == one(objects, "ServiceAccount")["metadata"]["name"]
    assert set(spec["selector"]["matchLabels"].items()) <= set(spec["template"]["metadata"]["labels"].items())
    assert not any(key.startswith(labels.PREFIX) for key in spec["template"]["metadata"]["labels"]), (
        "the operator pod must not look like a model server to the PodMonitor"
    )
    (container,) = pod["containers"]
    assert container["command"] == ["python", "-m", "modelrollout"]
    image = given.get("image", {})
    if image.get("digest"):
        assert container["image"] == f"{image['repository']}@{image['digest']}"
    else:
        assert container["image"] == "ghcr.io/modelrollout/modelrollout:0.1.0"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8080, "health": 8081}
    for kind in ("livenessProbe", "readinessProbe"):
        probe = container[kind]["httpGet"]
        assert (probe["path"], ports[probe["port"]]) == ("/healthz", 8081)

    # Restricted pod security (the server-side check is in test_server_validation.py).
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]

    for key in ("nodeSelector", "tolerations", "affinity", "imagePullSecrets"):
        assert pod.get(key) == given.get(key), key
    if "resources" in given:
        assert container["resources"] == given["resources"]


def test_leader_election_settings_come_from_the_values_and_the_downward_api(chart: Any) -> None:
    objects = chart.render(set_json={"leaderElection": {"leaseDuration": "15s", "renewDeadline": "10s"}},
                           namespace=RELEASE_NS)
    (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    from_pod = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"] if "valueFrom" in e}
    assert from_pod == {"MODELROLLOUT_LEASE_NAMESPACE": "metadata.namespace",
                        "MODELROLLOUT_LEADER_IDENTITY": "metadata.name"}
    env = _env(objects)
    settings = config.OperatorConfig.from_env({**env, "MODELROLLOUT_LEASE_NAMESPACE": RELEASE_NS,
                                               "MODELROLLOUT_LEADER_IDENTITY": "mr-modelrollout-5f7-x"})
    assert settings.leader_election is True and settings.lease_name == "mr-modelrollout-leader"
    assert (settings.lease_duration, settings.lease_renew_deadline, settings.lease_retry_period) == ("15s", "10s", "2s")
    budget = one(objects, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"] == one(objects, "Deployment")["spec"]["selector"]["matchLabels"]


def test_without_leader_election_one_replica_is_recreated_and_no_lease_is_granted(chart: Any) -> None:
    objects = chart.render(set_json={"leaderElection": {"enabled": False}, "replicaCount": 1}, namespace=RELEASE_NS)
    spec = one(objects, "Deployment")["spec"]
    assert (spec["replicas"], spec["strategy"]) == (1, {"type": "Recreate"})
    assert _env(objects)["MODELROLLOUT_LEADER_ELECTION"] == "false"
    assert not of_kind(objects, "PodDisruptionBudget")
    assert not [r for r in of_kind(objects, "Role") if r["metadata"]["name"].endswith("-leader")]
    assert "needs leaderElection.enabled" in chart.refused({"leaderElection": {"enabled": False}})


def _env(objects: list[dict[str, Any]]) -> dict[str, str]:
    (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


@pytest.mark.parametrize("values", VALUES, ids=lambda p: p.stem)
def test_the_settings_reach_the_operator(chart: Any, values: pathlib.Path) -> None:
    """The env the chart sets is read by OperatorConfig (or is listed as pending), and it parses."""
    given = values_of(values)
    env = _env(chart.render(values, namespace=RELEASE_NS))
    known = {config.ENV_PREFIX + name.upper() for name in config.OperatorConfig.model_fields}
    ours = {name for name in env if name.startswith(config.ENV_PREFIX)}
    assert ours - known <= OUTSIDE_CONFIG, f"settings the operator does not know: {ours - known - OUTSIDE_CONFIG}"
    settings = config.OperatorConfig.from_env(env)
    assert settings.namespaces == tuple(given.get("watchNamespaces", ()))
    prometheus = given.get("prometheus", {})
    assert settings.prometheus_url == prometheus.get("url", "http://prometheus-operated.monitoring.svc:9090")
    assert (settings.metrics_port, settings.health_port) == (8080, 8081)
    level = env["MODELROLLOUT_LOG_LEVEL"]
    assert level == given.get("logLevel", "info").upper()
    assert isinstance(logging.getLevelName(level), int), f"{level} is not a Python logging level"


def test_tls_and_bearer_token_settings(chart: Any) -> None:
    objects = chart.render(VALUES_DIR / "tls-token.yaml", namespace=RELEASE_NS)
    env = _env(objects)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ca_file = env["MODELROLLOUT_PROMETHEUS_CA_FILE"]
    mount = next(m for m in container["volumeMounts"] if ca_file.startswith(m["mountPath"] + "/"))
    assert mount["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"] == {"name": "prometheus-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}
    assert ca_file.endswith("/ca.crt")
    assert env["MODELROLLOUT_PROMETHEUS_INSECURE_SKIP_VERIFY"] == "false"
    assert env["MODELROLLOUT_PROMETHEUS_BEARER_TOKEN_SECRET"] == f"{RELEASE_NS}/prometheus-token"
    assert env["MODELROLLOUT_PROMETHEUS_BEARER_TOKEN_KEY"] == "token"
    assert not any("secret" in v for v in pod["volumes"]), "the token is read through the API, never mounted"
    default_env = _env(chart.render(VALUES_DIR / "default.yaml"))
    assert "MODELROLLOUT_PROMETHEUS_CA_FILE" not in default_env
    assert "MODELROLLOUT_PROMETHEUS_BEARER_TOKEN_SECRET" not in default_env


# -- Prometheus Operator objects --------------------------------------------------------------

LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _relabel(meta: dict[str, str], relabelings: list[dict[str, Any]]) -> dict[str, str]:
    """Prometheus' relabelling (the `replace` action, as the chart uses it), then the `__` labels drop."""
    labels_ = dict(meta)
    for step in relabelings:
        assert step.get("action", "replace") == "replace", step
        assert LABEL_NAME.match(step["targetLabel"]), step
        value = step.get("separator", ";").join(labels_.get(s, "") for s in step["sourceLabels"])
        match = re.fullmatch(step.get("regex", "(.*)"), value)
        if match:
            labels_[step["targetLabel"]] = match.expand(step.get("replacement", "$1").replace("$1", r"\1"))
    return {k: v for k, v in labels_.items() if not k.startswith("__")}


def _selects(selector: dict[str, Any], pod_labels: dict[str, str]) -> bool:
    if any(pod_labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "Exists", expression
        if expression["key"] not in pod_labels:
            return False
    return True


def _meta_labels(namespace: str, pod: str, pod_labels: dict[str, str]) -> dict[str, str]:
    meta = {"__meta_kubernetes_namespace": namespace, "__meta_kubernetes_pod_name": pod,
            "__address__": "10.0.0.7:8080", "job": "ml/model-servers"}
    for key, value in pod_labels.items():
        meta["__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)] = value
    return meta


def test_the_model_server_podmonitor_labels_series_by_track_and_revision(chart: Any) -> None:
    objects = chart.render(VALUES_DIR / "monitoring.yaml", namespace=RELEASE_NS)
    monitors = {o["metadata"]["name"]: o for o in of_kind(objects, "PodMonitor")}
    monitor = monitors["mr-modelrollout-model-servers"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    spec = monitor["spec"]
    assert spec["namespaceSelector"] == {"any": True}
    (endpoint,) = spec["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == ("http", "/metrics", "10s")

    model_pod = {labels.NAME: "fraud-scorer", labels.TRACK: "canary", labels.REVISION: "7b21aa",
                 labels.MANAGED_BY: labels.MANAGER}
    operator_pod = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert _selects(spec["selector"], model_pod)
    assert not _selects(spec["selector"], operator_pod)
    target = _relabel(_meta_labels("ml", "fraud-scorer-7b21aa-x1", model_pod), endpoint["relabelings"])
    assert {k: target[k] for k in ("namespace", "pod", "modeldeployment", "track", "revision")} == {
        "namespace": "ml", "pod": "fraud-scorer-7b21aa-x1", "modeldeployment": "fraud-scorer",
        "track": "canary", "revision": "7b21aa",
    }


def test_the_model_server_podmonitor_follows_the_watched_namespaces(chart: Any) -> None:
    objects = chart.render(VALUES_DIR / "namespaced.yaml", set_json={"modelServers": {"podMonitor": {"enabled": True}}})
    monitor = one(objects, "PodMonitor")
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ml", "ml-staging"]}


def test_monitors_have_their_required_fields_and_select_the_operator(chart: Any) -> None:
    """The world has no Prometheus Operator CRDs, so these are checked here, field by field."""
    objects = chart.render(VALUES_DIR / "monitoring.yaml", namespace=RELEASE_NS)
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    service = one(objects, "Service")
    assert _selects({"matchLabels": service["spec"]["selector"]}, pod_labels)
    service_monitor = one(objects, "ServiceMonitor")
    assert service_monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert service_monitor["metadata"]["namespace"] == RELEASE_NS
    assert _selects(service_monitor["spec"]["selector"], service["metadata"]["labels"])
    assert service_monitor["spec"]["namespaceSelector"] == {"matchNames": [RELEASE_NS]}
    (endpoint,) = service_monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}

    restricted = chart.render(VALUES_DIR / "restricted.yaml", namespace=RELEASE_NS)
    assert not of_kind(restricted, "Service")
    pod_monitor = one(restricted, "PodMonitor")
    restricted_pod_labels = one(restricted, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert _selects(pod_monitor["spec"]["selector"], restricted_pod_labels)
    (endpoint,) = pod_monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "metrics"

    default = chart.render(VALUES_DIR / "default.yaml")
    assert not [o for o in default if o["apiVersion"].startswith("monitoring.coreos.com/")]


def test_the_dashboard_configmap(chart: Any) -> None:
    objects = chart.render(VALUES_DIR / "monitoring.yaml", namespace=RELEASE_NS)
    config_map = one(objects, "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Models"}
    assert config_map["metadata"]["namespace"] == RELEASE_NS
    shipped = json.loads(config_map["data"]["modelrollout.json"])
    assert shipped == json.loads((CHART / "dashboards" / "modelrollout.json").read_text())

    elsewhere = chart.render(set_json={"dashboard": {"enabled": True, "namespace": "grafana"}})
    assert one(elsewhere, "ConfigMap")["metadata"]["namespace"] == "grafana"
    assert not of_kind(chart.render(VALUES_DIR / "default.yaml"), "ConfigMap")
