"""Cohort routes (an A/B test): the HTTPRoute and VirtualService the routers write for a split with
a cohort, how they read back, the cookie's regular expression, and what the e2e load generator
(which routes as a Gateway or Istio would) does with them. ReplicaRatio refuses a cohort.
"""

from __future__ import annotations

import copy
import re
from typing import Any, cast

import pydantic
import pytest

from e2e.loadgen import routing as loadgen
from modelrollout import errors
from modelrollout.adapters.cluster import kube, manifests
from modelrollout.adapters.traffic import cohort, gateway_api, istio, replica_ratio
from modelrollout.api import labels, routing, strategies
from modelrollout.core import decision

OWNER = manifests.Owner("scorer", "ml", "uid-1")
GATEWAY = routing.Traffic.model_validate(
    {"provider": "GatewayAPI", "port": 80, "gatewayAPI": {"parentRefs": [{"name": "inference-gateway"}]}})
ISTIO = routing.Traffic.model_validate({"provider": "Istio", "port": 80, "istio": {"hosts": ["scorer"]}})
REPLICA_RATIO = routing.Traffic.model_validate({"provider": "ReplicaRatio", "port": 80})
CANARY_HOST = "scorer-canary.ml.svc.cluster.local"
STABLE_HOST = "scorer-stable.ml.svc.cluster.local"


def match(headers: dict[str, str] | None = None, cookie: tuple[str, str] | None = None) -> strategies.CohortMatch:
    body: dict[str, Any] = {}
    if headers is not None:
        body["headers"] = headers
    if cookie is not None:
        body["cookie"] = {"name": cookie[0], "value": cookie[1]}
    return strategies.CohortMatch.model_validate(body)


def ab_split(*cohort_matches: strategies.CohortMatch, weight: int = 0) -> decision.TrafficSplit:
    return decision.TrafficSplit("aaaa111111", "bbbb222222", labels.Track.CANARY, weight, 0, cohort=cohort_matches)


PLAIN = decision.TrafficSplit("aaaa111111", "bbbb222222", labels.Track.CANARY, 0, 0)
COHORT = (match({"X-Cohort": "b"}), match(cookie=("cohort", "b")))
COOKIE_REGEX = cohort.cookie_regex("cohort", "b")


def defaulted(route: dict[str, Any]) -> dict[str, Any]:
    """The HTTPRoute as the API server returns it: every rule has matches, every match a path."""
    body = copy.deepcopy(route)
    for rule in body["spec"]["rules"]:
        for item in rule.setdefault("matches", [{}]):
            item.setdefault("path", {"type": "PathPrefix", "value": "/"})
        for ref in rule["backendRefs"]:
            ref.update({"group": "", "kind": "Service", **ref})
    return body


# --- the cookie's regular expression -------------------------------------------------------------

@pytest.mark.parametrize(("cookie_header", "holds"), [
    ("cohort=b", True),
    ("a=1; cohort=b; z=2", True),
    ("a=1; cohort=b", True),
    ("cohort=b; z=2", True),
    ("a=1;cohort=b;z=2", True),  # no space after the separator
    ("a=1, cohort=b", True),  # two Cookie headers folded into one with a comma
    ("cohort=bb", False),
    ("xcohort=b", False),
    ("a=1; xcohort=b; z=2", False),
    ("a=cohort=b", False),  # the cookie a with the value cohort=b
    ("cohort=b2; z=2", False),
    ("cohort=a", False),
    ("Cohort=b", False),  # cookie names are case-sensitive
    ("cohort=", False),
    ("", False),
])
def test_the_cookie_regex_holds_for_exactly_that_cookie_matched_whole_or_searched(
        cookie_header: str, holds: bool) -> None:
    # Envoy (Istio, most Gateways) matches the whole value; an implementation may search instead.
    assert (re.fullmatch(COOKIE_REGEX, cookie_header) is not None) is holds
    assert (re.search(COOKIE_REGEX, cookie_header) is not None) is holds


