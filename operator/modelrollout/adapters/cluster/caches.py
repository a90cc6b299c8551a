"""What the operator knows of the cluster, kept by watches (`reflector`), read from memory.

One reflector per kind (per watched namespace), each with a server-side selector and a trimmed
projection: plain dicts shaped like the API's bodies, holding only the fields the operator
reads, so the pure functions that read listed bodies (`workloads.summarize`,
`gpu_pool.usage`, `gateway_api.refusal`) read these unchanged.

- our pods (`modelrollout.io/name` present): labels, phase, readiness, restarts, ports, IP;
- our Deployments, Services and routes (`app.kubernetes.io/managed-by=modelrollout`): labels,
  the intent annotation, `spec.replicas`; routes also keep spec and status (they are small);
- for GPU pools, started the first time a ModelDeployment has one: every node (labels,
  readiness, extended allocatable) and every bound, non-terminal pod that asks for an extended
  resource (its node, its requests, its owner's name label), cluster-wide.

A change to one of our pods or Deployments calls `wake(namespace, name)` with the
ModelDeployment's name, so its daemon ticks at once. Pool usage is computed once per change of
the pool reflectors and selector, not per tick.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from modelrollout.adapters.cluster import gpu_pool, kube, reflector
from modelrollout.api import labels

Body = dict[str, Any]
INTENT = kube.INTENT
OWNED = f"{labels.MANAGED_BY}={labels.MANAGER}"
BOUND = "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"
SYNC_TIMEOUT_S = 60.0


def _conditions(status: Mapping[str, Any], types: Iterable[str]) -> list[Body]:
    wanted = set(types)
    return [{k: c[k] for k in ("type", "status", "reason", "message") if k in c}
            for c in status.get("conditions") or [] if c.get("type") in wanted]


def _meta(body: Mapping[str, Any], annotations: Iterable[str] = (INTENT,)) -> Body:
    meta = body.get("metadata") or {}
    notes = meta.get("annotations") or {}
    out: Body = {"name": meta.get("name", ""), "namespace": meta.get("namespace", ""),
                 "labels": dict(meta.get("labels") or {}),
                 "annotations": {k: notes[k] for k in annotations if k in notes}}
    for key in ("deletionTimestamp", "generation"):
        if meta.get(key) is not None:
            out[key] = meta[key]
    return out


def trim_pod(body: Mapping[str, Any], address_annotation: str = "") -> Body:
    """One of our pods, as `workloads` reads it."""
    spec, status = body.get("spec") or {}, body.get("status") or {}
    return {
        "metadata": _meta(body, (address_annotation,) if address_annotation else ()),
        "spec": {"nodeName": spec.get("nodeName"),
                 "containers": [{"name": c.get("name"), "ports": c.get("ports") or []}
                                for c in spec.get("containers") or []]},
        "status": {"phase": status.get("phase"), "podIP": status.get("podIP"),
                   "conditions": _conditions(status, ("Ready", "PodScheduled")),
                   "containerStatuses": [_trim_container(s) for s in status.get("containerStatuses") or []]},
    }


def _trim_container(status: Mapping[str, Any]) -> Body:
    """Restarts, and the kubelet's reason when the container waits (ErrImageNeverPull, CrashLoopBackOff)."""
    out: Body = {"restartCount": status.get("restartCount", 0)}
    waiting = (status.get("state") or {}).get("waiting")
    if waiting:
        message = str(waiting.get("message") or "")[:200]
        out["state"] = {"waiting": {"reason": waiting.get("reason"), "message": message}}
    return out


def trim_owned(body: Mapping[str, Any]) -> Body:
    """A Deployment or Service of ours: what `workloads` and the write skip read."""
    out: Body = {"kind": body.get("kind"), "metadata": _meta(body)}
    replicas = (body.get("spec") or {}).get("replicas")
    if replicas is not None:
        out["spec"] = {"replicas": replicas}
    return out


