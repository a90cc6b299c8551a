"""The routing decision, pure: cluster objects and pods in, a routing table out.

The objects are plain dicts as the API server returns them (camelCase keys), so tests feed
literals. For a target N (a ModelDeployment or Service with `e2e.modelrollout.io/rps`) in
namespace NS the route is, in order:

1. an HTTPRoute in NS named N, or whose `spec.parentRefs` hold `{kind: Service, name: N}`:
   every rule (none: one rule for every request, as the API server defaults it), each with its
   backendRefs (weight default 1, 0 gets nothing) and RequestMirror filters (`percent`, or
   `fraction` numerator/denominator, else 100 %). A rule takes a request when any of its
   `matches` holds (no `matches`: every request); a match holds when all of its `headers` do
   (`type` Exact, the default, or RegularExpression over the whole value). Matches with more
   header conditions are tried first, then rule order, as Gateway API's precedence says.
   `path`, `method` and `queryParams` are not compared: every request is POST /v1/predict;
2. else a VirtualService in NS named N, or whose `spec.hosts` name N (N, N.NS, N.NS.svc or
   N.NS.svc.cluster.local): every `http[]` entry in order, taking a request when any of its
   `match[]` holds (no `match`: every request), a match holding when all of its
   `headers: {name: {exact | prefix | regex: v}}` do; each entry with its `route[]`
   destination hosts and weights, `mirror` with `mirrorPercentage.value` (else 100 %), and
   `mirrors[]`;
3. else the Service N in NS;
4. else the ready pods labelled `modelrollout.io/name: N`.

A backend Service's `spec.selector` picks ready pods of its namespace from the endpoints file.
Header names compare case-insensitively, values exactly.

Each request first draws its headers from the target's `e2e.modelrollout.io/headers`
annotation (on the object that gave the rps), then goes to the first rule that takes it (none:
the gateway answers 404), then to one of that rule's backends by weight. The annotation is a
comma-separated list of `NAME=VALUE@P` (P % of requests carry the header `NAME: VALUE`; no
`@P`: every request) and `cookie:NAME=VALUE@P` (the cookie; a request's cookies are joined
into one Cookie header with "; "). Different names are drawn independently; entries naming the
same header or cookie share one draw, so `x-cohort=a@30,x-cohort=b@30` sends a 30 %, b 30 %
and neither 40 %. Entries that cannot be used, and route matches that cannot be evaluated,
are left out and listed in `Route.problems` for the caller to log.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

RPS_ANNOTATION = "e2e.modelrollout.io/rps"
HEADERS_ANNOTATION = "e2e.modelrollout.io/headers"
NAME_LABEL = "modelrollout.io/name"
#: The `backend` label of traffic sent straight to pods (rule 4 above).
PODS_BACKEND = "pods"
#: Headers the load generator sets itself: an annotation overriding them would break requests.
RESERVED_HEADERS = frozenset({"content-type", "content-length", "transfer-encoding", "host", "cookie"})

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token: header and cookie names
_HEADER_VALUE = re.compile(r"[\x20-\x7e]+")  # printable ASCII: no line break can split a request
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]+")  # RFC 6265 cookie-octets
_COOKIE_PREFIX = "cookie:"

Obj = Mapping[str, Any]
MatchKind = Literal["exact", "prefix", "regex"]
_GATEWAY_KINDS: dict[str, MatchKind] = {"Exact": "exact", "RegularExpression": "regex"}
_ISTIO_KINDS: dict[str, MatchKind] = {"exact": "exact", "prefix": "prefix", "regex": "regex"}


@dataclass(frozen=True)
class Pod:
    """One entry of the endpoints file: a pod whose model server listens on host:port."""

    namespace: str
    name: str
    port: int
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    ready: bool = True
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class Backend:
    """Where a share of a target's traffic goes: a Service (or PODS_BACKEND) and its ready pods."""

    name: str
    weight: int
    pods: tuple[Pod, ...]


