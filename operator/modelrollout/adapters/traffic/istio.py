"""Istio: one VirtualService `<name>`, weighted over the stable and candidate Services.

Its weighted HTTP route, `primary`, has a destination per track (weights 100-w and w) and, while
the new revision shadows, `mirror` with `mirrorPercentage`. During an A/B test an HTTP route
`cohort` comes first: one `match` entry per cohort match (`exact` headers, the cookie as a `regex`
on the `cookie` header, see `cohort`; Istio wants lower-case header names and reads RE2), all to
the candidate's host. Istio takes the first HTTP route that matches, so `primary`, without
`match`, takes every other request. Hosts and gateways come from spec.traffic.istio.
"""

from __future__ import annotations

from typing import Any

from modelrollout.adapters.cluster import kube, manifests
from modelrollout.adapters.traffic import cohort
from modelrollout.api import labels, routing
from modelrollout.core import decision

PRIMARY = "primary"
COHORT = "cohort"


def _destination(owner: manifests.Owner, track: labels.Track, port: int) -> dict[str, Any]:
    host = f"{manifests.service_name(owner.name, track)}.{owner.namespace}.svc.cluster.local"
    return {"host": host, "port": {"number": port}}


def virtual_service(owner: manifests.Owner, traffic: routing.Traffic, split: decision.TrafficSplit) -> dict[str, Any]:
    """The VirtualService for a split (pure)."""
    assert traffic.istio is not None
    routes: list[dict[str, Any]] = [
        {"destination": _destination(owner, labels.Track.STABLE, traffic.port), "weight": 100 - split.canary_weight}]
    http: dict[str, Any] = {"name": PRIMARY, "route": routes}
    if split.candidate_revision is not None and split.candidate_track is not labels.Track.SHADOW:
        routes.append({"destination": _destination(owner, split.candidate_track, traffic.port),
                       "weight": split.canary_weight})
    if split.candidate_revision is not None and split.mirror_percent > 0:
        http["mirror"] = _destination(owner, split.candidate_track, traffic.port)
        http["mirrorPercentage"] = {"value": float(split.mirror_percent)}
    entries = [http]
    if split.cohort:
        match = [{"headers": {c.name: {"regex" if c.regex else "exact": c.value} for c in conditions}}
                 for _, conditions in cohort.each(split.cohort)]
        entries.insert(0, {"name": COHORT, "match": match, "route": [
            {"destination": _destination(owner, split.candidate_track, traffic.port), "weight": 100}]})
    spec: dict[str, Any] = {"hosts": list(traffic.istio.hosts), "http": entries}
    if traffic.istio.gateways:
        spec["gateways"] = list(traffic.istio.gateways)
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": owner.metadata(owner.name), "spec": spec}


def _weighted_entry(body: dict[str, Any]) -> dict[str, Any]:
    """The HTTP route for requests outside any cohort: the last without `match` (else the last)."""
    http = body.get("spec", {}).get("http") or [{}]
    return next((h for h in reversed(http) if not h.get("match")), http[-1])


def _to_candidate(entry: dict[str, Any], name: str) -> bool:
    stable_prefix = manifests.service_name(name, labels.Track.STABLE) + "."
    routes = entry.get("route") or []
    return any(not str(r.get("destination", {}).get("host", "")).startswith(stable_prefix)
               and int(r.get("weight", 100 if len(routes) == 1 else 0)) > 0 for r in routes)


def held(body: dict[str, Any], name: str) -> tuple[int, int]:
    """(canary weight, mirror percent) of a VirtualService the operator wrote, read from its
    weighted HTTP route: one that sends only a cohort to the candidate holds weight 0."""
    http = _weighted_entry(body)
    stable_prefix = manifests.service_name(name, labels.Track.STABLE) + "."
    weight = sum(int(r.get("weight", 0)) for r in http.get("route", [])
                 if not str(r.get("destination", {}).get("host", "")).startswith(stable_prefix))
    mirror = 0
    if http.get("mirror"):
        mirror = round(float(http.get("mirrorPercentage", {}).get("value", 100.0)))
    return weight, mirror


def cohort_held(body: dict[str, Any], name: str) -> bool:
    """Whether the VirtualService sends requests matched by header (a cohort) to a host other
    than the stable Service."""
    return any(entry.get("match") and _to_candidate(entry, name) for entry in body.get("spec", {}).get("http") or [])


class IstioRouter:
    def __init__(self, client: kube.Kube) -> None:
        self.kube = client

    def apply(self, owner: manifests.Owner, traffic: routing.Traffic, split: decision.TrafficSplit) -> None:
        self.kube.apply(virtual_service(owner, traffic, split))

    def current(self, owner: manifests.Owner) -> tuple[int, int] | None:
        body = self.kube.read(kube.VIRTUAL_SERVICE, owner.namespace, owner.name)
        return None if body is None else held(body, owner.name)

    def problem(self, owner: manifests.Owner) -> str | None:
        return None  # nothing in the provider's status says the split is not carried
