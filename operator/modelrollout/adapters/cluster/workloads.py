"""The workloads of one ModelDeployment: observed, applied, relabelled and removed.

Reads the Deployments and pods of every revision into plain counts for the decision core
(desired, ready, Pending for lack of capacity, crash-looping), applies Deployments and
Services with server-side apply, keeps each pod's track label equal to the role its revision
plays now, and removes revisions the decision no longer lists.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from modelrollout.adapters.cluster import kube, manifests
from modelrollout.api import labels


@dataclasses.dataclass(frozen=True)
class RevisionPods:
    """What the cluster shows of one revision."""

    revision: str
    desired: int
    ready: int
    unschedulable: int
    crash_looping: int
    restarts: int = 0
    unschedulable_message: str = ""
    waiting_message: str = ""
    """Why a pod that is not ready has no running container, as its kubelet says (the first found)."""


def is_ready(pod: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions", []))


def _unschedulable(pod: Mapping[str, Any]) -> str | None:
    if pod.get("status", {}).get("phase") != "Pending":
        return None
    for condition in pod.get("status", {}).get("conditions", []):
        if condition.get("type") == "PodScheduled" and condition.get("reason") == "Unschedulable":
            return str(condition.get("message", "Unschedulable"))
    return None


def _restarts(pod: Mapping[str, Any]) -> int:
    return sum(int(s.get("restartCount", 0)) for s in pod.get("status", {}).get("containerStatuses") or [])


def _crash_looping(pod: Mapping[str, Any]) -> bool:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    return not is_ready(pod) and any(s.get("restartCount", 0) > 0 for s in statuses)


STARTING = frozenset({"ContainerCreating", "PodInitializing"})
"""Waiting reasons of a container on its way up: no problem to report."""


def _waiting(pod: Mapping[str, Any]) -> str | None:
    """The kubelet's reason a container of a not-ready pod waits ("ErrImageNeverPull: ...",
    "CrashLoopBackOff: back-off 20s ..."), cut short for status.message."""
    if is_ready(pod):
        return None
    for container in pod.get("status", {}).get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason and reason not in STARTING:
            message = str(waiting.get("message") or "").strip()
            return f"{reason}: {message}"[:160] if message else str(reason)
    return None


def summarize(deployments: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]) -> dict[str, RevisionPods]:
    """Counts per revision from listed Deployments and pods (pure; tested with plain dicts)."""
    by_revision: dict[str, list[Mapping[str, Any]]] = {}
    for pod in pods:
        if pod.get("metadata", {}).get("deletionTimestamp"):
            continue
        revision = pod.get("metadata", {}).get("labels", {}).get(labels.REVISION)
        if revision:
            by_revision.setdefault(revision, []).append(pod)
    out: dict[str, RevisionPods] = {}
    for item in deployments:
        revision = item["metadata"].get("labels", {}).get(labels.REVISION)
        if not revision:
            continue
        revision_pods = by_revision.get(revision, [])
        messages = [m for m in (_unschedulable(p) for p in revision_pods) if m]
        waits = [w for w in (_waiting(p) for p in revision_pods) if w]
        out[revision] = RevisionPods(
            revision=revision,
            desired=int(item.get("spec", {}).get("replicas", 0)),
            ready=sum(1 for p in revision_pods if is_ready(p)),
            unschedulable=len(messages),
            crash_looping=sum(1 for p in revision_pods if _crash_looping(p)),
            restarts=sum(_restarts(p) for p in revision_pods),
            unschedulable_message=messages[0] if messages else "",
            waiting_message=waits[0] if waits else "",
        )
    return out


class Owned(Protocol):
    """Where the objects of one ModelDeployment are read from: a watch-backed cache (`caches`)."""

    def owned(self, kind: kube.Kind, namespace: str, name: str) -> list[dict[str, Any]]: ...


class Workloads:
    def __init__(self, client: kube.Kube, cache: Owned | None = None) -> None:
        self.kube = client
        self.cache = cache
        """Without one (tests, tools), every read is a LIST."""

    def _owned(self, kind: kube.Kind, owner: manifests.Owner) -> list[dict[str, Any]]:
        if self.cache is not None:
            return self.cache.owned(kind, owner.namespace, owner.name)
        return self.kube.list(kind, owner.namespace, {labels.NAME: owner.name})

    def pods(self, owner: manifests.Owner, revision: str) -> list[dict[str, Any]]:
        return [p for p in self._owned(kube.POD, owner)
                if (p["metadata"].get("labels") or {}).get(labels.REVISION) == revision]

    def observe(self, owner: manifests.Owner) -> dict[str, RevisionPods]:
        return summarize(self._owned(kube.DEPLOYMENT, owner), self._owned(kube.POD, owner))

    def apply(self, body: manifests.Body) -> None:
        self.kube.apply(body)

    def scale(self, owner: manifests.Owner, revision: str, replicas: int) -> None:
        """Scales a revision whose template is no longer known (a merge patch leaves the rest alone)."""
        self.kube.merge_patch(kube.DEPLOYMENT, owner.namespace, manifests.deployment_name(owner.name, revision),
                              {"spec": {"replicas": replicas}})

    def remove_except(self, owner: manifests.Owner, keep: Iterable[str]) -> list[str]:
        """Deletes the Deployments of revisions not in `keep`; returns the revisions removed."""
        wanted = set(keep)
        removed = []
        for item in self._owned(kube.DEPLOYMENT, owner):
            revision = item["metadata"].get("labels", {}).get(labels.REVISION)
            if revision and revision not in wanted and not item["metadata"].get("deletionTimestamp"):
                self.kube.delete(kube.DEPLOYMENT, owner.namespace, item["metadata"]["name"])
                removed.append(revision)
        return removed

    def remove_services_except(self, owner: manifests.Owner, keep: Iterable[str]) -> None:
        wanted = set(keep) | {owner.name}
        for item in self._owned(kube.SERVICE, owner):
            if item["metadata"]["name"] not in wanted:
                self.kube.delete(kube.SERVICE, owner.namespace, item["metadata"]["name"])

    def label_pods(self, owner: manifests.Owner, roles: Mapping[str, labels.Track], serving: Iterable[str]) -> int:
        """Sets each pod's track label from its revision's role, and the serving label on the pods
        of the revisions that answer users; returns how many pods changed."""
        answering = set(serving)
        changed = 0
        for pod in self._owned(kube.POD, owner):
            meta = pod["metadata"]
            current = meta.get("labels", {})
            revision = current.get(labels.REVISION, "")
            role = roles.get(revision)
            if role is None or meta.get("deletionTimestamp"):
                continue
            flag = "true" if revision in answering else "false"
            if current.get(labels.TRACK) != role.value or current.get(manifests.SERVING) != flag:
                self.kube.merge_patch(kube.POD, owner.namespace, meta["name"],
                                      {"metadata": {"labels": {labels.TRACK: role.value, manifests.SERVING: flag}}})
                changed += 1
        return changed