def trim_route(body: Mapping[str, Any]) -> Body:
    """An HTTPRoute or VirtualService of ours: small, kept with its spec and status."""
    return {"kind": body.get("kind"), "metadata": _meta(body), "spec": body.get("spec") or {},
            "status": body.get("status") or {}}


def _extended(amounts: Mapping[str, Any] | None) -> Body:
    return {k: v for k, v in (amounts or {}).items() if "/" in k}


def trim_node(body: Mapping[str, Any]) -> Body:
    status = body.get("status") or {}
    return {"metadata": {"name": (body.get("metadata") or {}).get("name", ""),
                         "labels": dict((body.get("metadata") or {}).get("labels") or {})},
            "spec": {"unschedulable": bool((body.get("spec") or {}).get("unschedulable"))},
            "status": {"conditions": _conditions(status, ("Ready",)),
                       "allocatable": _extended(status.get("allocatable"))}}


def trim_bound_pod(body: Mapping[str, Any]) -> Body | None:
    """A bound pod's claim on extended resources (GPUs); None for a pod that asks for none."""
    spec = body.get("spec") or {}
    containers = []
    for container in spec.get("containers") or []:
        resources = container.get("resources") or {}
        requests, limits = _extended(resources.get("requests")), _extended(resources.get("limits"))
        if requests or limits:
            containers.append({"resources": {"requests": requests, "limits": limits}})
    if not containers:
        return None
    meta = body.get("metadata") or {}
    name = (meta.get("labels") or {}).get(labels.NAME)
    return {"metadata": {"namespace": meta.get("namespace", ""), "labels": {labels.NAME: name} if name else {}},
            "spec": {"nodeName": spec.get("nodeName"), "containers": containers},
            "status": {"phase": (body.get("status") or {}).get("phase")}}


def owner_key(item: Mapping[str, Any]) -> tuple[str, str]:
    """(namespace, ModelDeployment name) of one of our objects."""
    meta = item.get("metadata") or {}
    return str(meta.get("namespace", "")), str((meta.get("labels") or {}).get(labels.NAME, ""))


def object_key(item: Mapping[str, Any]) -> tuple[str, str]:
    meta = item.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


