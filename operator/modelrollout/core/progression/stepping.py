"""The candidate's current step, one stage at a time: its pods, a fresh smoke test result, the
progress deadline, the analysis verdict, the traffic, and the move to the next step or the
switch; and the post-promotion analysis that judges a blue-green switch after the fact.
"""

from __future__ import annotations

from modelrollout.api import commands, durations, labels, verdicts
from modelrollout.api import status as api_status
from modelrollout.core import conditions, decision, observation, replicas, steps
from modelrollout.core.progression import moves, turns

PauseReason = api_status.PauseReason
Outcome = api_status.Outcome
Verdict = verdicts.Verdict
Track = labels.Track
Reason = conditions.Reason
NORMAL, WARNING = decision.EventType.NORMAL, decision.EventType.WARNING


def size(ctx: turns.Context, turn: turns.Turn, stance: steps.Stance, pods: observation.Pods) -> turns.Turn:
    """Pods for the stance, and a hold if the candidate waits for them."""
    total, cap, st = ctx.spec.replicas, ctx.budget.cap, turn.status
    rolling = stance.track is Track.CANARY and not stance.cohort
    if rolling:
        weight = 100 if stance.promoting else stance.weight
        split = replicas.canary(total, weight, cap, st.canary_weight or 0, pods.ready, ctx.by_ratio)
    else:  # before a switch, and as an A/B challenger, the candidate runs beside the stable pods
        split = replicas.beside(total, total if stance.promoting else stance.replicas or total, cap, pods.desired)
    turn = turn.but(split=split)
    track = stance.track.value
    if not rolling and split.candidate < split.goal:  # a rolling canary is not short
        return turn.but(hold=ctx.budget.shortfall(split.goal - pods.desired + pods.unschedulable), capacity=True)
    if pods.unschedulable > 0:
        return turn.but(hold=ctx.budget.pending(pods.unschedulable, track), capacity=True)
    if pods.ready < split.candidate:
        kubelet = f" ({pods.waiting})" if pods.waiting else ""
        return turn.but(hold=f"waiting for {track} pods: {pods.ready}/{split.candidate} ready{kubelet}")
    return turn


