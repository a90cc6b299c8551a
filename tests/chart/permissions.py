"""The permissions the operator uses, as the chart must grant them: one table for every test."""

from __future__ import annotations

Table = dict[tuple[str, str], set[str]]

OWNED = {"get", "list", "watch", "create", "patch", "update", "delete"}
NAMESPACED: Table = {
    ("modelrollout.io", "modeldeployments"): {"get", "list", "watch", "patch"},
    ("modelrollout.io", "modeldeployments/status"): {"get", "patch", "update"},
    ("", "events"): {"create", "patch"},
    ("apps", "deployments"): OWNED,
    ("", "services"): OWNED,
    ("", "pods"): {"get", "list", "watch", "patch"},
    ("gateway.networking.k8s.io", "httproutes"): OWNED,
    ("networking.istio.io", "virtualservices"): OWNED,
}
CAPACITY: Table = {
    # A GPU pool's free room: its nodes, and what every pod bound to them requests, whoever owns it
    # (watched, cluster-wide, for the pool ledger).
    ("", "nodes"): {"get", "list", "watch"},
    ("", "pods"): {"get", "list", "watch"},
}
LEADER_ELECTION: Table = {("coordination.k8s.io", "leases"): {"get", "create", "update"}}  # release namespace
NAMESPACES: Table = {("", "namespaces"): {"list", "watch"}}  # kopf follows namespaces when watching all


def merge(*tables: Table) -> Table:
    out: Table = {}
    for table in tables:
        for key, verbs in table.items():
            out[key] = out.get(key, set()) | verbs
    return out
