"""The Decision out of a finished turn: the workloads (the serving revisions first, the retiring
ones in what the budget leaves), the traffic split, the phase, the conditions, the message, the
analysis window for the next tick and when that tick should come; and the decision for a spec
that cannot be acted on, which holds the world as it is.
"""

from __future__ import annotations

import datetime

from modelrollout.api import durations, labels
from modelrollout.api import spec as api_spec
from modelrollout.api import status as api_status
from modelrollout.core import conditions, decision, observation, phases, replicas, revisions, steps
from modelrollout.core.progression import stepping, turns

Phase = api_status.Phase
PauseReason = api_status.PauseReason
Outcome = api_status.Outcome
Track = labels.Track
Reason = conditions.Reason
Wanted = conditions.Wanted
WARNING = decision.EventType.WARNING


def assemble(ctx: turns.Context, before: api_status.ModelDeploymentStatus, turn: turns.Turn) -> decision.Decision:
    st = turn.status
    stance = turns.stance(ctx.spec, ctx.plan, st) if st.canary_revision is not None else None
    workloads = _workloads(ctx, turn, stance)
    phase = _phase(ctx, st)
    detail = _message(ctx, turn, phase, stance)
    facts = conditions.Facts(
        phase=phase,
        serving=_serving(ctx, st),
        detail=detail,
        pause_reason=st.pause_reason,
        metrics_unavailable=turns.metrics_down(ctx, st),
        hold=turn.hold,
        capacity=turn.capacity,
        degraded=turn.degraded,
        previous_degraded=conditions.wanted_of(before.condition(api_status.ConditionType.DEGRADED)),
    )
    merged = conditions.merge(before.conditions, conditions.derive(facts), ctx.now, ctx.seen.generation)
    if turn.capacity and _reason(before, api_status.ConditionType.PROGRESSING) != Reason.INSUFFICIENT_CAPACITY.value:
        turn = turn.note(WARNING, "InsufficientCapacity", turn.hold or "")
    status = st.model_copy(
        update={
            "observed_generation": ctx.seen.generation,
            "phase": phase,
            "message": detail[:4096],
            "conditions": merged,
            "tracks": (tracks := _tracks_of(ctx, workloads, stance)),
            "replicas": _answering(tracks),
        }
    )
    requeue = _requeue(ctx, turn, stance)
    track = stance.track if stance else Track.CANARY
    ready = ctx.seen.pods(st.canary_revision).ready if st.canary_revision else 0
    section = ctx.spec.strategy.ab_test
    cohort = tuple(section.match) if section and stepping.cohort_routed(st, stance, ready) else ()
    traffic = decision.TrafficSplit(
        st.stable_revision or ctx.revision, st.canary_revision, track, st.canary_weight or 0, st.mirror_percent or 0,
        cohort=cohort,
    )
    return decision.Decision(
        workloads=workloads,
        traffic=traffic,
        status=status,
        events=turn.events,
        smoke_test=turn.smoke,
        analysis=turns.window(ctx.spec, status, ctx.now + requeue),
        requeue_after=requeue,
        pod_budget=ctx.budget.cap if ctx.budget.counted else None,
    )


def _reason(status: api_status.ModelDeploymentStatus, kind: api_status.ConditionType) -> str | None:
    found = status.condition(kind)
    return found.reason if found else None


def _phase(ctx: turns.Context, st: api_status.ModelDeploymentStatus) -> api_status.Phase:
    last = st.history[-1] if st.history else None
    stable = ctx.seen.pods(st.stable_revision)
    started = st.rollout_started_at
    stuck = (  # the first version, not ready by the deadline: crash-looping, or no room for its pods
        started is not None
        and stable.ready < ctx.spec.replicas
        and ctx.now - started > durations.parse_duration(ctx.spec.progress_deadline)
    )
    return phases.derive(
        candidate=st.canary_revision is not None,
        paused=st.pause_reason is not None,
        promoting=(st.current_step or 0) >= len(ctx.plan) or turns.verifying(st),
        deploying=turns.deploying_first(st),
        stuck=stuck,
        rolled_back=last is not None
        and last.outcome in (Outcome.ROLLED_BACK, Outcome.ABORTED)
        and ctx.revision != st.stable_revision,
    )