def test_the_cookie_regex_is_anchored_and_escapes_only_regex_syntax() -> None:
    assert COOKIE_REGEX == r"^(.*[;,])?\s*cohort=b\s*([;,].*)?$"
    # Token characters in the name, anything but ;, and spaces in the value: literal, not syntax.
    name, value = "a.b+c|d$e^f*g-h~i#j&k'l!m%n`o", "v(1)[2]{3}?.*+\\^$|=\"x\"-~#&é"
    pattern = cohort.cookie_regex(name, value)
    assert re.fullmatch(pattern, f"z=1; {name}={value}; y=2")
    assert re.fullmatch(pattern, f"{name}={value}")
    assert not re.fullmatch(pattern, f"{name}={value}x")
    assert not re.fullmatch(pattern, f"{name.replace('.', 'x')}={value}")
    # `-`, `#`, `&`, `~`, `'`, `!`, `%`, `` ` `` and `"` stay bare: ECMAScript's u mode refuses their escapes.
    for bare in "-#&~'!%`\"é":
        assert "\\" + bare not in pattern


def test_the_longest_cookie_still_fits_a_header_match_value() -> None:
    pattern = cohort.cookie_regex("n" * 128 + "." * 128, "(" * 1024)  # 256 and 1024: the API's limits
    assert len(pattern) <= 4096  # HTTPRoute header match value


# --- Gateway API ---------------------------------------------------------------------------------

def test_the_httproute_sends_the_cohort_to_the_candidate_first_then_the_weighted_rule() -> None:
    route = gateway_api.route(OWNER, GATEWAY, ab_split(*COHORT))
    first, default = route["spec"]["rules"]
    assert first == {
        "matches": [
            {"headers": [{"type": "Exact", "name": "x-cohort", "value": "b"}]},
            {"headers": [{"type": "RegularExpression", "name": "cookie", "value": COOKIE_REGEX}]},
        ],
        "backendRefs": [{"name": "scorer-canary", "port": 80, "weight": 100}],
    }
    # The weighted rule is the one a split without a cohort writes: everything else stays on stable.
    assert default == gateway_api.route(OWNER, GATEWAY, PLAIN)["spec"]["rules"][0]
    assert default == {"backendRefs": [{"name": "scorer-stable", "port": 80, "weight": 100},
                                       {"name": "scorer-canary", "port": 80, "weight": 0}]}


def test_a_match_with_headers_and_a_cookie_needs_all_of_them_in_a_stable_order() -> None:
    one = match({"X-Variant": "2", "x-cohort": "b"}, cookie=("beta", "yes"))
    other = match({"x-cohort": "b", "X-Variant": "2"}, cookie=("beta", "yes"))
    route = gateway_api.route(OWNER, GATEWAY, ab_split(one))
    assert route == gateway_api.route(OWNER, GATEWAY, ab_split(other))
    assert route["spec"]["rules"][0]["matches"] == [{"headers": [
        {"type": "Exact", "name": "x-cohort", "value": "b"},
        {"type": "Exact", "name": "x-variant", "value": "2"},
        {"type": "RegularExpression", "name": "cookie", "value": cohort.cookie_regex("beta", "yes")},
    ]}]


def test_a_split_without_a_cohort_keeps_its_single_rule() -> None:
    route = gateway_api.route(OWNER, GATEWAY, decision.TrafficSplit("a", "b", labels.Track.CANARY, 30, 0))
    assert [[b["weight"] for b in r["backendRefs"]] for r in route["spec"]["rules"]] == [[70, 30]]
    assert "matches" not in route["spec"]["rules"][0]


