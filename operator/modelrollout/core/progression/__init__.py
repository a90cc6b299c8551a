"""decide(): one tick of the rollout state machine, the same for every strategy.

Given the spec, the status written at the last tick and what was observed since, `decide` says
what the world should look like now: pods per revision, the traffic split, the status, events,
and what the next tick should judge. It is a checklist of stages, each a pure function from a
`Turn` (the status being written, plus what this tick found out) to the next one:

    bootstrap  the first version: deploy it as stable, Pending until its pods are ready
    command    the last command not handled yet (commanding)
    revision   a new spec revision starts a rollout, dropping a candidate the spec moved away from
    progress   the candidate's step (stepping): its pods, failures (smoke test, progress deadline,
               analysis), traffic, and the move to the next step or the switch (moves); when
               serving, a scale-up as far as the GPU pool allows (mid-rollout, `turns.fitted`
               cuts spec.replicas to what fits first); after a blue-green switch, the
               post-promotion analysis
    retire     old pods whose scale-down delay has passed go
    assemble   the Decision (assembling)

THE STATUS IS THE STATE. Nothing is kept between ticks but the status, so an operator restart,
a failover or a restored backup carries on where it stopped. The phase is derived from the
status fields at the end of each tick and checked against `phases.TRANSITIONS` by the tests.
`rolloutStartedAt` with no canary revision marks a first version still deploying;
`analysisStartedAt` with no canary revision, a blue-green switch being judged after the fact.
A tick that starts a rollout only starts it: no step ends in the same tick.

EVIDENCE AND WINDOWS. Each decision asks for an `AnalysisWindow` whenever the candidate has had
traffic (or an analyze step runs) and spec.analysis is set; the next observation brings its
verdict. `since` is when traffic first reached the candidate on its current track
(status.analysisStartedAt), kept across steps: the judges' tests are anytime-valid, so the
evidence of earlier steps is kept rather than thrown away. It restarts at a handover (shadow to
canary: a new track and a new kind of traffic) and at a blue-green post-promotion analysis: each
such phase runs at its share of alpha (`turns.alpha_share`), so a rollout spends alpha once
however many phases it has. A person who promotes past a failed analysis accepts that failure
(status.analysisAccepted): the window goes on and no alpha is spent again. `final` marks the
look at an analyze step's end. Evidence for any other window is stale and ignored.

WHAT A VERDICT DOES. FAIL, at any step (the background check), rolls back, or pauses with
rollback.automatic false. PASS ends an analyze step once its duration is over, and nothing
else: a step lasts at least its duration however clear the evidence, so slow regressions get
the whole window. INCONCLUSIVE at the final look extends the step by its duration, up to
failureLimits.inconclusive, then pauses for a person. ERROR holds every automatic move (no step
ends, no traffic goes up, no switch, no rollback) and counts; past failureLimits.consecutiveErrors
the rollout pauses (Paused with reason InconclusiveAnalysis and a MetricsUnavailable condition),
and it carries on by itself with the evidence kept once the metrics come back: an unreachable
Prometheus never promotes and never rolls back. A person's promote or promote-full still works.

SCALED TO ZERO. spec.replicas 0 (`kubectl scale --replicas=0`) runs no pod of any revision, so
traffic ends; the route is left as it is. A rollout in progress pauses (ScaledToZero) rather than
fail: nothing is judged, no step ends and no deadline runs. Scaling up again resumes the step from
its start, with the evidence gathered before kept (the tests are anytime-valid).

PROGRESS DEADLINE. A step that waits for candidate pods longer than spec.progressDeadline (15m by
default) rolls back, unless the missing pods are Pending for capacity: that holds, it never
fails. Steps that only hold (pause, analyze) fail on crash-looping pods only, since their pods
were ready when the step began and a pod that is briefly not ready is not yet a failure. The
wait is measured from the step's start (the status has no field for "last progress").
"""

from __future__ import annotations

from modelrollout.api import labels
from modelrollout.api import spec as api_spec
from modelrollout.api import status as api_status
from modelrollout.core import decision, observation, revisions
from modelrollout.core.progression import assembling, commanding, moves, stepping, turns

# The public face of the package (the handlers and tests use these names); the stages live in
# the submodules: turns (the tick's context and turn), stepping (the candidate's step), moves
# (start, next, promote, roll back), commanding (the verbs) and assembling (the Decision).
plan = turns.plan
window = turns.window
DEFAULT_INTERVAL = turns.DEFAULT_INTERVAL
POLL = turns.POLL
MIN_REQUEUE = turns.MIN_REQUEUE

Outcome = api_status.Outcome
PauseReason = api_status.PauseReason
NORMAL = decision.EventType.NORMAL


