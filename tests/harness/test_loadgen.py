"""The load generator: its pure routing decision (tables of plain dicts) and its sending loop
against real model server processes, then the whole CLI against a small fake API server.

The routing must say what a Gateway or Istio would do with the routes the operator writes:
weights, weight 0, mirrors, VirtualService host forms, header and cookie matches, and the
fallbacks when no route exists; the headers annotation must put the asked share of requests
into the matching rule.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict
from prometheus_client.parser import text_string_to_metric_families

from e2e.loadgen import endpoints, routing
from e2e.loadgen.metrics import LoadgenMetrics
from e2e.loadgen.routing import HeaderShare, Pod, Rule, Snapshot
from e2e.loadgen.sender import Sender, Window, summary
from e2e.modelserver import dataset, process

NS = "ml"
RPS = {routing.RPS_ANNOTATION: "10"}


def obj(name: str, spec: dict[str, Any] | None = None, ns: str = NS, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, **meta}, "spec": spec or {}}


def svc(name: str, selector: dict[str, str] | None, ns: str = NS, **meta: Any) -> dict[str, Any]:
    return obj(name, {"selector": selector} if selector is not None else {}, ns, **meta)


def mdep(name: str = "scorer", ns: str = NS, rps: str = "10", headers: str | None = None) -> dict[str, Any]:
    annotations = {routing.RPS_ANNOTATION: rps}
    if headers is not None:
        annotations[routing.HEADERS_ANNOTATION] = headers
    return obj(name, {}, ns, annotations=annotations)


def pod(name: str, track: str, port: int, ready: bool = True, ns: str = NS, app: str = "scorer") -> Pod:
    return Pod(ns, name, port, {routing.NAME_LABEL: app, "modelrollout.io/track": track}, ready)


PODS = [
    pod("scorer-stable-1", "stable", 9001),
    pod("scorer-stable-2", "stable", 9002),
    pod("scorer-canary-1", "canary", 9003),
    pod("scorer-canary-2", "canary", 9004, ready=False),
    pod("scorer-shadow-1", "shadow", 9005),
    pod("scorer-stable-x", "stable", 9006, ns="other"),
]
TRACK_SERVICES = [
    svc("scorer", {routing.NAME_LABEL: "scorer"}),
    *(svc(f"scorer-{t}", {routing.NAME_LABEL: "scorer", "modelrollout.io/track": t})
      for t in ("stable", "canary", "shadow")),
]


def httproute(name: str, refs: list[dict[str, Any]], filters: list[dict[str, Any]] | None = None,
              parents: list[dict[str, Any]] | None = None, ns: str = NS) -> dict[str, Any]:
    rule: dict[str, Any] = {"backendRefs": refs}
    if filters is not None:
        rule["filters"] = filters
    return obj(name, {"parentRefs": parents or [{"name": "inference-gateway"}], "rules": [rule]}, ns)


def httproute_rules(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return obj(name, {"parentRefs": [{"name": "inference-gateway"}], "rules": rules})


def header(name: str, value: str, kind: str | None = None) -> dict[str, str]:
    """An HTTPRoute header match; no kind: the default (Exact)."""
    return {"name": name, "value": value, **({"type": kind} if kind else {})}


def when(*headers: dict[str, str]) -> list[dict[str, Any]]:
    """HTTPRoute `matches` with one match of all these headers."""
    return [{"headers": list(headers)}]


def mirror_filter(name: str, **share: Any) -> dict[str, Any]:
    return {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": name, "port": 80}, **share}}


def virtualservice(name: str, http: dict[str, Any] | list[dict[str, Any]],
                   hosts: list[str] | None = None) -> dict[str, Any]:
    return obj(name, {"hosts": hosts or [name], "http": http if isinstance(http, list) else [http]})


def to(host: str) -> list[dict[str, Any]]:
    """A VirtualService entry's `route`: everything to one host."""
    return [{"destination": {"host": host}}]


def route_of(snapshot: Snapshot, pods: list[Pod] = PODS, name: str = "scorer") -> routing.Route:
    return routing.table(snapshot, pods)[(NS, name)]


def shape(route: routing.Route) -> tuple[list[tuple[str, int, list[str]]], list[tuple[str, float]]]:
    """(backend name, weight, pod names) and (mirror name, percent) of a route's only rule, which
    must take every request: what the tables compare."""
    (rule,) = route.rules
    assert rule.when == ()
    return (
        [(b.name, b.weight, [p.name for p in b.pods]) for b in rule.backends],
        [(m.backend.name, m.percent) for m in rule.mirrors],
    )


def destination(route: routing.Route, headers: dict[str, str]) -> list[str] | None:
    """The backends of the rule a request with these headers goes to; None: no rule (404)."""
    rule = routing.matching_rule(route, headers)
    return None if rule is None else [b.name for b in rule.backends]


def refs(**weights: int) -> list[dict[str, Any]]:
    """backendRefs: refs(stable=90, canary=10) -> scorer-stable 90, scorer-canary 10."""
    return [{"name": f"scorer-{track}", "weight": w} for track, w in weights.items()]


STABLE_PODS = ["scorer-stable-1", "scorer-stable-2"]
CANARY_PODS = ["scorer-canary-1"]