def fit_stable(ctx: turns.Context, turn: turns.Turn) -> turns.Turn:
    """Serving: a scale-up goes as far as the GPU pool has room, and the rest is reported in
    numbers (Progressing InsufficientCapacity) rather than left as Pending pods. Pods already
    ready are never taken away for it, and a first version is left to the scheduler."""
    st, budget, pool = turn.status, ctx.budget, ctx.seen.pool
    want = ctx.spec.replicas
    if turns.deploying_first(st) or not budget.counted or pool is None:
        return turn
    waiting = (ctx.seen.pods(entry.revision) for entry in st.scale_downs)
    others = sum(max(0, pods.desired - pods.unschedulable) for pods in waiting)
    fits = max((pool.held + pool.free) // budget.per_pod - others, ctx.seen.pods(st.stable_revision).ready)
    if fits >= want:
        return turn
    return turn.but(stable_fit=fits, hold=budget.scale_shortfall(want, fits), capacity=True)


def scaled_to_zero(ctx: turns.Context, turn: turns.Turn) -> turns.Turn:
    """spec.replicas 0 mid-rollout: no pod of either revision, and the rollout paused, not failed.
    A pause that needs a person (a command, a failed or inconclusive analysis) is kept as it is.
    The step's weight comes back once the pods are ready again after a scale-up."""
    turn = turn.but(split=replicas.Split(stable=0, candidate=0, goal=0, stable_goal=0), hold=None, capacity=False)
    st = turn.status
    if st.canary_weight or st.mirror_percent:  # the route goes back to stable: no weight on pods going away
        turn = turn.set(canary_weight=0, mirror_percent=0).note(
            NORMAL, "TrafficShifted", f"{st.canary_revision}: weight 0%, mirror 0% (scaled to zero)"
        )
    if st.pause_reason in turns.STICKY or st.pause_reason is PauseReason.SCALED_TO_ZERO:
        return turn
    why = "spec.replicas is 0: no pod runs and traffic has ended; scale up to resume"
    return turn.set(pause_reason=PauseReason.SCALED_TO_ZERO, consecutive_errors=0).note(NORMAL, "ScaledToZero", why)


def scaled_up(ctx: turns.Context, turn: turns.Turn) -> turns.Turn:
    """Out of a ScaledToZero pause: the step starts again, as its pods do."""
    why = f"scaled up to {ctx.spec.replicas} replicas: the step starts again"
    return turn.set(pause_reason=None, step_started_at=ctx.now).note(NORMAL, "Resumed", why)


def smoke_result(ctx: turns.Context, turn: turns.Turn, stance: steps.Stance, pods: observation.Pods) -> turns.Turn:
    """Record a fresh smoke test result; a failure rolls back."""
    result, st = ctx.seen.smoke_test, turn.status
    if result is None or result.revision != st.canary_revision or st.smoke_test == result:
        return turn
    turn = turn.set(smoke_test=result)
    if result.passed:
        return turn.note(NORMAL, "SmokeTestPassed", f"revision {result.revision}: {result.message or 'passed'}")
    return moves.rollback(
        ctx, turn, Outcome.ROLLED_BACK, Reason.SMOKE_TEST_FAILED, f"smoke test failed: {result.message}"
    )


def overdue(ctx: turns.Context, turn: turns.Turn, stance: steps.Stance, pods: observation.Pods) -> turns.Turn:
    """Candidate pods that do not become ready within spec.progressDeadline fail the rollout."""
    st, split = turn.status, turn.split
    started = st.step_started_at
    if split is None or started is None or st.pause_reason is PauseReason.COMMAND:
        return turn
    stuck = split.candidate - pods.ready - pods.unschedulable
    limit = durations.parse_duration(ctx.spec.progress_deadline)
    if stuck <= 0 or ctx.now - started <= limit or (stance.holds and pods.crashing == 0):
        return turn
    why = (
        f"{stuck} of {split.candidate} {stance.track.value} pods not ready after {ctx.spec.progress_deadline}"
        f" ({pods.crashing} crash-looping, {pods.restarts} restarts)" + (f": {pods.waiting}" if pods.waiting else "")
    )
    return moves.rollback(ctx, turn, Outcome.ROLLED_BACK, Reason.PROGRESS_DEADLINE_EXCEEDED, why)


def judge(ctx: turns.Context, turn: turns.Turn, stance: steps.Stance, pods: observation.Pods) -> turns.Turn:
    """Act on the verdict of the window the last decision asked for."""
    evidence, st = ctx.seen.evidence, turn.status
    if evidence is None or not _fresh(evidence.window, st, stance):
        return turn
    if evidence.metrics:
        turn = _warn(turn, st, evidence).set(analysis=list(evidence.metrics)[:64])
    if evidence.verdict is Verdict.ERROR:
        return _unreadable(ctx, turn, evidence)
    turn = _readable(ctx, turn)
    if evidence.verdict is Verdict.FAIL:
        return _failed(ctx, turn, evidence)
    if evidence.goal is not None:
        return _contest(ctx, turn, stance, evidence)
    if not isinstance(stance.step, steps.Analyze) or turn.status.pause_reason in (
        PauseReason.COMMAND,
        PauseReason.FAILED_ANALYSIS,
    ):
        return turn  # a background PASS or INCONCLUSIVE changes nothing
    end = steps.deadline(stance.step, st.step_started_at, st.inconclusive_count)
    final = end is not None and ctx.now >= end  # a step lasts its duration, however clear the evidence
    if evidence.verdict is Verdict.PASS and final:
        turn = turn.set(pause_reason=None) if turn.status.pause_reason else turn
        return turn.but(passed=True).note(NORMAL, "AnalysisPassed", evidence.reason or "the analysis passed")
    if evidence.verdict is Verdict.INCONCLUSIVE and final and evidence.window.final and not turn.status.pause_reason:
        return _inconclusive(ctx, turn, stance.step, evidence)
    return turn


def _contest(ctx: turns.Context, turn: turns.Turn, stance: steps.Stance, evidence: observation.Evidence) -> turns.Turn:
    """An A/B test's analyze step, with the guardrails not failing: a win (the goal won and every
    guardrail passed) ends it at once; a loss keeps stable at once; a test that reaches its end
    undecided keeps stable too. Guardrails still collecting evidence hold a win back, and a test
    ends undecided rather than promote a challenger whose guardrails were never shown to hold."""
    st = turn.status
    if not isinstance(stance.step, steps.Analyze) or not stance.cohort or st.pause_reason in (
        PauseReason.COMMAND,
        PauseReason.FAILED_ANALYSIS,
    ):
        return turn
    goal = evidence.goal_reason or "the goal"
    if evidence.goal is Verdict.FAIL:
        return moves.rollback(ctx, turn, Outcome.ROLLED_BACK, Reason.CHALLENGER_LOST, goal)
    if evidence.goal is Verdict.PASS and evidence.verdict is Verdict.PASS:
        turn = turn.set(pause_reason=None) if st.pause_reason else turn
        return turn.but(passed=True).note(NORMAL, "ChallengerWon", goal)
    end = steps.deadline(stance.step, st.step_started_at)
    if end is not None and ctx.now >= end and evidence.window.final:
        if evidence.goal is Verdict.PASS:
            why = f"{goal}; but the guardrails were not shown to hold: {evidence.reason or 'no verdict'}"
        else:
            why = goal
        return moves.rollback(ctx, turn, Outcome.ROLLED_BACK, Reason.UNDECIDED,
                              f"undecided after {durations.format_duration(stance.step.duration)}: {why}")
    return turn


def _warn(turn: turns.Turn, status: api_status.ModelDeploymentStatus, evidence: observation.Evidence) -> turns.Turn:
    """A Warning Event the first time a metric's result carries a warning (buckets too coarse for
    the tolerance asked): the test runs, but the user should know what it can and cannot see."""
    warned = {entry.metric for entry in status.analysis if entry.warning}
    for entry in evidence.metrics:
        if entry.warning and entry.metric not in warned:
            turn = turn.note(WARNING, "BucketsTooCoarse", f"{entry.metric}: {entry.warning}")
    return turn


def _fresh(asked: decision.AnalysisWindow, status: api_status.ModelDeploymentStatus, stance: steps.Stance) -> bool:
    return (
        asked.candidate_revision == status.canary_revision
        and asked.since == status.analysis_started_at
        and asked.candidate_track is stance.track
    )


def _unreadable(ctx: turns.Context, turn: turns.Turn, evidence: observation.Evidence) -> turns.Turn:
    count = turn.status.consecutive_errors + 1
    turn = turn.set(consecutive_errors=count)
    why = evidence.reason or "the metrics could not be read"
    if count == 1:
        turn = turn.note(WARNING, "AnalysisError", f"{why}: holding, no promotion and no rollback")
    if count > turns.limits(ctx)[0] and turn.status.pause_reason not in turns.STICKY:
        turn = turn.set(pause_reason=PauseReason.INCONCLUSIVE).note(
            WARNING, "AnalysisPaused", f"metrics unreadable {count} times in a row ({why}): paused until they return"
        )
    return turn


def _readable(ctx: turns.Context, turn: turns.Turn) -> turns.Turn:
    st = turn.status
    if st.consecutive_errors == 0:
        return turn
    if turns.metrics_down(ctx, st):
        turn = turn.set(pause_reason=None)
    return turn.set(consecutive_errors=0).note(NORMAL, "AnalysisResumed", "the metrics can be read again")


def _failed(ctx: turns.Context, turn: turns.Turn, evidence: observation.Evidence) -> turns.Turn:
    if turn.status.pause_reason is PauseReason.FAILED_ANALYSIS:
        return turn
    why = failure(evidence)
    if ctx.spec.rollback.automatic:
        return moves.rollback(ctx, turn, Outcome.ROLLED_BACK, Reason.ANALYSIS_FAILED, why)
    return turn.set(pause_reason=PauseReason.FAILED_ANALYSIS).note(
        WARNING, "AnalysisFailed", f"{why}; rollback.automatic is false: paused for promote or abort"
    )


def failure(evidence: observation.Evidence) -> str:
    """The failing metrics and their values, e.g. "error-rate: canary 0.31 vs stable 0.01 (...)"."""
    failed = [metric for metric in evidence.metrics if metric.verdict is Verdict.FAIL]
    parts = []
    for metric in failed:
        values = f"canary {_number(metric.canary)} vs stable {_number(metric.stable)}"
        parts.append(f"{metric.metric}: {values}" + (f" ({metric.reason})" if metric.reason else ""))
    return "; ".join(parts) or evidence.reason or "the analysis failed"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _inconclusive(
    ctx: turns.Context, turn: turns.Turn, step: steps.Analyze, evidence: observation.Evidence
) -> turns.Turn:
    count = turn.status.inconclusive_count + 1
    limit = turns.limits(ctx)[1]
    span = durations.format_duration(step.duration)
    why = evidence.reason or "not enough evidence"
    if count > limit:
        return turn.set(inconclusive_count=count, pause_reason=PauseReason.INCONCLUSIVE).note(
            WARNING, "AnalysisInconclusive", f"{why} after {count} windows: paused for promote or abort"
        )
    return turn.set(inconclusive_count=count).note(
        NORMAL, "AnalysisExtended", f"{why}: analysis extended by {span} ({count}/{limit})"
    )


def route(ctx: turns.Context, turn: turns.Turn, stance: steps.Stance, pods: observation.Pods) -> turns.Turn:
    """Move traffic as far as ready pods and the smoke test allow; ask for the smoke test."""
    st = turn.status
    passed = turns.smoke_passed(ctx, st)
    wants = stance.weight > 0 or stance.mirror > 0 or stance.promoting or stance.cohort
    failed = st.smoke_test is not None and st.smoke_test.revision == st.canary_revision
    if wants and not passed and not failed and pods.ready > 0:
        turn = turn.but(smoke=st.canary_revision, hold=turn.hold or "waiting for the smoke test")
    weight = _weight(ctx, turn, stance, pods, passed)
    mirror = _mirror(turn, stance, pods, passed)
    cohort = _cohort(turn, stance, pods, passed)
    started = st.analysis_started_at
    if started is None and (weight > 0 or mirror > 0 or cohort or isinstance(stance.step, steps.Analyze)):
        started = ctx.now
    if cohort and st.analysis_started_at is None:
        turn = turn.note(NORMAL, "TrafficShifted", f"the A/B cohort goes to challenger {st.canary_revision}")
    if (weight, mirror) != (st.canary_weight or 0, st.mirror_percent or 0):
        turn = turn.note(
            NORMAL, "TrafficShifted", f"{stance.track.value} {st.canary_revision}: weight {weight}%, mirror {mirror}%"
        )
    return turn.set(canary_weight=weight, mirror_percent=mirror, analysis_started_at=started)


def _cohort(turn: turns.Turn, stance: steps.Stance, pods: observation.Pods, passed: bool) -> bool:
    """Whether the A/B cohort goes to the challenger: once all its pods are ready and its smoke test
    passed, and from then on while any of its pods is ready (never to a revision with none)."""
    st, split = turn.status, turn.split
    if not stance.cohort or not passed or pods.ready == 0 or split is None:
        return False
    if st.analysis_started_at is not None:
        return True
    return pods.ready >= split.goal and not _frozen(st, stance)


def cohort_routed(status: api_status.ModelDeploymentStatus, stance: steps.Stance | None, ready: int) -> bool:
    """The A/B cohort is routed to the challenger (for the traffic a decision asks for)."""
    return stance is not None and stance.cohort and status.analysis_started_at is not None and ready > 0


def _weight(ctx: turns.Context, turn: turns.Turn, stance: steps.Stance, pods: observation.Pods, passed: bool) -> int:
    """The canary weight: never on a track without ready pods, never up before the pods are ready."""
    st, split = turn.status, turn.split
    if stance.track is not Track.CANARY or not passed or pods.ready == 0 or split is None:
        return 0
    serving = st.canary_weight or 0
    stable_ready = min(ctx.seen.pods(st.stable_revision).ready, split.stable)  # after this decision's scale-down
    if ctx.by_ratio:
        weight = replicas.effective_weight(stable_ready, pods.ready)
    elif stance.promoting:  # traffic follows the ready pods, and keeps what they already carried
        carried = min(serving, 100 * pods.ready // ctx.spec.replicas)
        weight = max(carried, replicas.effective_weight(stable_ready, pods.ready))
    else:
        weight = stance.weight if pods.ready >= split.goal else min(serving, stance.weight)
    if _frozen(st, stance):
        weight = min(weight, serving)
    return 100 if stable_ready == 0 else weight


def _mirror(turn: turns.Turn, stance: steps.Stance, pods: observation.Pods, passed: bool) -> int:
    st, split = turn.status, turn.split
    if stance.mirror == 0 or not passed or pods.ready == 0 or split is None:
        return 0
    mirror = stance.mirror if pods.ready >= split.goal else min(st.mirror_percent or 0, stance.mirror)
    return min(mirror, st.mirror_percent or 0) if _frozen(st, stance) else mirror


def _frozen(status: api_status.ModelDeploymentStatus, stance: steps.Stance) -> bool:
    """Traffic may go down but not up: paused, or the metrics cannot be read (a hold is a hold)."""
    unreadable = status.consecutive_errors > 0 and not (stance.promoting and _forced(status))
    return status.pause_reason in turns.STICKY or unreadable


def advance(ctx: turns.Context, turn: turns.Turn, stance: steps.Stance, pods: observation.Pods) -> turns.Turn:
    """End the step when it is done; after the last one, switch when the candidate is ready."""
    st = turn.status
    forced = stance.promoting and _forced(st)
    if turn.started or st.pause_reason in turns.STICKY or (st.consecutive_errors > 0 and not forced):
        return turn
    if stance.promoting:
        split = turn.split
        if split is None or split.goal < 1 or pods.ready < split.goal or not turns.smoke_passed(ctx, st):
            return turn
        return moves.promote(ctx, turn, stance)
    return moves.next_step(ctx, turn, stance, "") if _done(ctx, turn, stance, pods) else turn


def _done(ctx: turns.Context, turn: turns.Turn, stance: steps.Stance, pods: observation.Pods) -> bool:
    st, split, step = turn.status, turn.split, stance.step
    if split is None:
        return False
    match step:
        case steps.SetWeight(weight=weight) if ctx.by_ratio:
            stable_ready = ctx.seen.pods(st.stable_revision).ready
            return (
                pods.ready >= split.goal
                and stable_ready <= split.stable_goal
                and (weight == 0 or bool(st.canary_weight))
            )
        case steps.SetWeight(weight=weight):
            return pods.ready >= split.goal and (st.canary_weight or 0) >= weight
        case steps.Preview():
            return pods.ready >= split.goal
        case steps.Mirror(percent=percent):
            return (st.mirror_percent or 0) >= percent
        case steps.Cohort():
            return pods.ready >= split.goal and st.analysis_started_at is not None
        case steps.Pause(duration=span) if span is not None:
            end = steps.deadline(step, st.step_started_at)
            return end is not None and ctx.now >= end
        case steps.Analyze():
            return turn.passed
    return False


def _forced(status: api_status.ModelDeploymentStatus) -> bool:
    """A person promoted at the last step (promote or promote-full): unreadable metrics do not hold it."""
    ack, started = status.last_command, status.step_started_at
    return (
        ack is not None
        and ack.accepted
        and ack.verb in (commands.Verb.PROMOTE, commands.Verb.PROMOTE_FULL)
        and started is not None
        and ack.at >= started
    )


def pose(ctx: turns.Context, turn: turns.Turn) -> turns.Turn:
    """The pause reason a pause step gives, unless a sticky one holds."""
    st = turn.status
    if st.canary_revision is None or st.pause_reason in turns.STICKY:
        return turn
    step = turns.stance(ctx.spec, ctx.plan, st).step
    reason = None
    if isinstance(step, steps.Pause):
        reason = PauseReason.STEP if step.duration is not None else PauseReason.AWAITING_PROMOTION
    return turn.set(pause_reason=reason)


def verify(ctx: turns.Context, turn: turns.Turn) -> turns.Turn:
    """The post-promotion analysis of a blue-green switch: a failure switches back while the old pods run."""
    st = turn.status
    if not turns.verifying(st):
        return turn
    evidence = ctx.seen.evidence
    ended = turn.set(analysis_started_at=None, consecutive_errors=0)
    if turns.post_analysis(ctx.spec) is None or turns.retiring_stable(st) is None:
        why = "the old pods are gone: the post-promotion analysis ends without a verdict"
        return ended.note(WARNING, "AnalysisInconclusive", why)
    if evidence is None or evidence.window.candidate_revision != st.stable_revision or not _fresh_since(evidence, st):
        return turn
    if evidence.metrics:
        ended = ended.set(analysis=list(evidence.metrics)[:64])
    match evidence.verdict:
        case Verdict.FAIL if ctx.spec.rollback.automatic:
            return moves.switch_back(ctx, ended, Outcome.ROLLED_BACK, Reason.ANALYSIS_FAILED, failure(evidence))[0]
        case Verdict.FAIL:
            why = f"post-promotion analysis failed: {failure(evidence)}"
            return ended.note(WARNING, "AnalysisFailed", f"{why}; rollback.automatic is false: abort switches back")
        case Verdict.PASS:
            return ended.note(NORMAL, "AnalysisPassed", evidence.reason or "the post-promotion analysis passed")
        case Verdict.INCONCLUSIVE if evidence.window.final:
            why = f"post-promotion analysis: {evidence.reason or 'not enough evidence'}; keeping the new revision"
            return ended.note(WARNING, "AnalysisInconclusive", why)
        case Verdict.ERROR:  # counted, never acted on; the check ends when the old pods go
            turn = turn.set(consecutive_errors=st.consecutive_errors + 1)
            why = evidence.reason or "the metrics could not be read"
            return turn.note(WARNING, "AnalysisError", why) if st.consecutive_errors == 0 else turn
    return turn


def _fresh_since(evidence: observation.Evidence, status: api_status.ModelDeploymentStatus) -> bool:
    return evidence.window.since == status.analysis_started_at
