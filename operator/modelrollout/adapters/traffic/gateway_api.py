"""Gateway API: one HTTPRoute `<name>`, weighted over the stable and candidate Services.

The route's single rule has a backendRef per track (weights 100-w and w) and, while the new
revision shadows, a RequestMirror filter with `percent`. The parents and host names come from
spec.traffic.gatewayAPI.
"""

from __future__ import annotations

from typing import Any

from modelrollout.adapters.cluster import kube, manifests
from modelrollout.api import labels, routing
from modelrollout.core import decision


def route(owner: manifests.Owner, traffic: routing.Traffic, split: decision.TrafficSplit) -> dict[str, Any]:
    """The HTTPRoute for a split (pure)."""
    assert traffic.gateway_api is not None
    port = traffic.port
    backends: list[dict[str, Any]] = [
        {"name": manifests.service_name(owner.name, labels.Track.STABLE), "port": port,
         "weight": 100 - split.canary_weight},
    ]
    rule: dict[str, Any] = {"backendRefs": backends}
    if split.candidate_revision is not None and split.candidate_track is not labels.Track.SHADOW:
        backends.append({"name": manifests.service_name(owner.name, split.candidate_track), "port": port,
                         "weight": split.canary_weight})
    if split.candidate_revision is not None and split.mirror_percent > 0:
        rule["filters"] = [{"type": "RequestMirror", "requestMirror": {
            "backendRef": {"name": manifests.service_name(owner.name, split.candidate_track), "port": port},
            "percent": split.mirror_percent}}]
    spec: dict[str, Any] = {
        "parentRefs": [p.model_dump(mode="json", by_alias=True, exclude_none=True)
                       for p in traffic.gateway_api.parent_refs],
        "rules": [rule],
    }
    if traffic.gateway_api.hostnames:
        spec["hostnames"] = list(traffic.gateway_api.hostnames)
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": owner.metadata(owner.name), "spec": spec}


def held(body: dict[str, Any], name: str) -> tuple[int, int]:
    """(canary weight, mirror percent) of an HTTPRoute the operator wrote."""
    rule = (body.get("spec", {}).get("rules") or [{}])[0]
    stable = manifests.service_name(name, labels.Track.STABLE)
    weight = sum(int(b.get("weight", 1)) for b in rule.get("backendRefs", []) if b.get("name") != stable)
    mirror = 0
    for item in rule.get("filters") or []:
        if item.get("type") == "RequestMirror":
            mirror = int(item.get("requestMirror", {}).get("percent", 100))
    return weight, mirror


REFUSING = ("Accepted", "ResolvedRefs")
"""The route conditions that, when False, mean the Gateway does not route by it as written."""


def refusal(body: dict[str, Any]) -> str | None:
    """What a Gateway controller says it does not accept in this route (status.parents), for the
    route's current generation; None when every parent accepts it, or when none has said.

        refusal(route with parent "gw": Accepted False, NoMatchingParent, "no Gateway gw")
            -> 'HTTPRoute scorer: parent gw: Accepted is False (NoMatchingParent: no Gateway gw)'
    """
    generation = body.get("metadata", {}).get("generation")
    found = []
    for parent in (body.get("status") or {}).get("parents") or []:
        ref = parent.get("parentRef") or {}
        for condition in parent.get("conditions") or []:
            current = condition.get("observedGeneration") in (None, generation)
            if condition.get("type") in REFUSING and condition.get("status") == "False" and current:
                found.append(f"parent {ref.get('name', '?')}: {condition['type']} is False "
                             f"({condition.get('reason', '')}: {condition.get('message', '')})")
    if not found:
        return None
    return f"HTTPRoute {body.get('metadata', {}).get('name', '')}: " + "; ".join(found)


class GatewayAPIRouter:
    def __init__(self, client: kube.Kube) -> None:
        self.kube = client

    def apply(self, owner: manifests.Owner, traffic: routing.Traffic, split: decision.TrafficSplit) -> None:
        self.kube.apply(route(owner, traffic, split))

    def current(self, owner: manifests.Owner) -> tuple[int, int] | None:
        body = self.kube.read(kube.HTTP_ROUTE, owner.namespace, owner.name)
        return None if body is None else held(body, owner.name)

    def problem(self, owner: manifests.Owner) -> str | None:
        body = self.kube.read(kube.HTTP_ROUTE, owner.namespace, owner.name)
        return None if body is None else refusal(body)