def _serving(ctx: turns.Context, st: api_status.ModelDeploymentStatus) -> bool:
    candidate = ctx.seen.pods(st.canary_revision).ready > 0 and bool(st.canary_weight)
    return ctx.seen.pods(st.stable_revision).ready > 0 or candidate


def _workloads(ctx: turns.Context, turn: turns.Turn, stance: steps.Stance | None) -> tuple[decision.Workload, ...]:
    """Every revision that should run: the serving ones first, then those waiting out a delay."""
    st, split = turn.status, turn.split
    serving = [
        decision.Workload(
            st.stable_revision or ctx.revision,
            Track.STABLE,
            split.stable if split and stance else turn.stable_fit if turn.stable_fit is not None else ctx.spec.replicas,
            snapshot=st.stable_spec,
        )
    ]
    if st.canary_revision is not None and stance is not None and split is not None:
        found = revisions.find(st.canary_revision, ctx.spec, st)
        serving.append(decision.Workload(st.canary_revision, stance.track, split.candidate, snapshot=found))
    used = sum(item.replicas for item in serving)
    for item in st.scale_downs:
        kept = replicas.kept(ctx.seen.pods(item.revision).desired, ctx.budget.cap, used)
        if kept > 0:
            found = revisions.find(item.revision, ctx.spec, st)
            serving.append(decision.Workload(item.revision, item.track, kept, snapshot=found, until=item.after))
            used += kept
    return tuple(serving)


def _answering(tracks: api_status.Replicas) -> int:
    """Pods that answer user requests, stable and canary (as Argo Rollouts' HPAReplicas): a
    preview answers none before its switch, a shadow only copies. What an HPA scales from."""
    return sum(item.desired for track in (Track.STABLE, Track.CANARY) if (item := tracks.of(track)) is not None)


def _tracks_of(
    ctx: turns.Context, workloads: tuple[decision.Workload, ...], stance: steps.Stance | None
) -> api_status.Replicas:
    tracks: dict[str, api_status.TrackReplicas] = {}
    for item in workloads[: 2 if stance else 1]:
        ready = ctx.seen.pods(item.revision).ready
        tracks[item.track.value] = api_status.TrackReplicas(revision=item.revision, desired=item.replicas, ready=ready)
    return api_status.Replicas.model_validate(tracks)


def _message(ctx: turns.Context, turn: turns.Turn, phase: api_status.Phase, stance: steps.Stance | None) -> str:
    """status.message: what is going on, in one line."""
    st = turn.status
    held = ctx.revision not in (st.stable_revision, st.canary_revision) and ctx.revision in st.rejected_revisions
    note = f"; the spec's revision {ctx.revision} is held back until the spec changes or a retry" if held else ""
    if phase is Phase.PENDING or phase is Phase.DEGRADED:
        ready = ctx.seen.pods(st.stable_revision).ready
        late = f" after {ctx.spec.progress_deadline} (spec.progressDeadline)" if phase is Phase.DEGRADED else ""
        line = f"deploying revision {st.stable_revision}: {ready}/{ctx.spec.replicas} pods ready{late}"
        return line + (f"; {turn.hold}" if turn.hold else "")
    if stance is None or st.canary_revision is None:
        if phase is Phase.ROLLED_BACK and st.history:
            last = st.history[-1]
            return (
                f"revision {last.revision} was rolled back ({last.reason}); revision {st.stable_revision} serves{note}"
            )
        if ctx.spec.replicas == 0:
            return f"revision {st.stable_revision} is scaled to zero (spec.replicas 0): no pod serves{note}"
        if turns.verifying(st):
            note = "; the post-promotion analysis judges it while the old pods wait" + note
        if turn.stable_fit is not None:
            note = f"; {turn.hold}" + note
        return f"revision {st.stable_revision} serves all traffic{note}"
    index = st.current_step or 0
    where = "promotion" if stance.promoting else f"step {index + 1}/{len(ctx.plan)} {steps.describe(stance.step)}"
    pods = ctx.seen.pods(st.canary_revision)
    desired = turn.split.candidate if turn.split else 0
    line = (
        f"{where}: {stance.track.value} {st.canary_revision} {pods.ready}/{desired} ready, "
        f"weight {st.canary_weight or 0}%, mirror {st.mirror_percent or 0}%"
        + (", A/B cohort routed" if stepping.cohort_routed(st, stance, pods.ready) else "")
    )
    if st.pause_reason is not None:
        line += f"; paused ({'MetricsUnavailable' if turns.metrics_down(ctx, st) else st.pause_reason.value})"
    return line + (f"; {turn.hold}" if turn.hold else "") + note


