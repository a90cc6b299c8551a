"""How many accelerators a node pool has, and how many its pods already hold.

Allocatable comes from the pool's Ready, schedulable nodes; requested sums the requests (or
limits, which extended resources default requests to) of every non-terminal pod bound to them,
whoever owns it, the way the scheduler counts. Pending pods hold nothing yet.

    quantity("8") -> 8;  quantity("500m") -> 0  (accelerators come whole)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from modelrollout.adapters.cluster import kube


@dataclasses.dataclass(frozen=True)
class PoolUsage:
    nodes: int
    allocatable: int
    requested: int
    held: int = 0
    """Requested by the pods that match `ours` (one ModelDeployment's), a part of `requested`."""

    @property
    def free(self) -> int:
        return max(0, self.allocatable - self.requested)


def quantity(value: object) -> int:
    text = str(value).strip()
    if text.endswith("m"):
        return int(text[:-1]) // 1000
    return int(float(text))


def _node_usable(node: Mapping[str, Any]) -> bool:
    if node.get("spec", {}).get("unschedulable"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in node.get("status", {}).get("conditions", []))


def pod_request(pod: Mapping[str, Any], resource: str) -> int:
    total = 0
    for container in pod.get("spec", {}).get("containers", []):
        resources = container.get("resources") or {}
        value = (resources.get("requests") or {}).get(resource, (resources.get("limits") or {}).get(resource))
        if value is not None:
            total += quantity(value)
    return total


def _matches(pod: Mapping[str, Any], selector: Mapping[str, str]) -> bool:
    pod_labels = pod.get("metadata", {}).get("labels") or {}
    return bool(selector) and all(pod_labels.get(k) == v for k, v in selector.items())


def usage(nodes: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]], resource: str,
          ours: Mapping[str, str] | None = None) -> PoolUsage:
    """Pure: the pool's usage from listed nodes and pods; `ours` selects one owner's pods."""
    usable = [n for n in nodes if _node_usable(n)]
    names = {n["metadata"]["name"] for n in usable}
    allocatable = sum(quantity(n.get("status", {}).get("allocatable", {}).get(resource, 0)) for n in usable)
    bound = [p for p in pods
             if p.get("spec", {}).get("nodeName") in names
             and p.get("status", {}).get("phase") not in ("Succeeded", "Failed")]
    requested = sum(pod_request(p, resource) for p in bound)
    held = sum(pod_request(p, resource) for p in bound if _matches(p, ours or {}))
    return PoolUsage(nodes=len(usable), allocatable=allocatable, requested=requested, held=held)


def read(client: kube.Kube, node_selector: Mapping[str, str], resource: str,
         ours: Mapping[str, str] | None = None) -> PoolUsage:
    nodes = client.list(kube.NODE, labels=node_selector)
    pods = client.list(kube.POD, fields="status.phase!=Succeeded,status.phase!=Failed")
    return usage(nodes, pods, resource, ours)
