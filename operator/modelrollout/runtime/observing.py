"""Reading one ModelDeployment's world into a core Observation.

Pods per revision and the GPU pool come from the API server; the smoke test and the analysis
run only when the previous decision asked for them (`Asked`), so their results reach the core
exactly once. What the previous decision asked is kept in memory; after a restart the analysis
window is derived from status again, and a smoke test not yet recorded in status is simply
asked for again.
"""

from __future__ import annotations

import datetime

from modelrollout import errors
from modelrollout.adapters.cluster import gpu_pool, manifests, workloads
from modelrollout.adapters.endpoint import smoke
from modelrollout.api import commands, labels, resources
from modelrollout.api import status as api_status
from modelrollout.core import observation
from modelrollout.runtime import judging, notifying, shared, slots

Asked = slots.Asked


def _pods(revisions: dict[str, workloads.RevisionPods]) -> dict[str, observation.Pods]:
    return {
        revision: observation.Pods(desired=seen.desired, ready=seen.ready, unschedulable=seen.unschedulable,
                                   crashing=seen.crash_looping, restarts=seen.restarts,
                                   waiting=seen.waiting_message)
        for revision, seen in revisions.items()
    }


def _pool(runtime: shared.Runtime, md: resources.ModelDeployment) -> observation.Pool | None:
    pool = md.spec.gpu_pool
    if pool is None:
        return None
    ours = {labels.NAME: md.metadata.name or ""}
    used = runtime.cache.pool_usage(pool.node_selector, pool.resource, ours) if runtime.cache else None
    if used is None:  # no cache, or the pool not listed yet
        used = gpu_pool.read(runtime.kube, pool.node_selector, pool.resource, ours=ours)
    name = ",".join(pool.node_selector.values())
    return observation.Pool(allocatable=used.allocatable, requested=used.requested, held=used.held, name=name)


def address(runtime: shared.Runtime, md: resources.ModelDeployment, revision: str) -> str | None:
    """host:port of one ready pod of a revision, for the smoke test."""
    owner = manifests.Owner(md.metadata.name or "", md.metadata.namespace or "", md.metadata.uid or "")
    pods = runtime.workloads.pods(owner, revision)
    annotation = runtime.settings.pod_address_annotation
    for pod in pods:
        if not workloads.is_ready(pod):
            continue
        if annotation and annotation in (pod["metadata"].get("annotations") or {}):
            return str(pod["metadata"]["annotations"][annotation])
        ip = pod.get("status", {}).get("podIP")
        port = _container_port(pod, md.spec.traffic.target_port)
        if ip and port:
            return f"{ip}:{port}"
    return None


def _container_port(pod: dict[str, object], target: int | str) -> int | None:
    if isinstance(target, int):
        return target
    spec = pod.get("spec")
    containers = spec.get("containers", []) if isinstance(spec, dict) else []
    for container in containers:
        for port in container.get("ports") or []:
            if port.get("name") == target:
                return int(port["containerPort"])
    return None


def _smoke(runtime: shared.Runtime, md: resources.ModelDeployment, revision: str,
           now: datetime.datetime) -> api_status.SmokeResult | None:
    test = md.spec.smoke_test
    if test is None:
        return None
    target = address(runtime, md, revision)
    if target is None:
        return None  # no ready pod yet: the core asks again
    outcome = smoke.run(target, test)
    return api_status.SmokeResult(revision=revision, passed=outcome.passed, message=outcome.message[:1024], at=now)


def _command(md: resources.ModelDeployment, asked: Asked) -> tuple[commands.Command | None, str | None]:
    value = md.metadata.annotations.get(labels.COMMAND)
    if not value:
        return None, None
    try:
        command = commands.parse(value)
    except ValueError as error:
        if asked.command_error_for == value:
            return None, None
        asked.command_error_for = value
        return None, f"annotation {labels.COMMAND}: {error}"
    last = md.status.last_command
    if last is not None and last.id == command.id:
        return None, None
    return command, None


def observe(runtime: shared.Runtime, md: resources.ModelDeployment, asked: Asked,
            now: datetime.datetime) -> tuple[observation.Observation, dict[str, workloads.RevisionPods]]:
    """The observation for this tick, and the raw per-revision counts the applier needs."""
    owner = manifests.Owner(md.metadata.name or "", md.metadata.namespace or "", md.metadata.uid or "")
    seen = runtime.workloads.observe(owner)
    command, command_error = _command(md, asked)
    problem = (asked.spec_problem or judging.spec_problem(runtime, md)
               or notifying.spec_problem(runtime, md, asked))
    evidence = None
    if asked.analysis is not None and problem is None:
        try:
            evidence = judging.judge(runtime, md, asked.analysis, now)
        except errors.SpecError as error:
            problem = str(error)
    result = _smoke(runtime, md, asked.smoke_test, now) if asked.smoke_test else None
    found = observation.Observation(
        now=now, generation=md.metadata.generation or 0, revisions=_pods(seen), pool=_pool(runtime, md),
        smoke_test=result, evidence=evidence, command=command, command_error=command_error,
        spec_problem=problem, route_problem=runtime.router(md.spec.traffic.provider).problem(owner),
    )
    return found, seen