def _requeue(ctx: turns.Context, turn: turns.Turn, stance: steps.Stance | None) -> datetime.timedelta:
    """The time to the next deadline, capped at the analysis interval."""
    st = turn.status
    waits = [ctx.interval]
    polled = turn.hold is not None and turn.stable_fit is None  # a short pool: the interval looks again
    if polled or turn.smoke or turns.deploying_first(st) or (stance is not None and stance.promoting):
        waits.append(turns.POLL)
    if stance is not None and st.pause_reason not in (PauseReason.COMMAND, PauseReason.SCALED_TO_ZERO):
        end = steps.deadline(stance.step, st.step_started_at, st.inconclusive_count)
        if end is not None:
            waits.append(end - ctx.now)
    waits.extend(item.after - ctx.now for item in st.scale_downs)
    return max(turns.MIN_REQUEUE, min(waits))


def degraded(
    spec: api_spec.ModelDeploymentSpec,
    status: api_status.ModelDeploymentStatus,
    seen: observation.Observation,
    problem: str,
    reason: Reason = Reason.INVALID_SPEC,
) -> decision.Decision:
    """A spec the operator cannot act on, or traffic its provider does not carry: hold the world
    as it is (every revision at the size it has, the traffic where it is unless its pods are
    gone), and say why."""
    candidate = status.canary_revision
    weight = (status.canary_weight or 0) if seen.pods(candidate).ready > 0 else 0
    mirror = (status.mirror_percent or 0) if seen.pods(candidate).ready > 0 else 0
    wanted = {
        api_status.ConditionType.DEGRADED: Wanted.true(reason, problem),
        api_status.ConditionType.READY: Wanted.true(Reason.SERVING)
        if seen.pods(status.stable_revision).ready
        else Wanted.false(Reason.NO_READY_PODS),
        **conditions.kstatus(Phase.DEGRADED, Wanted.false(reason, problem), Wanted.true(reason, problem)),
    }
    updated = status.model_copy(
        update={
            "observed_generation": seen.generation,
            "phase": Phase.DEGRADED,
            "message": problem[:4096],
            "conditions": conditions.merge(status.conditions, wanted, seen.now, seen.generation),
            "canary_weight": weight,
            "mirror_percent": mirror,
        }
    )
    repeated = status.phase is Phase.DEGRADED and status.message == problem[:4096]
    tracks = _tracks(status)
    return decision.Decision(
        workloads=_held(spec, status, seen, tracks),
        traffic=decision.TrafficSplit(
            status.stable_revision or revisions.of_spec(spec),
            candidate,
            tracks.get(candidate or "", Track.CANARY),
            weight,
            mirror,
        ),
        status=updated,
        events=() if repeated else (decision.Event(WARNING, reason.value, problem),),
        requeue_after=turns.DEFAULT_INTERVAL,
    )


def _tracks(status: api_status.ModelDeploymentStatus) -> dict[str, labels.Track]:
    """The track each revision played at the last tick."""
    found: dict[str, labels.Track] = {item.revision: item.track for item in status.scale_downs}
    for track in Track:
        item = status.tracks.of(track) if status.tracks else None
        if item is not None and item.revision is not None:
            found[item.revision] = track
    return found


def _held(
    spec: api_spec.ModelDeploymentSpec,
    status: api_status.ModelDeploymentStatus,
    seen: observation.Observation,
    tracks: dict[str, labels.Track],
) -> tuple[decision.Workload, ...]:
    """Every revision the status or the cluster knows, at the size it has now; the stable one first."""
    sizes = {revision: pods.desired for revision, pods in seen.revisions.items() if pods.desired > 0}
    for track in Track:
        item = status.tracks.of(track) if status.tracks else None
        if item is not None and item.revision is not None:
            sizes[item.revision] = max(sizes.get(item.revision, 0), item.desired)
    stable = status.stable_revision
    order = sorted(sizes, key=lambda revision: (revision != stable, revision))
    return tuple(
        decision.Workload(
            revision, tracks.get(revision, Track.STABLE), sizes[revision], revisions.find(revision, spec, status)
        )
        for revision in order
    )