# ---- targets --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        (Snapshot(modeldeployments=[mdep()]), {(NS, "scorer"): 10.0}),
        (Snapshot(modeldeployments=[obj("scorer")]), {}),  # no annotation: no traffic
        (Snapshot(modeldeployments=[mdep(rps="many")]), {}),
        (Snapshot(modeldeployments=[mdep(rps="0")]), {}),
        (Snapshot(modeldeployments=[mdep(rps="2.5")]), {(NS, "scorer"): 2.5}),
        (Snapshot(services=[svc("plain", {"app": "x"}, annotations=RPS)]), {(NS, "plain"): 10.0}),
        # the ModelDeployment and its user-facing Service are one target
        (Snapshot(modeldeployments=[mdep(rps="5")], services=[svc("scorer", {}, annotations=RPS)]),
         {(NS, "scorer"): 5.0}),
        (Snapshot(modeldeployments=[mdep(), mdep(ns="b")]), {(NS, "scorer"): 10.0, ("b", "scorer"): 10.0}),
    ],
)
def test_targets(snapshot: Snapshot, expected: dict[tuple[str, str], float]) -> None:
    assert routing.targets(snapshot) == expected


# ---- routes ---------------------------------------------------------------------------------

ROUTE_CASES: list[tuple[str, Snapshot, str, Any]] = [
    (
        "HTTPRoute weights",
        Snapshot([mdep()], TRACK_SERVICES, [httproute("scorer", refs(stable=90, canary=10))]),
        "HTTPRoute/scorer",
        ([("scorer-stable", 90, STABLE_PODS), ("scorer-canary", 10, CANARY_PODS)], []),
    ),
    (
        "HTTPRoute weight defaults to 1",
        Snapshot([mdep()], TRACK_SERVICES, [httproute("scorer", [{"name": "scorer-stable"}])]),
        "HTTPRoute/scorer",
        ([("scorer-stable", 1, STABLE_PODS)], []),
    ),
    (
        "HTTPRoute weight 0 kept, with weight 0",
        Snapshot([mdep()], TRACK_SERVICES, [httproute("scorer", refs(stable=100, canary=0))]),
        "HTTPRoute/scorer",
        ([("scorer-stable", 100, STABLE_PODS), ("scorer-canary", 0, CANARY_PODS)], []),
    ),
    (
        "HTTPRoute found by a Service parentRef (GAMMA)",
        Snapshot([mdep()], TRACK_SERVICES, [httproute(
            "other-name", [{"name": "scorer-canary"}], parents=[{"kind": "Service", "name": "scorer"}])]),
        "HTTPRoute/other-name",
        ([("scorer-canary", 1, CANARY_PODS)], []),
    ),
    (
        "a Gateway parentRef with the target's name does not count",
        Snapshot([mdep()], TRACK_SERVICES, [httproute(
            "other-name", [{"name": "scorer-canary"}], parents=[{"kind": "Gateway", "name": "scorer"}])]),
        "Service/scorer",
        ([("scorer", 1, [*STABLE_PODS, "scorer-canary-1", "scorer-shadow-1"])], []),
    ),
    (
        "HTTPRoute in another namespace does not count",
        Snapshot([mdep()], TRACK_SERVICES, [httproute("scorer", [{"name": "scorer-canary"}], ns="other")]),
        "Service/scorer",
        ([("scorer", 1, [*STABLE_PODS, "scorer-canary-1", "scorer-shadow-1"])], []),
    ),
    (
        "HTTPRoute mirror with percent",
        Snapshot([mdep()], TRACK_SERVICES,
                 [httproute("scorer", [{"name": "scorer-stable"}], [mirror_filter("scorer-shadow", percent=25)])]),
        "HTTPRoute/scorer",
        ([("scorer-stable", 1, STABLE_PODS)], [("scorer-shadow", 25.0)]),
    ),
    (
        "HTTPRoute mirror with fraction",
        Snapshot([mdep()], TRACK_SERVICES,
                 [httproute("scorer", [{"name": "scorer-stable"}],
                            [mirror_filter("scorer-shadow", fraction={"numerator": 1, "denominator": 8})])]),
        "HTTPRoute/scorer",
        ([("scorer-stable", 1, STABLE_PODS)], [("scorer-shadow", 12.5)]),
    ),
    (
        "HTTPRoute mirror without a share takes all",
        Snapshot([mdep()], TRACK_SERVICES,
                 [httproute("scorer", [{"name": "scorer-stable"}], [mirror_filter("scorer-shadow")])]),
        "HTTPRoute/scorer",
        ([("scorer-stable", 1, STABLE_PODS)], [("scorer-shadow", 100.0)]),
    ),
    (
        "HTTPRoute wins over a VirtualService",
        Snapshot([mdep()], TRACK_SERVICES, [httproute("scorer", [{"name": "scorer-canary"}])],
                 [virtualservice("scorer", {"route": [{"destination": {"host": "scorer-stable"}}]})]),
        "HTTPRoute/scorer",
        ([("scorer-canary", 1, CANARY_PODS)], []),
    ),
    (
        "VirtualService by name, weights and mirror percentage",
        Snapshot([mdep()], TRACK_SERVICES, [], [virtualservice("scorer", {
            "route": [{"destination": {"host": "scorer-stable"}, "weight": 75},
                      {"destination": {"host": "scorer-canary"}, "weight": 25}],
            "mirror": {"host": "scorer-shadow"}, "mirrorPercentage": {"value": 12.5}})]),
        "VirtualService/scorer",
        ([("scorer-stable", 75, STABLE_PODS), ("scorer-canary", 25, CANARY_PODS)], [("scorer-shadow", 12.5)]),
    ),
    (
        "VirtualService by FQDN host; a lone destination takes all; mirror without a share takes all",
        Snapshot([mdep()], TRACK_SERVICES, [], [virtualservice("vs", {
            "route": [{"destination": {"host": "scorer-canary.ml.svc.cluster.local"}}],
            "mirror": {"host": "scorer-shadow.ml.svc.cluster.local"}},
            hosts=["scorer.ml.svc.cluster.local"])]),
        "VirtualService/vs",
        ([("scorer-canary", 100, CANARY_PODS)], [("scorer-shadow", 100.0)]),
    ),
    (
        "VirtualService by short host; a missing weight among several is 0",
        Snapshot([mdep()], TRACK_SERVICES, [], [virtualservice("vs", {
            "route": [{"destination": {"host": "scorer-stable"}, "weight": 100},
                      {"destination": {"host": "scorer-canary"}}]}, hosts=["scorer"])]),
        "VirtualService/vs",
        ([("scorer-stable", 100, STABLE_PODS), ("scorer-canary", 0, CANARY_PODS)], []),
    ),
    (
        "VirtualService for another host does not count",
        Snapshot([mdep()], TRACK_SERVICES, [], [virtualservice("vs", {
            "route": [{"destination": {"host": "scorer-canary"}}]}, hosts=["scorer.other.svc.cluster.local"])]),
        "Service/scorer",
        ([("scorer", 1, [*STABLE_PODS, "scorer-canary-1", "scorer-shadow-1"])], []),
    ),
    (
        "HTTPRoute without rules: one rule for every request, with no backend",
        Snapshot([mdep()], TRACK_SERVICES, [httproute_rules("scorer", [])]),
        "HTTPRoute/scorer",
        ([], []),
    ),
    (
        "no route: the Service named like the target",
        Snapshot([mdep()], [svc("scorer", {"modelrollout.io/track": "stable"})]),
        "Service/scorer",
        ([("scorer", 1, STABLE_PODS)], []),
    ),
    (
        "a Service without a selector selects nothing",
        Snapshot([mdep()], [svc("scorer", None)]),
        "Service/scorer",
        ([("scorer", 1, [])], []),
    ),
    (
        "no route, no Service: the ready pods labelled with the name",
        Snapshot([mdep()]),
        f"pods/{routing.NAME_LABEL}=scorer",
        ([(routing.PODS_BACKEND, 1, [*STABLE_PODS, "scorer-canary-1", "scorer-shadow-1"])], []),
    ),
]