class ClusterCache:
    """The reflectors one operator process shares; reads are from memory and thread-safe."""

    def __init__(self, source: reflector.Source, namespaces: Iterable[str] = (), address_annotation: str = "",
                 route_kinds: Iterable[kube.Kind] = (), wake: Callable[[str, str], None] | None = None) -> None:
        self.source, self.wake = source, wake
        scopes: list[str | None] = list(namespaces) or [None]
        self.pods = [reflector.Reflector(source, kube.POD, lambda b: trim_pod(b, address_annotation),
                                         namespace=ns, selector=labels.NAME, key=owner_key, on_change=self._woken)
                     for ns in scopes]
        self.deployments = [reflector.Reflector(source, kube.DEPLOYMENT, trim_owned, namespace=ns, selector=OWNED,
                                                key=owner_key, on_change=self._woken) for ns in scopes]
        self.services = [reflector.Reflector(source, kube.SERVICE, trim_owned, namespace=ns, selector=OWNED,
                                             key=owner_key) for ns in scopes]
        self.routes = {kind.kind: [reflector.Reflector(source, kind, trim_route, namespace=ns, selector=OWNED,
                                                       key=object_key) for ns in scopes] for kind in route_kinds}
        self._nodes: reflector.Reflector[Body] | None = None
        self._bound: reflector.Reflector[Body] | None = None
        self._pool_lock = threading.Lock()
        self._pool_version = 0
        self._usage: dict[tuple[Any, ...], gpu_pool.PoolUsage] = {}
        self.on_restart: Callable[[str], None] | None = None
        """Told the resource each time a watch is opened again after an error, or relisted."""

    def all(self) -> list[reflector.Reflector[Any]]:
        found: list[reflector.Reflector[Any]] = [*self.pods, *self.deployments, *self.services]
        for group in self.routes.values():
            found.extend(group)
        return found + [r for r in (self._nodes, self._bound) if r is not None]

    def start(self) -> None:
        for each in self.all():
            each.on_restart = self.on_restart
            each.start()

    def stop(self) -> None:
        for each in self.all():
            each.stop()

    def wait_synced(self, timeout: float = SYNC_TIMEOUT_S) -> bool:
        return all(each.synced.wait(timeout) for each in self.all())

    def _woken(self, old: Body | None, new: Body | None) -> None:
        if self.wake is not None:
            self.wake(*owner_key(new if new is not None else old or {}))

    # reads
    def owned(self, kind: kube.Kind, namespace: str, name: str) -> list[Body]:
        """The Deployments, pods or Services of one ModelDeployment."""
        groups = {kube.POD: self.pods, kube.DEPLOYMENT: self.deployments, kube.SERVICE: self.services}[kind]
        return [item for each in groups for item in each.get((namespace, name))]

    def route(self, kind: kube.Kind, namespace: str, name: str) -> Body | None:
        for each in self.routes.get(kind.kind, []):
            found = each.get((namespace, name))
            if found:
                return found[0]
        return None

    def cached(self, kind: kube.Kind, namespace: str, name: str) -> tuple[bool, Body | None]:
        """For `kube.Kube.cached`: routes are watched; other kinds are not read this way."""
        if kind.kind not in self.routes:
            return False, None
        return True, self.route(kind, namespace, name)

    def applied(self, body: Mapping[str, Any]) -> Body | None:
        """What the cache holds of the object `body` would apply (None: absent or not watched)."""
        kind = kube.kind_of(body)
        namespace, name = object_key(body)
        if kind.kind in self.routes:
            return self.route(kind, namespace, name)
        groups = {"Deployment": self.deployments, "Service": self.services}.get(kind.kind)
        owner = str(((body.get("metadata") or {}).get("labels") or {}).get(labels.NAME, ""))
        for each in groups or []:
            for item in each.get((namespace, owner)):
                if item["metadata"]["name"] == name:
                    return item
        return None

    # GPU pools
    def _pool_reflectors(self) -> tuple[reflector.Reflector[Body], reflector.Reflector[Body]]:
        with self._pool_lock:
            if self._nodes is None or self._bound is None:
                self._nodes = reflector.Reflector(self.source, kube.NODE, trim_node, on_change=self._pool_changed)
                self._bound = reflector.Reflector(self.source, kube.POD, trim_bound_pod, fields=BOUND,
                                                  on_change=self._pool_changed)
                for each in (self._nodes, self._bound):
                    each.on_restart = self.on_restart
                    each.start()
            return self._nodes, self._bound

    def _pool_changed(self, old: Body | None, new: Body | None) -> None:
        with self._pool_lock:
            self._pool_version += 1
            self._usage.clear()

    def pool_usage(self, node_selector: Mapping[str, str], resource: str,
                   ours: Mapping[str, str] | None = None) -> gpu_pool.PoolUsage | None:
        """The pool's usage from memory, computed once per change; None until the pool is listed."""
        nodes, bound = self._pool_reflectors()
        if not (nodes.synced.wait(SYNC_TIMEOUT_S) and bound.synced.wait(SYNC_TIMEOUT_S)):
            return None
        key = (tuple(sorted(node_selector.items())), resource, tuple(sorted((ours or {}).items())))
        with self._pool_lock:
            version, cached = self._pool_version, self._usage.get(key)
        if cached is not None:
            return cached
        pool = [n for n in nodes.items()
                if all(n["metadata"]["labels"].get(k) == v for k, v in node_selector.items())]
        usage = gpu_pool.usage(pool, bound.items(), resource, ours)
        with self._pool_lock:
            if version == self._pool_version:
                self._usage[key] = usage
        return usage