@dataclass(frozen=True)
class Mirror:
    """A copy of `percent` % of requests to `backend`, answers dropped."""

    backend: Backend
    percent: float


@dataclass(frozen=True)
class HeaderMatch:
    """One header condition: the header `name` (lower case) equals, starts with or fully
    matches `value`. Regular expressions are checked when the route is read."""

    name: str
    kind: MatchKind
    value: str

    def holds(self, headers: Mapping[str, str]) -> bool:
        """Whether it holds for request headers keyed by lower-case name."""
        got = headers.get(self.name)
        if got is None:
            return False
        if self.kind == "exact":
            return got == self.value
        if self.kind == "prefix":
            return got.startswith(self.value)
        return re.fullmatch(self.value, got) is not None


@dataclass(frozen=True)
class Rule:
    """The requests for which every condition of `when` holds (empty: all) go to `backends`."""

    when: tuple[HeaderMatch, ...] = ()
    backends: tuple[Backend, ...] = ()
    mirrors: tuple[Mirror, ...] = ()

    def takes(self, headers: Mapping[str, str]) -> bool:
        return all(m.holds(headers) for m in self.when)


@dataclass(frozen=True)
class HeaderShare:
    """`percent` % of a target's requests carry the header `name: value` (or cookie `name=value`)."""

    name: str
    value: str
    percent: float = 100.0
    cookie: bool = False

    @property
    def slot(self) -> tuple[bool, str]:
        """Shares with the same slot are one draw: a request carries at most one of them."""
        return self.cookie, self.name if self.cookie else self.name.lower()


@dataclass(frozen=True)
class Route:
    """How one target's requests are sent; `via` says which object chose it, for logs.

    `rules` are in the order they are tried (one rule per HTTPRoute match); `headers` are what
    requests carry; `problems` are what was left out of either, for the caller to log.
    """

    namespace: str
    target: str
    rps: float
    via: str
    rules: tuple[Rule, ...] = ()
    headers: tuple[HeaderShare, ...] = ()
    problems: tuple[str, ...] = ()


RoutingTable = Mapping[tuple[str, str], Route]


@dataclass(frozen=True)
class Snapshot:
    """The objects read from the API server in one pass (any list may be empty)."""

    modeldeployments: Sequence[Obj] = ()
    services: Sequence[Obj] = ()
    httproutes: Sequence[Obj] = ()
    virtualservices: Sequence[Obj] = ()


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _spec(obj: Obj) -> Obj:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _key(obj: Obj) -> tuple[str, str]:
    meta = _meta(obj)
    return str(meta.get("namespace", "default")), str(meta.get("name", ""))


def _annotation(obj: Obj, name: str) -> Any:
    annotations = _meta(obj).get("annotations") or {}
    return annotations.get(name) if isinstance(annotations, Mapping) else None


def requested_rps(obj: Obj) -> float | None:
    """The rps annotation as a positive number, or None if absent or unusable.

    >>> requested_rps({"metadata": {"annotations": {RPS_ANNOTATION: "20"}}})
    20.0
    """
    raw = _annotation(obj, RPS_ANNOTATION)
    try:
        rps = float(raw) if raw is not None else 0.0
    except (TypeError, ValueError):
        return None
    return rps if rps > 0.0 and math.isfinite(rps) else None


def _target_objects(snapshot: Snapshot) -> dict[tuple[str, str], Obj]:
    found: dict[tuple[str, str], Obj] = {}
    for obj in [*snapshot.modeldeployments, *snapshot.services]:
        if requested_rps(obj) is not None:
            found.setdefault(_key(obj), obj)
    return found


def targets(snapshot: Snapshot) -> dict[tuple[str, str], float]:
    """(namespace, name) -> rps of every annotated ModelDeployment and Service.

    A ModelDeployment and its same-named Service are one target (the ModelDeployment's rps wins).
    """
    return {key: requested_rps(obj) or 0.0 for key, obj in _target_objects(snapshot).items()}