@pytest.mark.parametrize(("case", "snapshot", "via", "expected"), ROUTE_CASES, ids=[c[0] for c in ROUTE_CASES])
def test_route(case: str, snapshot: Snapshot, via: str, expected: Any) -> None:
    route = route_of(snapshot)
    assert (route.via, shape(route)) == (via, expected)
    assert route.rps == 10.0


def test_no_ready_pods_anywhere() -> None:
    route = route_of(Snapshot([mdep()]), pods=[pod("scorer-1", "stable", 9001, ready=False)])
    assert shape(route) == ([(routing.PODS_BACKEND, 1, [])], [])
    assert routing.pick(route.rules[0], random.Random(1)) == (routing.PODS_BACKEND, None)


# ---- per-request draws ----------------------------------------------------------------------


def draws(route: routing.Route, n: int = 4000) -> dict[str, int]:
    rng = random.Random(11)
    counts: dict[str, int] = {}
    (rule,) = route.rules
    for _ in range(n):
        backend, chosen = routing.pick(rule, rng)
        key = f"{backend}:{chosen.name if chosen else None}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_pick_follows_the_weights() -> None:
    route = route_of(Snapshot([mdep()], TRACK_SERVICES, [httproute(
        "scorer", [{"name": "scorer-stable", "weight": 90}, {"name": "scorer-canary", "weight": 10}])]))
    counts = draws(route)
    canary = counts["scorer-canary:scorer-canary-1"]
    assert abs(canary - 400) < 5 * math.sqrt(4000 * 0.09)
    assert abs(counts["scorer-stable:scorer-stable-1"] - counts["scorer-stable:scorer-stable-2"]) < 5 * math.sqrt(3600)


def test_weight_zero_gets_nothing_and_all_zero_is_no_backend() -> None:
    snapshot = Snapshot([mdep()], TRACK_SERVICES, [httproute(
        "scorer", [{"name": "scorer-stable", "weight": 0}, {"name": "scorer-canary", "weight": 1}])])
    assert set(draws(route_of(snapshot))) == {"scorer-canary:scorer-canary-1"}
    nothing = Snapshot([mdep()], TRACK_SERVICES, [httproute("scorer", [{"name": "scorer-stable", "weight": 0}])])
    assert set(draws(route_of(nothing))) == {":None"}
    no_refs = Snapshot([mdep()], TRACK_SERVICES, [httproute("scorer", [])])
    assert set(draws(route_of(no_refs))) == {":None"}


def test_a_backend_without_ready_pods_is_named_but_has_no_pod() -> None:
    snapshot = Snapshot([mdep()], [*TRACK_SERVICES, svc("scorer-empty", {"app": "none"})],
                        [httproute("scorer", [{"name": "scorer-empty"}])])
    assert set(draws(route_of(snapshot))) == {"scorer-empty:None"}


def test_mirror_share() -> None:
    snapshot = Snapshot([mdep()], TRACK_SERVICES, [httproute(
        "scorer", [{"name": "scorer-stable"}], [mirror_filter("scorer-shadow", percent=30)])])
    (rule,) = route_of(snapshot).rules
    rng = random.Random(3)
    copies = [routing.mirrored(rule, rng) for _ in range(4000)]
    assert abs(sum(map(len, copies)) - 1200) < 5 * math.sqrt(4000 * 0.21)
    assert {c for cs in copies for c in cs} == {("scorer-shadow", PODS[4])}
    empty = Snapshot([mdep()], TRACK_SERVICES, [httproute(
        "scorer", [{"name": "scorer-stable"}], [mirror_filter("nowhere")])])
    assert routing.mirrored(route_of(empty).rules[0], rng) == []