def decide(
    spec: api_spec.ModelDeploymentSpec,
    status: api_status.ModelDeploymentStatus,
    observation: observation.Observation,
) -> decision.Decision:
    """What should happen now for one ModelDeployment (see the module docstring)."""
    try:
        ctx = turns.context(spec, observation)
    except ValueError as error:
        return assembling.degraded(spec, status, observation, str(error))
    if observation.spec_problem is not None:
        return assembling.degraded(spec, status, observation, observation.spec_problem)
    if observation.route_problem is not None:
        return assembling.degraded(spec, status, observation, observation.route_problem,
                                   assembling.Reason.ROUTE_NOT_ACCEPTED)
    ctx, asked = turns.fitted(ctx, status)
    turn = turns.Turn(status)
    for stage in (_bootstrap, commanding.handle, _revision, _progress, _retire):
        turn = stage(ctx, turn)
    if asked is not None:  # reported, but it holds nothing back: the rollout goes on with what fits
        why = ctx.budget.scale_shortfall(asked, ctx.spec.replicas)
        turn = turn.but(hold=f"{turn.hold}; {why}" if turn.hold else why, capacity=True)
    return assembling.assemble(ctx, status, turn)


def _bootstrap(ctx: turns.Context, turn: turns.Turn) -> turns.Turn:
    """The first version: deploy the spec's revision as stable; it needs no comparison."""
    st = turn.status
    if st.stable_revision is None or (turns.deploying_first(st) and st.stable_revision != ctx.revision):
        return turn.set(
            stable_revision=ctx.revision, stable_spec=revisions.snapshot(ctx.spec), rollout_started_at=ctx.now
        ).note(NORMAL, "Deploying", f"deploying revision {ctx.revision} (model {ctx.spec.model.version})")
    if not turns.deploying_first(st):
        return turn
    pods = ctx.seen.pods(st.stable_revision)
    if pods.unschedulable > 0:
        return turn.but(hold=ctx.budget.pending(pods.unschedulable, labels.Track.STABLE.value), capacity=True)
    if pods.ready < ctx.spec.replicas:
        return turn
    entry = moves.record(ctx, st, st.stable_revision or "", Outcome.PROMOTED, "the first version", st.stable_spec)
    return turn.set(rollout_started_at=None, history=moves.history(ctx, st, entry)).note(
        NORMAL, "Ready", f"revision {st.stable_revision} is ready on {ctx.spec.replicas} pods"
    )


def _revision(ctx: turns.Context, turn: turns.Turn) -> turns.Turn:
    """A new revision starts a rollout; a candidate the spec moved away from is dropped.

    A candidate that is not the spec's revision is an undo (or runs while the spec names a
    rejected revision): it carries on unless the spec names a new revision or the stable one.
    """
    st = turn.status
    if turns.deploying_first(st):
        return turn
    rejected = ctx.revision in st.rejected_revisions
    back_to_stable = ctx.revision == st.stable_revision and not rejected
    new = ctx.revision not in (st.stable_revision, st.canary_revision) and not rejected
    if st.canary_revision is not None and (new or back_to_stable):
        why = "the spec went back to the stable revision" if back_to_stable else f"revision {ctx.revision} replaces it"
        turn = moves.drop(ctx, turn, why)
    if new:
        turn = moves.start(ctx, turn, ctx.revision, f"the spec asks for revision {ctx.revision}")
    return turn


def _progress(ctx: turns.Context, turn: turns.Turn) -> turns.Turn:
    """The candidate's step: failures first, then traffic, then the move on."""
    st = turn.status
    if st.canary_revision is None:
        return stepping.verify(ctx, stepping.fit_stable(ctx, turn))
    if ctx.spec.replicas == 0:
        return stepping.scaled_to_zero(ctx, turn)
    if st.pause_reason is PauseReason.SCALED_TO_ZERO:
        turn = stepping.scaled_up(ctx, turn)
        st = turn.status
    stance = turns.stance(ctx.spec, ctx.plan, st)
    pods = ctx.seen.pods(st.canary_revision)
    turn = stepping.size(ctx, turn.set(current_step=turns.step_index(ctx.plan, st)), stance, pods)
    for stage in (stepping.smoke_result, stepping.overdue, stepping.judge, stepping.route, stepping.advance):
        turn = stage(ctx, turn, stance, pods)
        if turn.status.canary_revision is None:
            return turn
    if turn.status.current_step != st.current_step:  # the next step's pods and smoke test are asked for at once
        following = turns.stance(ctx.spec, ctx.plan, turn.status)
        turn = stepping.size(ctx, turn.but(hold=None, capacity=False), following, pods)
        turn = stepping.route(ctx, turn, following, pods)
    return stepping.pose(ctx, turn)


def _retire(ctx: turns.Context, turn: turns.Turn) -> turns.Turn:
    """Pods past their scale-down delay go; the lists stay within their bounds."""
    st = turn.status
    active = {st.stable_revision, st.canary_revision}
    waiting = [entry for entry in st.scale_downs if entry.after > ctx.now and entry.revision not in active]
    return turn.set(
        scale_downs=waiting[-turns.SCALE_DOWN_LIMIT :],
        rejected_revisions=st.rejected_revisions[-turns.REJECTED_LIMIT :],
    )