def _percent(text: str) -> float:
    try:
        percent = float(text.strip().removesuffix("%"))
    except ValueError:
        raise ValueError(f"{text!r} after @ is not a percentage") from None
    if not 0.0 <= percent <= 100.0:  # NaN fails too
        raise ValueError(f"{text!r} after @ is not within 0..100")
    return percent


def _header_share(entry: str) -> HeaderShare:
    body, at, percent_text = entry.rpartition("@")
    # Without an @ the whole entry is the header; with one, what follows the last @ is the share.
    percent = _percent(percent_text) if at else 100.0
    body = body if at else entry
    cookie = body.lower().startswith(_COOKIE_PREFIX)
    name, equals, value = body[len(_COOKIE_PREFIX) if cookie else 0 :].partition("=")
    name, value = name.strip(), value.strip()
    what = "cookie" if cookie else "header"
    if not equals:
        raise ValueError("expected NAME=VALUE or cookie:NAME=VALUE")
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"{name!r} is not a {what} name")
    if not (_COOKIE_VALUE if cookie else _HEADER_VALUE).fullmatch(value):
        raise ValueError(f"{value!r} is not a {what} value")
    if not cookie and name.lower() == "cookie":
        raise ValueError("cookies are written cookie:NAME=VALUE")
    if not cookie and name.lower() in RESERVED_HEADERS:
        raise ValueError(f"{name} is set by the load generator")
    return HeaderShare(name, value, percent, cookie)


def header_shares(annotation: str) -> tuple[tuple[HeaderShare, ...], tuple[str, ...]]:
    """The `e2e.modelrollout.io/headers` annotation -> (usable shares, one problem per entry left out).

    >>> [(s.name, s.percent, s.cookie) for s in header_shares("x-cohort=b@30, cookie:beta=yes")[0]]
    [('x-cohort', 30.0, False), ('beta', 100.0, True)]
    >>> header_shares("x-cohort")[1]
    ("'x-cohort': expected NAME=VALUE or cookie:NAME=VALUE",)
    """
    shares: list[HeaderShare] = []
    problems: list[str] = []
    taken: dict[tuple[bool, str], float] = {}
    for entry in (e.strip() for e in annotation.split(",")):
        if not entry:
            continue  # a trailing or doubled comma
        try:
            share = _header_share(entry)
        except ValueError as e:
            problems.append(f"{entry!r}: {e}")
            continue
        total = taken.get(share.slot, 0.0) + share.percent
        if total > 100.0:
            problems.append(f"{entry!r}: the shares of {share.name} add up to {total:g} %, over 100")
            continue
        taken[share.slot] = total
        shares.append(share)
    return tuple(shares), tuple(problems)


def _target_headers(obj: Obj) -> tuple[tuple[HeaderShare, ...], tuple[str, ...]]:
    raw = _annotation(obj, HEADERS_ANNOTATION)
    if raw is None:
        return (), ()
    if not isinstance(raw, str):
        return (), (f"{HEADERS_ANNOTATION}: not a string",)
    shares, problems = header_shares(raw)
    return shares, tuple(f"{HEADERS_ANNOTATION} {p}" for p in problems)


def _header_match(name: str, kind: MatchKind, value: str) -> HeaderMatch:
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"{name!r} is not a header name")
    if kind == "regex":
        try:
            re.compile(value)
        except re.error as e:
            raise ValueError(f"bad regular expression {value!r} for {name}: {e}") from None
    return HeaderMatch(name.lower(), kind, value)