@pytest.mark.parametrize(
    ("spec", "percent"),
    [({"percent": 40}, 40.0), ({"fraction": {"numerator": 3, "denominator": 4}}, 75.0),
     ({"fraction": {"numerator": 5}}, 5.0), ({}, 100.0), ({"percent": 250}, 100.0), ({"percent": -3}, 0.0)],
)
def test_mirror_percent(spec: dict[str, Any], percent: float) -> None:
    assert routing.mirror_percent(spec) == percent


# ---- headers: the annotation, the draws and the rules that match them -----------------------


@pytest.mark.parametrize(
    ("annotation", "shares", "problems"),
    [
        ("x-cohort=b@30", [HeaderShare("x-cohort", "b", 30.0)], []),
        ("x-cohort=b", [HeaderShare("x-cohort", "b", 100.0)], []),
        (" x-cohort = b @ 30 , x-beta=yes@10, ",
         [HeaderShare("x-cohort", "b", 30.0), HeaderShare("x-beta", "yes", 10.0)], []),
        ("cookie:cohort=b@30", [HeaderShare("cohort", "b", 30.0, cookie=True)], []),
        ("Cookie:cohort=b@12.5%,cookie:theme=dark",
         [HeaderShare("cohort", "b", 12.5, cookie=True), HeaderShare("theme", "dark", 100.0, cookie=True)], []),
        ("x-user=a@b.example@5", [HeaderShare("x-user", "a@b.example", 5.0)], []),  # the last @ gives the share
        ("x-cohort=a@30,X-Cohort=b@70", [HeaderShare("x-cohort", "a", 30.0), HeaderShare("X-Cohort", "b", 70.0)], []),
        ("", [], []),
        ("x-cohort", [], ["expected NAME=VALUE"]),
        ("x-cohort=b@lots", [], ["'lots' after @ is not a percentage"]),
        ("x-cohort=b@130", [], ["not within 0..100"]),
        ("x-cohort=b@-1", [], ["not within 0..100"]),
        ("x-cohort=b@nan", [], ["not within 0..100"]),
        ("x-user=a@b.example", [], ["not a percentage"]),
        ("x cohort=b", [], ["'x cohort' is not a header name"]),
        ("x-cohort=", [], ["'' is not a header value"]),
        ("cookie:cohort=b c", [], ["'b c' is not a cookie value"]),
        ("cookie=cohort=b", [], ["cookie:NAME=VALUE"]),
        ("Content-Type=text/plain", [], ["set by the load generator"]),
        ("x-cohort=a@70,x-cohort=b@40", [HeaderShare("x-cohort", "a", 70.0)], ["add up to 110 %"]),
        ("x-cohort=b@30,broken,x-beta=yes,cookie:=1",
         [HeaderShare("x-cohort", "b", 30.0), HeaderShare("x-beta", "yes", 100.0)], ["'broken'", "'cookie:=1'"]),
    ],
)
def test_header_shares(annotation: str, shares: list[HeaderShare], problems: list[str]) -> None:
    parsed, reported = routing.header_shares(annotation)
    assert list(parsed) == shares
    assert len(reported) == len(problems), reported
    for expected, got in zip(problems, reported, strict=True):
        assert expected in got


def test_table_takes_the_headers_of_the_object_that_gave_the_rps_and_reports_what_it_left_out() -> None:
    snapshot = Snapshot([mdep(headers="x-cohort=b@30,oops")],
                        [svc("scorer", {}, annotations={**RPS, routing.HEADERS_ANNOTATION: "x-other=1"})])
    route = route_of(snapshot)
    assert route.headers == (HeaderShare("x-cohort", "b", 30.0),)
    assert route.problems == (f"{routing.HEADERS_ANNOTATION} 'oops': expected NAME=VALUE or cookie:NAME=VALUE",)
    assert route_of(Snapshot([mdep()])).headers == ()


def share(items: list[Any], holds: Callable[[Any], bool]) -> float:
    return sum(1 for i in items if holds(i)) / len(items)


def binomial_bound(p: float, n: int) -> float:
    """Five standard deviations of a share p estimated from n draws."""
    return 5 * math.sqrt(p * (1 - p) / n)


def test_request_headers_draw_each_name_on_its_own_and_join_the_cookies() -> None:
    shares, problems = routing.header_shares(
        "x-cohort=b@30,x-variant=a@20,x-variant=b@50,cookie:session=s1@50,cookie:theme=dark")
    assert problems == ()
    route = routing.Route(NS, "t", 1.0, "test", headers=shares)
    rng = random.Random(4)
    n = 10000
    drawn = [routing.request_headers(route, rng) for _ in range(n)]
    expected = [
        (lambda h: h.get("x-cohort") == "b", 0.30),
        (lambda h: h.get("x-variant") == "a", 0.20),
        (lambda h: h.get("x-variant") == "b", 0.50),  # one draw per name: a and b never together
        (lambda h: "x-variant" not in h, 0.30),
        (lambda h: h["Cookie"] == "session=s1; theme=dark", 0.50),
        (lambda h: h.get("x-cohort") == "b" and "session" in h["Cookie"], 0.15),  # independent draws
    ]
    for holds, p in expected:
        assert abs(share(drawn, holds) - p) < binomial_bound(p, n)
    assert {h["Cookie"] for h in drawn} == {"session=s1; theme=dark", "theme=dark"}
    assert routing.request_headers(routing.Route(NS, "t", 1.0, "test"), rng) == {}


