"""Carrying out a Decision: workloads, Services, traffic, pod labels, status and Events.

The order is what keeps users served while pods come and go, within the GPU budget
(`core.sequencing` orders the workload writes):

1. scale-downs that keep pods, then new revisions and scale-ups (a new revision gets its pods
   before any traffic), cut to what the budget leaves;
2. the Services of each track and the user-facing one;
3. the traffic split;
4. scale-downs to 0 and removals (pods lose their traffic before they go), then the rest of any
   cut scale-up;
5. pod track labels, then status.

A failure at any point stops the tick; the next one starts again from what the cluster shows,
so a half-applied decision is finished, never left.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelrollout.adapters.cluster import manifests, workloads
from modelrollout.api import labels, resources, routing
from modelrollout.api import status as api_status
from modelrollout.core import decision, sequencing
from modelrollout.runtime import shared


def owner_of(md: resources.ModelDeployment) -> manifests.Owner:
    meta = md.metadata
    assert meta.name and meta.namespace and meta.uid
    return manifests.Owner(meta.name, meta.namespace, meta.uid)


def _target_port(md: resources.ModelDeployment) -> int | str:
    return md.spec.traffic.target_port


def _apply_workload(runtime: shared.Runtime, md: resources.ModelDeployment, owner: manifests.Owner,
                    workload: decision.Workload) -> None:
    if workload.snapshot is None:  # no template any more (e.g. superseded): only its size can change
        runtime.workloads.scale(owner, workload.revision, workload.replicas)
        return
    pool = md.spec.gpu_pool.model_dump(mode="json", by_alias=True, exclude_none=True) if md.spec.gpu_pool else None
    model = workload.snapshot.model.model_dump(mode="json", exclude_none=True)
    template = workload.snapshot.template.model_dump(mode="json", exclude_none=True)
    runtime.workloads.apply(manifests.deployment(owner, workload.revision, model, template, workload.replicas,
                                                 workload.track, pool))


def apply(runtime: shared.Runtime, md: resources.ModelDeployment, plan: decision.Decision,
          observed: Mapping[str, workloads.RevisionPods]) -> None:
    """Makes the cluster match `plan` (blocking; run it in a worker thread)."""
    owner = owner_of(md)
    writes = sequencing.sequence(plan.workloads, {rev: pods.desired for rev, pods in observed.items()},
                                 plan.pod_budget)
    for workload in writes.before_traffic:
        _apply_workload(runtime, md, owner, workload)

    port, target = md.spec.traffic.port, _target_port(md)
    replica_ratio = md.spec.traffic.provider is routing.Provider.REPLICA_RATIO
    service_names = []
    for workload in plan.workloads:
        if workload.until is not None:  # retiring: no Service, no traffic
            continue
        if workload.track is labels.Track.STABLE or workload.revision == plan.traffic.candidate_revision:
            runtime.workloads.apply(manifests.track_service(owner, workload.track, workload.revision, port, target))
            service_names.append(manifests.service_name(owner.name, workload.track))
    runtime.workloads.apply(manifests.user_service(owner, plan.traffic.stable_revision, replica_ratio, port, target))
    runtime.router(md.spec.traffic.provider).apply(owner, md.spec.traffic, plan.traffic)

    for workload in writes.after_traffic:
        _apply_workload(runtime, md, owner, workload)
    runtime.workloads.remove_except(owner, [w.revision for w in plan.workloads])
    for workload in writes.after_removals:
        _apply_workload(runtime, md, owner, workload)
    runtime.workloads.remove_services_except(owner, service_names)
    retiring = {w.revision for w in plan.workloads if w.until is not None}
    serving = {plan.traffic.stable_revision}
    if plan.traffic.candidate_revision is not None and plan.traffic.canary_weight > 0:
        serving.add(plan.traffic.candidate_revision)
    runtime.workloads.label_pods(owner, {w.revision: w.track for w in plan.workloads}, serving - retiring)


def status_patch(plan: decision.Decision, name: str) -> dict[str, Any]:
    """A merge patch that replaces status with the decided one (absent fields become null)."""
    return status_patch_of(plan.status, name)


def status_patch_of(status: api_status.ModelDeploymentStatus, name: str) -> dict[str, Any]:
    """The same patch for any status, with the selector of the ModelDeployment's pods that the
    scale subresource reports: two patches are equal when the statuses are."""
    body = status.model_dump(mode="json", by_alias=True)
    body["selector"] = f"{labels.NAME}={name}"
    return {"status": body}