def _gateway_header_matches(match: Any) -> tuple[HeaderMatch, ...]:
    """An HTTPRoute match's header conditions; raises ValueError if one cannot be evaluated."""
    if not isinstance(match, Mapping):
        raise ValueError("a match is not an object")
    found: dict[str, HeaderMatch] = {}
    for header in match.get("headers") or []:
        if not isinstance(header, Mapping):
            raise ValueError("a header match is not an object")
        kind = _GATEWAY_KINDS.get(str(header.get("type", "Exact")))
        if kind is None:
            raise ValueError(f"header match type {header.get('type')!r} is not Exact or RegularExpression")
        condition = _header_match(str(header.get("name", "")), kind, str(header.get("value", "")))
        found.setdefault(condition.name, condition)  # Gateway API: only the first of a name counts
    return tuple(found.values())


def _istio_header_matches(match: Any) -> tuple[HeaderMatch, ...]:
    """A VirtualService match's header conditions; raises ValueError if one cannot be evaluated."""
    if not isinstance(match, Mapping):
        raise ValueError("a match is not an object")
    headers = match.get("headers") or {}
    if not isinstance(headers, Mapping):
        raise ValueError("headers is not an object")
    conditions = []
    for name, condition in headers.items():
        entries = list(condition.items()) if isinstance(condition, Mapping) else []
        kind = _ISTIO_KINDS.get(str(entries[0][0])) if len(entries) == 1 else None
        if kind is None:
            raise ValueError(f"header {name}: expected one of exact, prefix or regex")
        conditions.append(_header_match(str(name), kind, str(entries[0][1])))
    return tuple(conditions)


def _number(value: Any, default: float) -> float:
    try:
        number = float(value) if value is not None else default
    except (TypeError, ValueError):
        return 0.0  # an unreadable weight or share gets nothing, as a gateway would refuse it
    return number if math.isfinite(number) and number > 0.0 else 0.0


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


