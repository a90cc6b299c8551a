"""Pure builders of the objects the operator owns for one ModelDeployment.

- a Deployment per revision, `<name>-<revision>`, whose pods carry the name and revision labels
  (the track label is kept on the pods by the operator, so a promotion relabels pods instead of
  restarting them and reloading the model onto the accelerators);
- a Service per track, `<name>-<track>`, selecting the revision that plays that track;
- the user-facing Service `<name>`: the stable revision's pods, or, with the ReplicaRatio
  provider, the pods of every revision that answers users, so that replica counts split traffic.

Every object has an owner reference to the ModelDeployment, so deleting it removes them all.

    deployment_name("scorer", "7b21aa0c4e") -> "scorer-7b21aa0c4e"
    service_name("scorer", Track.CANARY)    -> "scorer-canary"
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

from modelrollout.api import labels

Body = dict[str, Any]
SERVING = "modelrollout.io/serving"
"""Pod label, "true" on pods that answer users; the ReplicaRatio Service selects on it."""


@dataclasses.dataclass(frozen=True)
class Owner:
    """The ModelDeployment every object belongs to."""

    name: str
    namespace: str
    uid: str

    def reference(self) -> Body:
        return {
            "apiVersion": "modelrollout.io/v1alpha1", "kind": "ModelDeployment", "name": self.name,
            "uid": self.uid, "controller": True, "blockOwnerDeletion": True,
        }

    def metadata(self, name: str, extra_labels: Mapping[str, str] | None = None) -> Body:
        meta_labels = {labels.NAME: self.name, labels.MANAGED_BY: labels.MANAGER, **(extra_labels or {})}
        return {"name": name, "namespace": self.namespace, "labels": meta_labels,
                "ownerReferences": [self.reference()]}


def deployment_name(name: str, revision: str) -> str:
    return f"{name}-{revision}"


def service_name(name: str, track: labels.Track) -> str:
    return f"{name}-{track.value}"


def pod_selector(name: str, revision: str) -> dict[str, str]:
    return {labels.NAME: name, labels.REVISION: revision}


def deployment(owner: Owner, revision: str, model: Mapping[str, Any], template: Mapping[str, Any],
               replicas: int, track: labels.Track, gpu_pool: Mapping[str, Any] | None) -> Body:
    """The Deployment running one revision; `track` is the role its pods start with."""
    pod = copy.deepcopy(dict(template))
    meta = pod.setdefault("metadata", {})
    meta.setdefault("labels", {}).update({**pod_selector(owner.name, revision), labels.TRACK: track.value})
    spec = pod.setdefault("spec", {})
    model_env = [
        {"name": labels.ENV_MODEL_NAME, "value": str(model.get("name", ""))},
        {"name": labels.ENV_MODEL_VERSION, "value": str(model.get("version", ""))},
    ]
    if model.get("uri"):
        model_env.append({"name": labels.ENV_MODEL_URI, "value": str(model["uri"])})
    reserved = {e["name"] for e in model_env}
    for container in spec.get("containers", []):
        user_env = [e for e in container.get("env") or [] if e.get("name") not in reserved]
        container["env"] = model_env + user_env
    if gpu_pool:
        spec["nodeSelector"] = {**spec.get("nodeSelector", {}), **gpu_pool.get("nodeSelector", {})}
        tolerations = list(spec.get("tolerations") or [])
        extra = list(gpu_pool.get("tolerations") or []) or [
            {"key": gpu_pool.get("resource", "nvidia.com/gpu"), "operator": "Exists", "effect": "NoSchedule"}]
        spec["tolerations"] = tolerations + [t for t in extra if t not in tolerations]
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": owner.metadata(deployment_name(owner.name, revision), {labels.REVISION: revision}),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": pod_selector(owner.name, revision)},
            "template": pod,
            # One pod at a time, never above the count: the operator does the surge planning.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
        },
    }


def _service(owner: Owner, name: str, selector: Mapping[str, str], port: int, target_port: int | str,
             extra_labels: Mapping[str, str] | None = None) -> Body:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": owner.metadata(name, extra_labels),
        "spec": {"selector": dict(selector),
                 "ports": [{"name": "http", "port": port, "targetPort": target_port, "protocol": "TCP"}]},
    }


def track_service(owner: Owner, track: labels.Track, revision: str, port: int, target_port: int | str) -> Body:
    return _service(owner, service_name(owner.name, track), pod_selector(owner.name, revision), port, target_port,
                    {labels.TRACK: track.value})


def user_service(owner: Owner, stable_revision: str, replica_ratio: bool, port: int, target_port: int | str,
                 rps_annotation: str | None = None) -> Body:
    if replica_ratio:
        selector = {labels.NAME: owner.name, SERVING: "true"}
    else:
        selector = pod_selector(owner.name, stable_revision)
    body = _service(owner, owner.name, selector, port, target_port)
    if rps_annotation is not None:
        body["metadata"]["annotations"] = {labels.RPS: rps_annotation}
    return body