def test_held_reads_the_weighted_rule_so_a_cohort_route_holds_weight_0() -> None:
    route = gateway_api.route(OWNER, GATEWAY, ab_split(*COHORT))
    for body in (route, defaulted(route)):
        assert gateway_api.held(body, "scorer") == (0, 0)
        assert gateway_api.cohort_held(body, "scorer")
    weighted = gateway_api.route(OWNER, GATEWAY, ab_split(*COHORT, weight=20))
    assert gateway_api.held(defaulted(weighted), "scorer") == (20, 0)
    for split in (PLAIN, decision.TrafficSplit("a", "b", labels.Track.CANARY, 25, 0),
                  decision.TrafficSplit("a", "b", labels.Track.SHADOW, 0, 40)):
        plain = gateway_api.route(OWNER, GATEWAY, split)
        assert gateway_api.held(defaulted(plain), "scorer") == (split.canary_weight, split.mirror_percent)
        assert not gateway_api.cohort_held(defaulted(plain), "scorer")


@pytest.mark.parametrize("body", [
    {"headers": {"X-Cohort": "b", "x-cohort": "c"}},
    {"headers": {"Cookie": "cohort=b"}, "cookie": {"name": "cohort", "value": "b"}},
])
def test_two_conditions_on_one_header_never_reach_a_router(body: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError, match="header"):
        strategies.CohortMatch.model_validate(body)


def test_an_httproute_match_holds_at_most_16_headers_and_the_cookie_is_one() -> None:
    sixteen = {f"x-h{i}": "1" for i in range(16)}
    gateway_api.route(OWNER, GATEWAY, ab_split(match(sixteen)))
    gateway_api.route(OWNER, GATEWAY, ab_split(match(dict(list(sixteen.items())[:15]), cookie=("c", "1"))))
    with pytest.raises(errors.SpecError, match=r"match\[1\]: 17 header conditions .* at most 16"):
        gateway_api.route(OWNER, GATEWAY, ab_split(match({"x": "1"}), match(sixteen, cookie=("c", "1"))))
    # Istio has no such limit.
    service = istio.virtual_service(OWNER, ISTIO, ab_split(match(sixteen, cookie=("c", "1"))))
    assert len(service["spec"]["http"][0]["match"][0]["headers"]) == 17


# --- Istio ---------------------------------------------------------------------------------------

def test_the_virtualservice_sends_the_cohort_to_the_candidate_first_then_the_weighted_route() -> None:
    service = istio.virtual_service(OWNER, ISTIO, ab_split(*COHORT, match({"X-Variant": "2", "X-Beta": "yes"})))
    first, primary = service["spec"]["http"]
    assert first == {
        "name": "cohort",
        "match": [
            {"headers": {"x-cohort": {"exact": "b"}}},
            {"headers": {"cookie": {"regex": COOKIE_REGEX}}},
            {"headers": {"x-beta": {"exact": "yes"}, "x-variant": {"exact": "2"}}},
        ],
        "route": [{"destination": {"host": CANARY_HOST, "port": {"number": 80}}, "weight": 100}],
    }
    assert list(first["match"][2]["headers"]) == ["x-beta", "x-variant"]  # sorted: a stable order
    assert primary == istio.virtual_service(OWNER, ISTIO, PLAIN)["spec"]["http"][0]
    assert primary["name"] == "primary"
    assert [(r["destination"]["host"], r["weight"]) for r in primary["route"]] == [(STABLE_HOST, 100), (CANARY_HOST, 0)]


def test_istio_held_reads_the_weighted_route_so_a_cohort_route_holds_weight_0() -> None:
    service = istio.virtual_service(OWNER, ISTIO, ab_split(*COHORT))
    assert istio.held(service, "scorer") == (0, 0)
    assert istio.cohort_held(service, "scorer")
    assert istio.held(istio.virtual_service(OWNER, ISTIO, ab_split(*COHORT, weight=20)), "scorer") == (20, 0)
    for split in (PLAIN, decision.TrafficSplit("a", "b", labels.Track.CANARY, 25, 0),
                  decision.TrafficSplit("a", "b", labels.Track.SHADOW, 0, 40)):
        plain = istio.virtual_service(OWNER, ISTIO, split)
        assert len(plain["spec"]["http"]) == 1
        assert istio.held(plain, "scorer") == (split.canary_weight, split.mirror_percent)
        assert not istio.cohort_held(plain, "scorer")