class _Resolver:
    """Indexes one snapshot and the pods, then resolves targets."""

    def __init__(self, snapshot: Snapshot, pods: Iterable[Pod]) -> None:
        self.services = {_key(s): s for s in snapshot.services}
        self.httproutes = sorted(snapshot.httproutes, key=_key)
        self.virtualservices = sorted(snapshot.virtualservices, key=_key)
        self.ready = [p for p in pods if p.ready]

    def service_backend(self, namespace: str, name: str, weight: int) -> Backend:
        svc = self.services.get((namespace, name))
        selector = _spec(svc).get("selector") if svc is not None else None
        if not isinstance(selector, Mapping):
            return Backend(name, weight, ())
        pods = tuple(p for p in self.ready if p.namespace == namespace and _selects(selector, p.labels))
        return Backend(name, weight, pods)

    def httproute_for(self, namespace: str, name: str) -> Obj | None:
        in_ns = [r for r in self.httproutes if _key(r)[0] == namespace]
        for r in in_ns:
            if _key(r)[1] == name:
                return r
        for r in in_ns:
            for ref in _spec(r).get("parentRefs") or []:
                if isinstance(ref, Mapping) and ref.get("kind") == "Service" and ref.get("name") == name:
                    return r
        return None

    def virtualservice_for(self, namespace: str, name: str) -> Obj | None:
        in_ns = [v for v in self.virtualservices if _key(v)[0] == namespace]
        fqdn = f"{name}.{namespace}.svc"
        hosts = {name, f"{name}.{namespace}", fqdn, f"{fqdn}.cluster.local"}
        for v in in_ns:
            if _key(v)[1] == name:
                return v
        for v in in_ns:
            if hosts & {str(h) for h in _spec(v).get("hosts") or []}:
                return v
        return None

    def httproute_destinations(self, namespace: str, rule: Obj) -> tuple[tuple[Backend, ...], tuple[Mirror, ...]]:
        backends = []
        for ref in rule.get("backendRefs") or []:
            if not isinstance(ref, Mapping) or ref.get("kind", "Service") != "Service":
                continue
            ns = str(ref.get("namespace", namespace))
            weight = int(_number(ref.get("weight"), 1))
            backends.append(self.service_backend(ns, str(ref.get("name", "")), weight))
        mirrors = []
        for f in rule.get("filters") or []:
            if not isinstance(f, Mapping) or f.get("type") != "RequestMirror":
                continue
            spec = f.get("requestMirror") or {}
            ref = spec.get("backendRef") or {}
            backend = self.service_backend(str(ref.get("namespace", namespace)), str(ref.get("name", "")), 1)
            mirrors.append(Mirror(backend, mirror_percent(spec)))
        return tuple(backends), tuple(mirrors)

    def from_httproute(self, namespace: str, route: Obj) -> tuple[tuple[Rule, ...], list[str]]:
        rules = [r for r in _spec(route).get("rules") or [{}] if isinstance(r, Mapping)]
        ranked: list[tuple[int, int, Rule]] = []
        problems = []
        for index, rule in enumerate(rules):
            backends, mirrors = self.httproute_destinations(namespace, rule)
            for match in rule.get("matches") or [{}]:
                try:
                    when = _gateway_header_matches(match)
                except ValueError as e:  # a gateway would not program it; the rule's other matches stand
                    problems.append(f"HTTPRoute/{_key(route)[1]} rule {index}: {e}")
                    continue
                ranked.append((-len(when), index, Rule(when, backends, mirrors)))
        ranked.sort(key=lambda r: r[:2])  # stable: a rule's matches keep their order
        return tuple(rule for _, _, rule in ranked), problems

    def host_backend(self, namespace: str, host: str, weight: int) -> Backend:
        parts = host.split(".")
        ns = parts[1] if len(parts) > 1 and parts[1] != "svc" else namespace
        return self.service_backend(ns, parts[0], weight)

    def virtualservice_destinations(
        self, namespace: str, entry: Obj
    ) -> tuple[tuple[Backend, ...], tuple[Mirror, ...]]:
        dests = [d for d in entry.get("route") or [] if isinstance(d, Mapping)]
        backends = []
        for d in dests:
            # Istio: a lone destination takes everything; otherwise a missing weight is 0.
            weight = int(_number(d.get("weight"), 100 if len(dests) == 1 else 0))
            host = str((d.get("destination") or {}).get("host", ""))
            backends.append(self.host_backend(namespace, host, weight))
        mirrors = []
        if isinstance(entry.get("mirror"), Mapping):
            pct = _number((entry.get("mirrorPercentage") or {}).get("value"), 100.0)
            mirrors.append(Mirror(self.host_backend(namespace, str(entry["mirror"].get("host", "")), 1), pct))
        for m in entry.get("mirrors") or []:
            if isinstance(m, Mapping):
                pct = _number((m.get("percentage") or {}).get("value"), 100.0)
                host = str((m.get("destination") or {}).get("host", ""))
                mirrors.append(Mirror(self.host_backend(namespace, host, 1), pct))
        return tuple(backends), tuple(mirrors)

    def from_virtualservice(self, namespace: str, vs: Obj) -> tuple[tuple[Rule, ...], list[str]]:
        rules = []
        problems = []
        for index, entry in enumerate(_spec(vs).get("http") or []):
            if not isinstance(entry, Mapping):
                continue
            backends, mirrors = self.virtualservice_destinations(namespace, entry)
            for match in entry.get("match") or [{}]:
                try:
                    rules.append(Rule(_istio_header_matches(match), backends, mirrors))
                except ValueError as e:
                    problems.append(f"VirtualService/{_key(vs)[1]} http[{index}]: {e}")
        return tuple(rules), problems

    def route(self, namespace: str, name: str, rps: float) -> Route:
        hr = self.httproute_for(namespace, name)
        if hr is not None:
            rules, problems = self.from_httproute(namespace, hr)
            return Route(namespace, name, rps, f"HTTPRoute/{_key(hr)[1]}", rules, problems=tuple(problems))
        vs = self.virtualservice_for(namespace, name)
        if vs is not None:
            rules, problems = self.from_virtualservice(namespace, vs)
            return Route(namespace, name, rps, f"VirtualService/{_key(vs)[1]}", rules, problems=tuple(problems))
        if (namespace, name) in self.services:
            backend = self.service_backend(namespace, name, 1)
            return Route(namespace, name, rps, f"Service/{name}", (Rule(backends=(backend,)),))
        pods = tuple(p for p in self.ready if p.namespace == namespace and p.labels.get(NAME_LABEL) == name)
        everything = Rule(backends=(Backend(PODS_BACKEND, 1, pods),))
        return Route(namespace, name, rps, f"pods/{NAME_LABEL}={name}", (everything,))


