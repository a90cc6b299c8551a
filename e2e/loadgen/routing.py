"""The routing decision, pure: cluster objects and pods in, a routing table out.

The objects are plain dicts as the API server returns them (camelCase keys), so tests feed
literals. For a target N (a ModelDeployment or Service with `e2e.modelrollout.io/rps`) in
namespace NS the route is, in order:

1. an HTTPRoute in NS named N, or whose `spec.parentRefs` hold `{kind: Service, name: N}`:
   its first rule's backendRefs (weight default 1, 0 gets nothing) and RequestMirror filters
   (`percent`, or `fraction` numerator/denominator, else 100 %);
2. else a VirtualService in NS named N, or whose `spec.hosts` name N (N, N.NS, N.NS.svc or
   N.NS.svc.cluster.local): `http[0].route[]` destination hosts and weights, `http[0].mirror`
   with `mirrorPercentage.value` (else 100 %), and `http[0].mirrors[]`;
3. else the Service N in NS;
4. else the ready pods labelled `modelrollout.io/name: N`.

A backend Service's `spec.selector` picks ready pods of its namespace from the endpoints file.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

RPS_ANNOTATION = "e2e.modelrollout.io/rps"
NAME_LABEL = "modelrollout.io/name"
#: The `backend` label of traffic sent straight to pods (rule 4 above).
PODS_BACKEND = "pods"

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Pod:
    """One entry of the endpoints file: a pod whose model server listens on 127.0.0.1:port."""

    namespace: str
    name: str
    port: int
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    ready: bool = True


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
class Route:
    """How one target's requests are sent; `via` says which rule chose it, for logs."""

    namespace: str
    target: str
    rps: float
    via: str
    backends: tuple[Backend, ...] = ()
    mirrors: tuple[Mirror, ...] = ()


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


def requested_rps(obj: Obj) -> float | None:
    """The rps annotation as a positive number, or None if absent or unusable.

    >>> requested_rps({"metadata": {"annotations": {RPS_ANNOTATION: "20"}}})
    20.0
    """
    annotations = _meta(obj).get("annotations") or {}
    raw = annotations.get(RPS_ANNOTATION) if isinstance(annotations, Mapping) else None
    try:
        rps = float(raw) if raw is not None else 0.0
    except (TypeError, ValueError):
        return None
    return rps if rps > 0.0 and math.isfinite(rps) else None


def targets(snapshot: Snapshot) -> dict[tuple[str, str], float]:
    """(namespace, name) -> rps of every annotated ModelDeployment and Service.

    A ModelDeployment and its same-named Service are one target (the ModelDeployment's rps wins).
    """
    found: dict[tuple[str, str], float] = {}
    for obj in [*snapshot.modeldeployments, *snapshot.services]:
        rps = requested_rps(obj)
        if rps is not None:
            found.setdefault(_key(obj), rps)
    return found


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

    def from_httproute(self, namespace: str, route: Obj) -> tuple[tuple[Backend, ...], tuple[Mirror, ...]]:
        rules = _spec(route).get("rules") or []
        rule = rules[0] if rules and isinstance(rules[0], Mapping) else {}
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

    def host_backend(self, namespace: str, host: str, weight: int) -> Backend:
        parts = host.split(".")
        ns = parts[1] if len(parts) > 1 and parts[1] != "svc" else namespace
        return self.service_backend(ns, parts[0], weight)

    def from_virtualservice(
        self, namespace: str, vs: Obj
    ) -> tuple[tuple[Backend, ...], tuple[Mirror, ...]]:
        http = _spec(vs).get("http") or []
        rule = http[0] if http and isinstance(http[0], Mapping) else {}
        dests = [d for d in rule.get("route") or [] if isinstance(d, Mapping)]
        backends = []
        for d in dests:
            # Istio: a lone destination takes everything; otherwise a missing weight is 0.
            weight = int(_number(d.get("weight"), 100 if len(dests) == 1 else 0))
            host = str((d.get("destination") or {}).get("host", ""))
            backends.append(self.host_backend(namespace, host, weight))
        mirrors = []
        if isinstance(rule.get("mirror"), Mapping):
            pct = _number((rule.get("mirrorPercentage") or {}).get("value"), 100.0)
            mirrors.append(Mirror(self.host_backend(namespace, str(rule["mirror"].get("host", "")), 1), pct))
        for m in rule.get("mirrors") or []:
            if isinstance(m, Mapping):
                pct = _number((m.get("percentage") or {}).get("value"), 100.0)
                host = str((m.get("destination") or {}).get("host", ""))
                mirrors.append(Mirror(self.host_backend(namespace, host, 1), pct))
        return tuple(backends), tuple(mirrors)

    def route(self, namespace: str, name: str, rps: float) -> Route:
        hr = self.httproute_for(namespace, name)
        if hr is not None:
            backends, mirrors = self.from_httproute(namespace, hr)
            return Route(namespace, name, rps, f"HTTPRoute/{_key(hr)[1]}", backends, mirrors)
        vs = self.virtualservice_for(namespace, name)
        if vs is not None:
            backends, mirrors = self.from_virtualservice(namespace, vs)
            return Route(namespace, name, rps, f"VirtualService/{_key(vs)[1]}", backends, mirrors)
        if (namespace, name) in self.services:
            return Route(namespace, name, rps, f"Service/{name}", (self.service_backend(namespace, name, 1),))
        pods = tuple(p for p in self.ready if p.namespace == namespace and p.labels.get(NAME_LABEL) == name)
        return Route(namespace, name, rps, f"pods/{NAME_LABEL}={name}", (Backend(PODS_BACKEND, 1, pods),))


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
    return {key: resolver.route(*key, rps) for key, rps in sorted(targets(snapshot).items())}


def pick(route: Route, rng: random.Random) -> tuple[str, Pod | None]:
    """One request's destination: (backend name, pod). No pod means the gateway answers 503;
    the backend name is "" when no backend has weight, else the chosen Service with no ready pod.
    """
    live = [b for b in route.backends if b.weight > 0]
    if not live:
        return "", None
    backend = rng.choices(live, weights=[b.weight for b in live])[0] if len(live) > 1 else live[0]
    return backend.name, (rng.choice(backend.pods) if backend.pods else None)


def mirrored(route: Route, rng: random.Random) -> list[tuple[str, Pod]]:
    """Where copies of one request go: each mirror with its share, when it has a ready pod."""
    return [
        (m.backend.name, rng.choice(m.backend.pods))
        for m in route.mirrors
        if m.backend.pods and rng.random() * 100.0 < m.percent
    ]
