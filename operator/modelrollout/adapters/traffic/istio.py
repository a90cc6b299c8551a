"""Istio: one VirtualService `<name>`, weighted over the stable and candidate Services.

Its single HTTP route has a destination per track (weights 100-w and w) and, while the new
revision shadows, `mirror` with `mirrorPercentage`. Hosts and gateways come from
spec.traffic.istio.
"""

from __future__ import annotations

from typing import Any

from modelrollout.adapters.cluster import kube, manifests
from modelrollout.api import labels, routing
from modelrollout.core import decision


def _destination(owner: manifests.Owner, track: labels.Track, port: int) -> dict[str, Any]:
    host = f"{manifests.service_name(owner.name, track)}.{owner.namespace}.svc.cluster.local"
    return {"host": host, "port": {"number": port}}


def virtual_service(owner: manifests.Owner, traffic: routing.Traffic, split: decision.TrafficSplit) -> dict[str, Any]:
    """The VirtualService for a split (pure)."""
    assert traffic.istio is not None
    routes: list[dict[str, Any]] = [
        {"destination": _destination(owner, labels.Track.STABLE, traffic.port), "weight": 100 - split.canary_weight}]
    http: dict[str, Any] = {"name": "primary", "route": routes}
    if split.candidate_revision is not None and split.candidate_track is not labels.Track.SHADOW:
        routes.append({"destination": _destination(owner, split.candidate_track, traffic.port),
                       "weight": split.canary_weight})
    if split.candidate_revision is not None and split.mirror_percent > 0:
        http["mirror"] = _destination(owner, split.candidate_track, traffic.port)
        http["mirrorPercentage"] = {"value": float(split.mirror_percent)}
    spec: dict[str, Any] = {"hosts": list(traffic.istio.hosts), "http": [http]}
    if traffic.istio.gateways:
        spec["gateways"] = list(traffic.istio.gateways)
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": owner.metadata(owner.name), "spec": spec}


def held(body: dict[str, Any], name: str) -> tuple[int, int]:
    http = (body.get("spec", {}).get("http") or [{}])[0]
    stable_prefix = manifests.service_name(name, labels.Track.STABLE) + "."
    weight = sum(int(r.get("weight", 0)) for r in http.get("route", [])
                 if not str(r.get("destination", {}).get("host", "")).startswith(stable_prefix))
    mirror = 0
    if http.get("mirror"):
        mirror = round(float(http.get("mirrorPercentage", {}).get("value", 100.0)))
    return weight, mirror


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