def test_a_header_rule_takes_only_matching_requests_to_the_challenger() -> None:
    route = route_of(Snapshot([mdep(headers="x-cohort=b@30")], TRACK_SERVICES, [httproute_rules("scorer", [
        {"backendRefs": refs(stable=1)},  # listed first, yet tried after the rule with a header match
        {"matches": when(header("x-cohort", "b")), "backendRefs": refs(canary=1)},
    ])]))
    assert destination(route, {"x-cohort": "b"}) == ["scorer-canary"]
    assert destination(route, {"X-COHORT": "b"}) == ["scorer-canary"]  # names in any case
    assert destination(route, {"x-cohort": "B"}) == ["scorer-stable"]  # values exactly
    assert destination(route, {"x-cohort": "bb"}) == ["scorer-stable"]
    assert destination(route, {}) == ["scorer-stable"]

    rng = random.Random(8)
    n = 4000
    sent = []
    for _ in range(n):
        headers = routing.request_headers(route, rng)
        rule = routing.matching_rule(route, headers)
        assert rule is not None
        sent.append((headers, routing.pick(rule, rng)[0]))
    assert all((backend == "scorer-canary") == (headers.get("x-cohort") == "b") for headers, backend in sent)
    assert abs(share(sent, lambda s: s[1] == "scorer-canary") - 0.30) < binomial_bound(0.30, n)


#: Cookie `cohort=b` among any others; a RegularExpression match covers the whole header value.
COHORT_B_COOKIE = r"(.*;\s*)?cohort=b(;.*)?"


@pytest.mark.parametrize(
    ("cookie", "challenger"),
    [("cohort=b", True), ("theme=dark; cohort=b", True), ("cohort=b; theme=dark", True),
     ("theme=dark;cohort=b;x=1", True), ("cohort=bb", False), ("xcohort=b", False),
     ("theme=cohort=b", False), ("cohort=a", False), (None, False)],
)
def test_a_cookie_is_matched_by_a_regular_expression_on_the_cookie_header(cookie: str | None,
                                                                          challenger: bool) -> None:
    route = route_of(Snapshot([mdep()], TRACK_SERVICES, [httproute_rules("scorer", [
        {"matches": when(header("Cookie", COHORT_B_COOKIE, "RegularExpression")), "backendRefs": refs(canary=1)},
        {"backendRefs": refs(stable=1)},
    ])]))
    headers = {} if cookie is None else {"Cookie": cookie}
    assert destination(route, headers) == (["scorer-canary"] if challenger else ["scorer-stable"])


def test_a_drawn_cookie_reaches_the_rule_that_matches_it() -> None:
    route = route_of(Snapshot([mdep(headers="cookie:theme=dark,cookie:cohort=b@30")], TRACK_SERVICES, [
        httproute_rules("scorer", [
            {"matches": when(header("cookie", COHORT_B_COOKIE, "RegularExpression")), "backendRefs": refs(canary=1)},
            {"backendRefs": refs(stable=1)},
        ])]))
    rng = random.Random(6)
    n = 4000
    chosen = [destination(route, routing.request_headers(route, rng)) for _ in range(n)]
    assert abs(share(chosen, lambda d: d == ["scorer-canary"]) - 0.30) < binomial_bound(0.30, n)


def test_the_first_matching_rule_wins() -> None:
    route = route_of(Snapshot([mdep()], TRACK_SERVICES, [httproute_rules("scorer", [
        {"backendRefs": refs(stable=1)},
        {"matches": when(header("x-cohort", "b")), "backendRefs": refs(canary=1)},
        # two header conditions: tried before the one-condition rules, wherever it is listed
        {"matches": when(header("x-cohort", "b"), header("x-beta", "yes")), "backendRefs": refs(shadow=1)},
        {"matches": when(header("x-cohort", "b")), "backendRefs": refs(stable=1)},  # shadowed by rule 1
        # any of a rule's matches: x-beta alone, or x-cohort c
        {"matches": [*when(header("x-beta", "yes")), *when(header("x-cohort", "c"))], "backendRefs": refs(shadow=1)},
    ])]))
    assert destination(route, {"x-cohort": "b", "x-beta": "yes"}) == ["scorer-shadow"]
    assert destination(route, {"x-cohort": "b"}) == ["scorer-canary"]
    assert destination(route, {"x-beta": "yes"}) == ["scorer-shadow"]
    assert destination(route, {"x-cohort": "c"}) == ["scorer-shadow"]
    assert destination(route, {"x-cohort": "a"}) == ["scorer-stable"]
    assert [len(r.when) for r in route.rules] == [2, 1, 1, 1, 1, 0]

    vs = route_of(Snapshot([mdep()], TRACK_SERVICES, [], [virtualservice("scorer", [
        {"match": [{"headers": {"x-cohort": {"exact": "b"}}}], "route": to("scorer-canary")},
        {"route": to("scorer-stable")},
        # Istio keeps the listed order: nothing gets past the entry without a match
        {"match": [{"headers": {"x-beta": {"exact": "yes"}}}], "route": to("scorer-shadow")},
    ])]))
    assert destination(vs, {"x-cohort": "b", "x-beta": "yes"}) == ["scorer-canary"]
    assert destination(vs, {"x-beta": "yes"}) == ["scorer-stable"]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"x-cohort": "b"}, ["scorer-canary"]), ({"x-tier": "gold-plus"}, ["scorer-canary"]),
     ({"cookie": "a=1; cohort=b"}, ["scorer-shadow"]), ({"x-tier": "silver"}, ["scorer-stable"]),
     ({"x-cohort": "a"}, ["scorer-stable"])],
)
def test_virtualservice_header_matches(headers: dict[str, str], expected: list[str]) -> None:
    route = route_of(Snapshot([mdep()], TRACK_SERVICES, [], [virtualservice("scorer", [
        {"match": [{"headers": {"x-cohort": {"exact": "b"}}}, {"headers": {"x-tier": {"prefix": "gold"}}}],
         "route": to("scorer-canary")},
        {"match": [{"headers": {"cookie": {"regex": COHORT_B_COOKIE}}}],
         "route": to("scorer-shadow")},
        {"route": to("scorer-stable")},
    ])]))
    assert destination(route, headers) == expected


