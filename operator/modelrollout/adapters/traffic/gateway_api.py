"""Gateway API: one HTTPRoute `<name>`, weighted over the stable and candidate Services.

The route's weighted rule has a backendRef per track (weights 100-w and w) and, while the new
revision shadows, a RequestMirror filter with `percent`. During an A/B test a cohort rule comes
first: one match per cohort match (Exact header matches, the cookie as a RegularExpression match
on the Cookie header, see `cohort`), all to the candidate's Service. The weighted rule has no
matches, so it takes every other request; a request both take goes to the cohort rule, since
Gateway API prefers the match with more header matches (and then the earlier rule). The parents
and host names come from spec.traffic.gatewayAPI.

HTTPRoute v1 limits (the API server refuses more): 16 rules, 64 matches in a rule and 128 in the
route, 16 header matches in a match (listed by name: one entry per name), header values of
4096 characters, 16 backendRefs and 16 filters in a rule, 16 hostnames, 32 parentRefs.
"""

from __future__ import annotations

from typing import Any

from modelrollout import errors
from modelrollout.adapters.cluster import kube, manifests
from modelrollout.adapters.traffic import cohort
from modelrollout.api import labels, routing
from modelrollout.core import decision

MAX_MATCHES_PER_RULE = 64
MAX_HEADERS_PER_MATCH = 16


def _cohort_rule(owner: manifests.Owner, split: decision.TrafficSplit, port: int) -> dict[str, Any]:
    """The rule that sends the cohort to the candidate: one match per cohort match."""
    matches: list[dict[str, Any]] = []
    for where, conditions in cohort.each(split.cohort):
        if len(conditions) > MAX_HEADERS_PER_MATCH:
            raise errors.SpecError(f"{where}: {len(conditions)} header conditions (a cookie is one, on the Cookie "
                                   f"header); an HTTPRoute match holds at most {MAX_HEADERS_PER_MATCH}")
        matches.append({"headers": [
            {"type": "RegularExpression" if c.regex else "Exact", "name": c.name, "value": c.value}
            for c in conditions]})
    if len(matches) > MAX_MATCHES_PER_RULE:
        raise errors.SpecError(f"{cohort.FIELD}: {len(matches)} matches; an HTTPRoute rule holds at most "
                               f"{MAX_MATCHES_PER_RULE}")
    candidate = manifests.service_name(owner.name, split.candidate_track)
    return {"matches": matches, "backendRefs": [{"name": candidate, "port": port, "weight": 100}]}


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
    rules = [_cohort_rule(owner, split, port), rule] if split.cohort else [rule]
    spec: dict[str, Any] = {
        "parentRefs": [p.model_dump(mode="json", by_alias=True, exclude_none=True)
                       for p in traffic.gateway_api.parent_refs],
        "rules": rules,
    }
    if traffic.gateway_api.hostnames:
        spec["hostnames"] = list(traffic.gateway_api.hostnames)
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": owner.metadata(owner.name), "spec": spec}


def _by_header(rule: dict[str, Any]) -> bool:
    """Whether some match of the rule looks at headers (the API server gives a rule without
    matches one that takes every path, so "no matches" cannot tell the weighted rule apart)."""
    return any(m.get("headers") for m in rule.get("matches") or [])


def _weighted_rule(body: dict[str, Any]) -> dict[str, Any]:
    """The rule for requests outside any cohort: the last that matches no header (else the last)."""
    rules = body.get("spec", {}).get("rules") or [{}]
    return next((r for r in reversed(rules) if not _by_header(r)), rules[-1])


def held(body: dict[str, Any], name: str) -> tuple[int, int]:
    """(canary weight, mirror percent) of an HTTPRoute the operator wrote, read from its weighted
    rule: a route that sends only a cohort to the candidate holds weight 0."""
    rule = _weighted_rule(body)
    stable = manifests.service_name(name, labels.Track.STABLE)
    weight = sum(int(b.get("weight", 1)) for b in rule.get("backendRefs", []) if b.get("name") != stable)
    mirror = 0
    for item in rule.get("filters") or []:
        if item.get("type") == "RequestMirror":
            mirror = int(item.get("requestMirror", {}).get("percent", 100))
    return weight, mirror


def cohort_held(body: dict[str, Any], name: str) -> bool:
    """Whether the HTTPRoute sends requests matched by header (a cohort) to a Service other than
    the stable one."""
    stable = manifests.service_name(name, labels.Track.STABLE)
    return any(_by_header(rule) and any(b.get("name") != stable and int(b.get("weight", 1)) > 0
                                        for b in rule.get("backendRefs") or [])
               for rule in body.get("spec", {}).get("rules") or [])


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