def mirror_percent(request_mirror: Obj) -> float:
    """An HTTPRoute RequestMirror's share in percent: `percent`, else `fraction`, else 100.

    >>> mirror_percent({"fraction": {"numerator": 1, "denominator": 8}})
    12.5
    """
    if "percent" in request_mirror:
        return min(_number(request_mirror["percent"], 100.0), 100.0)
    fraction = request_mirror.get("fraction")
    if isinstance(fraction, Mapping):
        denominator = _number(fraction.get("denominator"), 100.0)
        share = _number(fraction.get("numerator"), 0.0) / denominator if denominator else 0.0
        return min(100.0 * share, 100.0)
    return 100.0


def table(snapshot: Snapshot, pods: Iterable[Pod]) -> dict[tuple[str, str], Route]:
    """The routing table: one Route per annotated target."""
    resolver = _Resolver(snapshot, pods)
    routes = {}
    for key, obj in sorted(_target_objects(snapshot).items()):
        route = resolver.route(*key, requested_rps(obj) or 0.0)
        headers, problems = _target_headers(obj)
        routes[key] = replace(route, headers=headers, problems=problems + route.problems)
    return routes


def request_headers(route: Route, rng: random.Random) -> dict[str, str]:
    """One request's headers, drawn from the route's header shares (one draw per slot).

    >>> request_headers(Route("ml", "t", 1.0, "test", headers=(HeaderShare("a", "1", cookie=True),
    ...     HeaderShare("x-b", "2"), HeaderShare("c", "3", cookie=True))), random.Random(1))
    {'x-b': '2', 'Cookie': 'a=1; c=3'}
    """
    rolls: dict[tuple[bool, str], float] = {}
    below: dict[tuple[bool, str], float] = {}
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for share in route.headers:
        if share.slot not in rolls:
            rolls[share.slot] = 100.0 * rng.random()
        start = below.get(share.slot, 0.0)
        below[share.slot] = start + share.percent
        if start <= rolls[share.slot] < start + share.percent:
            if share.cookie:
                cookies.append(f"{share.name}={share.value}")
            else:
                headers[share.name] = share.value
    if cookies:
        headers["Cookie"] = "; ".join(cookies)  # one header, as browsers send them
    return headers


def matching_rule(route: Route, headers: Mapping[str, str]) -> Rule | None:
    """The first rule that takes a request with these headers; None: the gateway answers 404."""
    lowered = {name.lower(): value for name, value in headers.items()}
    return next((rule for rule in route.rules if rule.takes(lowered)), None)


def pick(rule: Rule, rng: random.Random) -> tuple[str, Pod | None]:
    """One request's destination: (backend name, pod). No pod means the gateway answers 503;
    the backend name is "" when no backend has weight, else the chosen Service with no ready pod.
    """
    live = [b for b in rule.backends if b.weight > 0]
    if not live:
        return "", None
    backend = rng.choices(live, weights=[b.weight for b in live])[0] if len(live) > 1 else live[0]
    return backend.name, (rng.choice(backend.pods) if backend.pods else None)


def mirrored(rule: Rule, rng: random.Random) -> list[tuple[str, Pod]]:
    """Where copies of one request go: each mirror with its share, when it has a ready pod."""
    return [
        (m.backend.name, rng.choice(m.backend.pods))
        for m in rule.mirrors
        if m.backend.pods and rng.random() * 100.0 < m.percent
    ]