def test_a_request_no_rule_takes_goes_nowhere() -> None:
    only_b = [{"matches": when(header("x-cohort", "b")), "backendRefs": refs(canary=1)}]
    route = route_of(Snapshot([mdep()], TRACK_SERVICES, [httproute_rules("scorer", only_b)]))
    assert destination(route, {"x-cohort": "b"}) == ["scorer-canary"]
    assert destination(route, {"x-cohort": "a"}) is None
    assert destination(route, {}) is None
    vs = route_of(Snapshot([mdep()], TRACK_SERVICES, [], [virtualservice("scorer", {
        "match": [{"headers": {"x-cohort": {"exact": "b"}}}], "route": to("scorer-canary")})]))
    assert destination(vs, {}) is None


def test_unusable_matches_are_left_out_and_reported() -> None:
    route = route_of(Snapshot([mdep()], TRACK_SERVICES, [httproute_rules("scorer", [
        # a bad match never makes its rule take everything; the rule's good match still counts
        {"matches": [*when(header("x-cohort", "(", "RegularExpression")), *when(header("x-cohort", "b"))],
         "backendRefs": refs(canary=1)},
        {"matches": when(header("x-cohort", "a", "Prefix")), "backendRefs": refs(shadow=1)},
    ])]))
    assert destination(route, {"x-cohort": "b"}) == ["scorer-canary"]
    assert destination(route, {"x-cohort": "("}) is None
    assert destination(route, {"x-cohort": "a"}) is None
    assert len(route.problems) == 2
    assert "HTTPRoute/scorer rule 0: bad regular expression '('" in route.problems[0]
    assert "HTTPRoute/scorer rule 1: header match type 'Prefix'" in route.problems[1]

    vs = route_of(Snapshot([mdep()], TRACK_SERVICES, [], [virtualservice("scorer", {
        "match": [{"headers": {"x-cohort": {"suffix": "b"}}}], "route": to("scorer-canary")})]))
    assert vs.rules == ()
    assert vs.problems == ("VirtualService/scorer http[0]: header x-cohort: expected one of exact, prefix or regex",)


# ---- the endpoints file ---------------------------------------------------------------------