# --- ReplicaRatio --------------------------------------------------------------------------------

def test_replica_ratio_refuses_a_cohort_instead_of_splitting_by_replicas() -> None:
    router = replica_ratio.ReplicaRatioRouter(cast(kube.Kube, None))  # it writes nothing
    router.apply(OWNER, REPLICA_RATIO, PLAIN)
    with pytest.raises(errors.SpecError, match="ReplicaRatio cannot route requests by header or cookie"):
        router.apply(OWNER, REPLICA_RATIO, ab_split(*COHORT))


# --- what the e2e load generator does with them --------------------------------------------------

PODS = [
    loadgen.Pod("ml", "scorer-stable-1", 9001, {labels.NAME: "scorer", labels.REVISION: "aaaa111111"}),
    loadgen.Pod("ml", "scorer-canary-1", 9002, {labels.NAME: "scorer", labels.REVISION: "bbbb222222"}),
]
MODEL_DEPLOYMENT = {"metadata": {"name": "scorer", "namespace": "ml",
                                 "annotations": {loadgen.RPS_ANNOTATION: "10"}}, "spec": {}}
SERVICES = [
    manifests.track_service(OWNER, labels.Track.STABLE, "aaaa111111", 80, "http"),
    manifests.track_service(OWNER, labels.Track.CANARY, "bbbb222222", 80, "http"),
]
REQUESTS = [
    ({"x-cohort": "b"}, "scorer-canary"),
    ({"X-Cohort": "b"}, "scorer-canary"),
    ({"Cookie": "cohort=b"}, "scorer-canary"),
    ({"Cookie": "a=1; cohort=b; z=2"}, "scorer-canary"),
    ({}, "scorer-stable"),
    ({"x-cohort": "a"}, "scorer-stable"),
    ({"x-cohort": "bb"}, "scorer-stable"),
    ({"Cookie": "cohort=bb"}, "scorer-stable"),
    ({"Cookie": "xcohort=b"}, "scorer-stable"),
    ({"Cookie": "a=1; z=2"}, "scorer-stable"),
]


def _loadgen_route(snapshot: loadgen.Snapshot) -> loadgen.Route:
    route = loadgen.table(snapshot, PODS)[("ml", "scorer")]
    assert route.problems == ()
    return route


def _backend(route: loadgen.Route, headers: dict[str, str]) -> str:
    rule = loadgen.matching_rule(route, headers)
    assert rule is not None
    live = [b for b in rule.backends if b.weight > 0]
    assert len(live) == 1  # weights 100 and 0: no draw decides it
    assert live[0].pods  # the Service selects a ready pod
    return live[0].name


@pytest.mark.parametrize(("headers", "backend"), REQUESTS)
def test_the_load_generator_sends_the_cohort_of_the_httproute_to_the_canary(
        headers: dict[str, str], backend: str) -> None:
    route = defaulted(gateway_api.route(OWNER, GATEWAY, ab_split(*COHORT)))
    snapshot = loadgen.Snapshot([MODEL_DEPLOYMENT], SERVICES, httproutes=[route])
    assert _backend(_loadgen_route(snapshot), headers) == backend


@pytest.mark.parametrize(("headers", "backend"), REQUESTS)
def test_the_load_generator_sends_the_cohort_of_the_virtualservice_to_the_canary(
        headers: dict[str, str], backend: str) -> None:
    service = istio.virtual_service(OWNER, ISTIO, ab_split(*COHORT))
    snapshot = loadgen.Snapshot([MODEL_DEPLOYMENT], SERVICES, virtualservices=[service])
    assert _backend(_loadgen_route(snapshot), headers) == backend