def test_endpoints_file(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.json"
    assert endpoints.read(path) == []
    path.write_text(json.dumps({"pods": [
        {"namespace": NS, "name": "a", "port": 9001, "labels": {"x": "y"}, "ready": True},
        {"namespace": NS, "name": "b", "port": 9002, "labels": {}, "ready": False},
    ]}))
    assert endpoints.read(path) == [Pod(NS, "a", 9001, {"x": "y"}, True), Pod(NS, "b", 9002, {}, False)]
    path.write_text(json.dumps({"pods": [{"namespace": NS, "name": "r", "host": "10.88.0.5", "port": 8080}]}))
    assert [(p.host, p.port) for p in endpoints.read(path)] == [("10.88.0.5", 8080)]  # a real node's pod
    path.write_text('{"pods": [{"name": "c", "host": 7, "port": 9}]}')
    with pytest.raises(endpoints.EndpointsError, match=r"pods\[0\].host"):
        endpoints.read(path)
    path.write_text('{"pods": [{"name": "c", "port": "9"}]}')
    with pytest.raises(endpoints.EndpointsError, match=r"pods\[0\].port"):
        endpoints.read(path)
    path.write_text('{"pods": [')
    with pytest.raises(endpoints.EndpointsError, match="not JSON"):
        endpoints.read(path)


def test_summary_line() -> None:
    route = routing.Route(NS, "scorer", 10.0, "HTTPRoute/scorer")
    window = Window(sent=98, mirrored=3)
    window.codes.update({"200": 97, "503": 1})
    window.backends.update({"scorer-stable": 88, "scorer-canary": 9, "": 1})
    assert summary(route, window, 10.0) == (
        "ml/scorer via HTTPRoute/scorer: 98 req in 10 s (9.8/s of 10/s) codes 200=97 503=1 "
        "backends (none)=1 scorer-canary=9 scorer-stable=88 mirrored 3"
    )


# ---- the sending loop against real model servers ------------------------------------------


@pytest.fixture(scope="module")
def three_servers() -> Iterator[dict[str, process.ServerProcess]]:
    """Stable, canary and shadow model servers, stopped at the end of the module."""
    started: dict[str, process.ServerProcess] = {}
    try:
        for track in ("stable", "canary", "shadow"):
            started[track] = process.start(process.free_port(), {"MODEL_VERSION": track})
        for srv in started.values():
            process.wait_healthy(srv)
        yield started
    finally:
        for srv in started.values():
            process.stop(srv)


def served(url: str) -> float:
    """Predictions a model server has answered, by its own counter."""
    text = httpx.get(f"{url}/metrics").text
    return sum(s.value for f in text_string_to_metric_families(text) if f.name == "model_requests"
               for s in f.samples if s.name == "model_requests_total")


async def poll(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_split_and_mirror_reach_real_servers(three_servers: dict[str, process.ServerProcess]) -> None:
    before = {t: served(s.url) for t, s in three_servers.items()}
    backend_pods = {t: (Pod(NS, f"scorer-{t}-1", s.port, {"modelrollout.io/track": t}),)
                    for t, s in three_servers.items()}
    route = routing.Route(NS, "scorer", 300.0, "HTTPRoute/scorer", rules=(Rule(
        backends=(routing.Backend("scorer-stable", 90, backend_pods["stable"]),
                  routing.Backend("scorer-canary", 10, backend_pods["canary"])),
        mirrors=(routing.Mirror(routing.Backend("scorer-shadow", 1, backend_pods["shadow"]), 50.0),),
    ),))
    metrics = LoadgenMetrics()

    def sent(backend: str, code: str = "200") -> float:
        return sent_count(metrics, backend, code)

    def mirrored() -> float:
        value = metrics.registry.get_sample_value(
            "loadgen_mirrored_total", {"namespace": NS, "target": "scorer", "backend": "scorer-shadow"})
        return value or 0.0

    async with aiohttp.ClientSession() as session:
        sender = Sender(session, dataset.request_bodies(500, seed=5), metrics, random.Random(9))
        sender.update({(NS, "scorer"): route})
        await poll(lambda: sent("scorer-stable") + sent("scorer-canary") >= 1000, 60, "1000 requests")
        sender.update({})  # stop sending; let what is in flight land
        await poll(lambda: sender.in_flight == 0, 30, "requests in flight")
        await sender.close()

    stable, canary = sent("scorer-stable"), sent("scorer-canary")
    total = stable + canary
    assert sent("scorer-stable", "503") == sent("scorer-canary", "503") == 0
    assert abs(canary / total - 0.10) < 5 * math.sqrt(0.09 / total)  # within ~5 points at n=1000
    # every user request reached the backend it was counted for; mirrored copies only the shadow
    after = {t: served(s.url) - before[t] for t, s in three_servers.items()}
    assert after["stable"] == stable
    assert after["canary"] == canary
    assert after["shadow"] == mirrored()
    assert abs(mirrored() / total - 0.5) < 5 * math.sqrt(0.25 / total)
    assert sent("scorer-shadow") == 0  # mirrors are not user traffic
    assert metrics.registry.get_sample_value("loadgen_intended_rps", {"namespace": NS, "target": "scorer"}) is None


async def test_no_ready_pod_and_a_dead_pod_answer_503(three_servers: dict[str, process.ServerProcess]) -> None:
    dead = Pod(NS, "gone", process.free_port())  # nothing listens there
    route = routing.Route(NS, "t", 200.0, "test", rules=(Rule(backends=(
        routing.Backend("empty", 1, ()), routing.Backend("dead", 1, (dead,)))),))
    metrics = LoadgenMetrics()

    def count(backend: str) -> float:
        labels = {"namespace": NS, "target": "t", "backend": backend, "code": "503", "tagged": "no"}
        return metrics.registry.get_sample_value("loadgen_requests_total", labels) or 0.0

    async with aiohttp.ClientSession() as session:
        sender = Sender(session, [b'{"features": [1]}'], metrics)
        sender.update({(NS, "t"): route})
        await poll(lambda: count("empty") >= 20 and count("dead") >= 20, 30, "503s from both backends")
        await sender.close()


class Recorder:
    """A backend over real HTTP that answers 200 and keeps each request's headers."""

    def __init__(self) -> None:
        self.seen: list[CIMultiDict[str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.seen.append(request.headers.copy())
        return web.json_response({"score": 0.5})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/predict", self.handle)
        return app


def sent_count(metrics: LoadgenMetrics, backend: str, code: str = "200",
               tagged: tuple[str, ...] = ("yes", "no")) -> float:
    """Requests counted for a backend and code, tagged (carrying a drawn header or cookie) or not."""
    found = 0.0
    for mark in tagged:
        labels = {"namespace": NS, "target": "scorer", "backend": backend, "code": code, "tagged": mark}
        found += metrics.registry.get_sample_value("loadgen_requests_total", labels) or 0.0
    return found


@pytest.mark.slow
async def test_the_header_share_reaches_the_server_and_chooses_the_rule() -> None:
    stable, challenger = Recorder(), Recorder()
    metrics = LoadgenMetrics()
    async with TestServer(stable.app()) as stable_srv, TestServer(challenger.app()) as challenger_srv:
        pods = [pod("scorer-stable-1", "stable", stable_srv.port),
                pod("scorer-canary-1", "canary", challenger_srv.port)]
        snapshot = Snapshot(
            [mdep(rps="800", headers="x-cohort=b@30,cookie:session=s1@50,cookie:theme=dark")], TRACK_SERVICES,
            [httproute_rules("scorer", [
                {"backendRefs": refs(stable=1)},
                {"matches": when(header("x-cohort", "b")), "backendRefs": refs(canary=1)},
            ])],
        )
        async with aiohttp.ClientSession() as session:
            sender = Sender(session, [b'{"features": [1]}'], metrics, random.Random(13))
            sender.update(routing.table(snapshot, pods))
            await poll(lambda: len(stable.seen) + len(challenger.seen) >= 2000, 60, "2000 requests")
            sender.update({})
            await poll(lambda: sender.in_flight == 0, 30, "requests in flight")
            await sender.close()

    everything = stable.seen + challenger.seen
    n = len(everything)
    assert abs(len(challenger.seen) / n - 0.30) < 0.04  # n >= 2000: about 4 standard deviations
    assert all(h.getall("x-cohort") == ["b"] for h in challenger.seen)
    assert not any("x-cohort" in h for h in stable.seen)
    # the cookies arrive joined in one Cookie header, the session cookie on about half the requests
    assert {tuple(h.getall("Cookie")) for h in everything} == {("session=s1; theme=dark",), ("theme=dark",)}
    with_session = share(everything, lambda h: h["Cookie"].startswith("session=s1"))
    assert abs(with_session - 0.5) < binomial_bound(0.5, n)
    assert all(h["Content-Type"] == "application/json" for h in everything)
    # the loadgen's counters say what the servers saw
    assert sent_count(metrics, "scorer-canary") == len(challenger.seen)
    assert sent_count(metrics, "scorer-stable") == len(stable.seen)


async def test_requests_no_rule_takes_get_a_404_and_reach_no_backend() -> None:
    challenger = Recorder()
    metrics = LoadgenMetrics()
    async with TestServer(challenger.app()) as srv:
        snapshot = Snapshot([mdep(rps="300", headers="x-cohort=b@50")], TRACK_SERVICES, [httproute_rules("scorer", [
            {"matches": when(header("x-cohort", "b")), "backendRefs": refs(canary=1)}])])
        async with aiohttp.ClientSession() as session:
            sender = Sender(session, [b'{"features": [1]}'], metrics, random.Random(2))
            sender.update(routing.table(snapshot, [pod("scorer-canary-1", "canary", srv.port)]))
            await poll(lambda: min(sent_count(metrics, "", "404"), len(challenger.seen)) >= 50, 30,
                       "404s and answered requests")
            route, window = sender.take_window()[(NS, "scorer")]
            sender.update({})
            await poll(lambda: sender.in_flight == 0, 30, "requests in flight")
            await sender.close()
    assert all(h.get("x-cohort") == "b" for h in challenger.seen)
    assert sent_count(metrics, "scorer-canary") == len(challenger.seen)
    assert sent_count(metrics, "scorer-canary", "503") == sent_count(metrics, "", "503") == 0
    # the counters tell requests that carried the cohort header from those that did not
    assert sent_count(metrics, "scorer-canary", tagged=("yes",)) == len(challenger.seen)
    assert sent_count(metrics, "", "404", tagged=("yes",)) == 0 < sent_count(metrics, "", "404", tagged=("no",))
    line = summary(route, window, 1.0)
    assert " 404=" in line and " (none)=" in line, line


# ---- the whole CLI against a fake API server ----------------------------------------------


class FakeApiServer:
    """Serves the list calls the load generator makes; VirtualServices only at v1beta1."""

    def __init__(self, lists: dict[str, list[dict[str, Any]]]) -> None:
        self.lists = lists
        self.runner: web.AppRunner | None = None
        self.port = process.free_port()

    async def handle(self, request: web.Request) -> web.Response:
        items = self.lists.get(request.path)
        if items is None:
            return web.json_response({"kind": "Status", "code": 404}, status=404)
        return web.json_response({"kind": "List", "items": items})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}],
            "users": [{"name": "fake", "user": {}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        }))
        return path


def write_endpoints(path: Path, servers: dict[str, process.ServerProcess], ready: dict[str, bool]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pods": [
        {"namespace": NS, "name": f"scorer-{t}-1", "port": s.port, "ready": ready.get(t, True),
         "labels": {routing.NAME_LABEL: "scorer", "modelrollout.io/track": t}}
        for t, s in servers.items()
    ]}))
    tmp.replace(path)


@pytest.mark.slow
async def test_cli_routes_survives_the_api_server_and_stops_on_sigterm(
    three_servers: dict[str, process.ServerProcess], tmp_path: Path
) -> None:
    api = FakeApiServer({
        "/apis/modelrollout.io/v1alpha1/modeldeployments": [mdep(rps="100", headers="x-cohort=b@20,oops")],
        "/api/v1/services": TRACK_SERVICES,
        "/apis/gateway.networking.k8s.io/v1/httproutes": [],
        "/apis/networking.istio.io/v1beta1/virtualservices": [virtualservice("scorer", [
            {"match": [{"headers": {"x-cohort": {"exact": "b"}}}], "route": to("scorer-canary")},
            {"route": to("scorer-stable")},
        ])],
    })
    await api.start()
    endpoints_file = tmp_path / "endpoints.json"
    write_endpoints(endpoints_file, three_servers, {})
    metrics_port = process.free_port()
    log_path = tmp_path / "loadgen.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "e2e.loadgen", "--kubeconfig", str(api.kubeconfig(tmp_path / "kubeconfig")),
             "--endpoints", str(endpoints_file), "--metrics-port", str(metrics_port), "--summary-every", "1"],
            cwd=process.ROOT, env=process.child_env(), stdout=log, stderr=log,
        )
    counts: dict[tuple[str, str], float] = {}

    def scraped() -> dict[tuple[str, str], float]:
        try:
            text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        except httpx.TransportError:
            return counts
        counts.clear()
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "loadgen_requests_total" and s.labels["target"] == "scorer":
                    counts[(s.labels["backend"], s.labels["code"])] = s.value
        return counts

    try:
        await poll(lambda: min(scraped().get(("scorer-stable", "200"), 0),
                               scraped().get(("scorer-canary", "200"), 0)) >= 20, 60, "traffic on both backends")
        assert ("scorer-shadow", "200") not in counts  # the VirtualService routes to stable and canary only

        await api.stop()  # the control plane goes away: the last routes stay in force
        sent_before = sum(scraped().values())
        await poll(lambda: sum(scraped().values()) > sent_before + 200, 30, "traffic without an API server")

        write_endpoints(endpoints_file, three_servers, {"canary": False})
        await poll(lambda: scraped().get(("scorer-canary", "503"), 0) >= 5, 30, "503s for the unready canary")
        assert proc.poll() is None
    finally:
        await api.stop()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    output = log_path.read_text()
    assert code == 0, output
    assert "Traceback" not in output
    assert "API server failed" in output
    assert "ml/scorer via VirtualService/scorer: " in output  # the summary line
    assert f"ml/scorer: ignored {routing.HEADERS_ANNOTATION} 'oops'" in output
    assert output.count("'oops'") == 1  # logged when it appears, not every second
