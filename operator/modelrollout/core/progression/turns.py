"""What every stage of a tick works with: the facts of the tick (`Context`), the status being
written (`Turn`), the plan of each strategy, and the questions about the status several stages ask.

A `Turn` is immutable: each stage returns a new one, with the status fields it changed, the
events it posted and what it found out (a hold, a passed analysis, a rollback's condition), so
the stages compose as plain functions and none of them hides state.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Mapping

from modelrollout.api import analyses, durations, labels, strategies
from modelrollout.api import spec as api_spec
from modelrollout.api import status as api_status
from modelrollout.core import capacity, conditions, decision, observation, replicas, revisions, steps
from modelrollout.core.strategies import ab_test, blue_green, canary, shadow

PauseReason = api_status.PauseReason
Track = labels.Track
Wanted = conditions.Wanted


DEFAULT_INTERVAL = datetime.timedelta(seconds=30)
"""The tick interval when spec.analysis is absent."""

POLL = datetime.timedelta(seconds=5)
"""The tick interval while pods, capacity, a smoke test or the switch are awaited."""

MIN_REQUEUE = datetime.timedelta(seconds=1)
"""The shortest requeue, for deadlines that have already passed."""

REJECTED_LIMIT = 100
SCALE_DOWN_LIMIT = 8
"""The bounds of status.rejectedRevisions and status.scaleDowns; the oldest entries go first."""

STICKY = frozenset({PauseReason.COMMAND, PauseReason.INCONCLUSIVE, PauseReason.FAILED_ANALYSIS})
"""Pauses that last until something ends them; Step and AwaitingPromotion follow the current step."""

IDLE: Mapping[str, object] = {  # the rollout fields of a ModelDeployment with no rollout
    "canary_revision": None,
    "current_step": None,
    "step_started_at": None,
    "rollout_started_at": None,
    "canary_weight": 0,
    "mirror_percent": 0,
    "pause_reason": None,
    "paused_at": None,
    "analysis_started_at": None,
    "analysis_accepted": [],
    "consecutive_errors": 0,
    "inconclusive_count": 0,
}


def _canary_plan(spec: api_spec.ModelDeploymentSpec) -> steps.Plan:
    if spec.strategy.canary is None:
        raise ValueError("spec.strategy.canary is missing")
    return canary.plan(spec.strategy.canary)


def _blue_green_plan(spec: api_spec.ModelDeploymentSpec) -> steps.Plan:
    if spec.strategy.blue_green is None:
        raise ValueError("spec.strategy.blueGreen is missing")
    return blue_green.plan(spec.strategy.blue_green, spec.preview_replicas(), spec.traffic.provider.can_mirror)


def _shadow_plan(spec: api_spec.ModelDeploymentSpec) -> steps.Plan:
    if spec.strategy.shadow is None:
        raise ValueError("spec.strategy.shadow is missing")
    then = spec.strategy.after_shadow
    return shadow.plan(spec.strategy.shadow, spec.shadow_replicas()) + (PLANS[then](spec) if then else ())


def _ab_test_plan(spec: api_spec.ModelDeploymentSpec) -> steps.Plan:
    if spec.strategy.ab_test is None:
        raise ValueError("spec.strategy.abTest is missing")
    return ab_test.plan(spec.strategy.ab_test, spec.ab_test_replicas())


PLANS: Mapping[strategies.StrategyType, Callable[[api_spec.ModelDeploymentSpec], steps.Plan]] = {
    strategies.StrategyType.CANARY: _canary_plan,
    strategies.StrategyType.BLUE_GREEN: _blue_green_plan,
    strategies.StrategyType.SHADOW: _shadow_plan,
    strategies.StrategyType.AB_TEST: _ab_test_plan,
}


def plan(spec: api_spec.ModelDeploymentSpec) -> steps.Plan:
    """The steps a new revision walks for this spec; ValueError if the spec lacks its section."""
    return PLANS[spec.strategy.type](spec)


@dataclasses.dataclass(frozen=True)
class Context:
    """The facts of one tick, which no stage changes."""

    spec: api_spec.ModelDeploymentSpec
    seen: observation.Observation
    revision: str
    """The revision the spec asks for."""
    plan: steps.Plan
    budget: capacity.Budget
    interval: datetime.timedelta

    @property
    def now(self) -> datetime.datetime:
        return self.seen.now

    @property
    def by_ratio(self) -> bool:
        return not self.spec.traffic.provider.can_mirror


@dataclasses.dataclass(frozen=True)
class Turn:
    """The status being written and what this tick found out on the way."""

    status: api_status.ModelDeploymentStatus
    events: tuple[decision.Event, ...] = ()
    split: replicas.Split | None = None
    """Pods of the stable and the candidate while a rollout runs."""
    stable_fit: int | None = None
    """Pods of the stable when serving, if the pool holds fewer than spec.replicas."""
    smoke: str | None = None
    """A revision to smoke-test."""
    hold: str | None = None
    """Why the step waits, in words."""
    capacity: bool = False
    """The wait is for GPUs or nodes."""
    passed: bool = False
    """The analyze step's verdict is PASS."""
    started: bool = False
    """A rollout started this tick: it only starts (no step ends in the tick that began it)."""
    degraded: Wanted | None = None
    """The Degraded condition a rollback of this tick sets."""

    def set(self, **fields: object) -> Turn:
        return dataclasses.replace(self, status=self.status.model_copy(update=fields))

    def but(self, **fields: object) -> Turn:
        return dataclasses.replace(self, **fields)  # type: ignore[arg-type]

    def note(self, kind: decision.EventType, reason: str, message: str) -> Turn:
        return dataclasses.replace(self, events=(*self.events, decision.Event(kind, reason, message)))


Reply = tuple[Turn, bool, str]
"""What a command handler answers: the turn, whether the command was carried out, and why."""


def context(spec: api_spec.ModelDeploymentSpec, seen: observation.Observation) -> Context:
    interval = durations.parse_duration(spec.analysis.interval) if spec.analysis else DEFAULT_INTERVAL
    return Context(spec, seen, revisions.of_spec(spec), plan(spec), capacity.budget(spec, seen.pool), interval)


def fitted(ctx: Context, status: api_status.ModelDeploymentStatus) -> tuple[Context, int | None]:
    """Mid-rollout, a spec.replicas the GPU pool cannot hold is carried out as far as it fits: the
    rollout goes on as if spec.replicas were the pods the pool holds for it (those it runs and the
    free GPUs), rather than leave the rest Pending. Returns the context to decide with, and the
    asked-for replicas when they were cut (None when they fit)."""
    pool, budget, asked = ctx.seen.pool, ctx.budget, ctx.spec.replicas
    if status.canary_revision is None or not budget.counted or pool is None or asked == 0:
        return ctx, None
    fits = (pool.held + pool.free) // budget.per_pod
    if fits >= asked:
        return ctx, None
    return context(ctx.spec.model_copy(update={"replicas": max(1, fits)}), ctx.seen), asked


def stance(
    spec: api_spec.ModelDeploymentSpec, plan: steps.Plan, status: api_status.ModelDeploymentStatus
) -> steps.Stance:
    """The stance of the current step."""
    return at(spec, plan, step_index(plan, status))


def step_index(plan: steps.Plan, status: api_status.ModelDeploymentStatus) -> int:
    """status.currentStep, or the last step of a plan that was shortened since (never a promotion
    the spec did not lead to)."""
    index = status.current_step or 0
    return index if index <= len(plan) else len(plan) - 1


def at(spec: api_spec.ModelDeploymentSpec, plan: steps.Plan, index: int) -> steps.Stance:
    """The stance of step `index`. A preview or shadow that cannot grow to spec.replicas beside the
    stable pods within gpuPool.maxExtraGPUs is promoted like a canary: the stable pods make room
    as the new ones become ready and traffic follows the ready pods, rather than one switch onto
    fewer pods than the stable had (a capacity dip for as long as a model takes to load)."""
    found = steps.stance(plan, index)
    if found.promoting and found.track is not Track.CANARY and _rolls(spec):
        return dataclasses.replace(found, track=Track.CANARY, replicas=None)
    return found


def _rolls(spec: api_spec.ModelDeploymentSpec) -> bool:
    per_pod, section = spec.gpus_per_pod(), spec.gpu_pool
    if section is None or per_pod <= 0:
        return False
    return section.max_extra_gpus // per_pod < spec.replicas


def post_analysis(spec: api_spec.ModelDeploymentSpec) -> strategies.AnalyzeSpec | None:
    section = spec.strategy.blue_green
    return section.post_promotion_analysis if section is not None else None


def verifying(status: api_status.ModelDeploymentStatus) -> bool:
    """A blue-green switch is being judged after the fact (post-promotion analysis)."""
    return status.canary_revision is None and status.analysis_started_at is not None


def deploying_first(status: api_status.ModelDeploymentStatus) -> bool:
    """The first version is not ready yet: rolloutStartedAt without a canary revision."""
    return (
        status.stable_revision is not None and status.canary_revision is None and status.rollout_started_at is not None
    )


def limits(ctx: Context) -> tuple[int, int]:
    """(consecutive errors, inconclusive extensions) allowed."""
    section = ctx.spec.analysis
    found = section.failure_limits if section is not None else analyses.FailureLimits()
    return found.consecutive_errors, found.inconclusive


def metrics_down(ctx: Context, status: api_status.ModelDeploymentStatus) -> bool:
    """Paused because the metrics stayed unreadable past the limit."""
    return status.pause_reason is PauseReason.INCONCLUSIVE and status.consecutive_errors > limits(ctx)[0]


def smoke_passed(ctx: Context, status: api_status.ModelDeploymentStatus) -> bool:
    result = status.smoke_test
    return ctx.spec.smoke_test is None or (
        result is not None and result.revision == status.canary_revision and result.passed
    )


def retiring_stable(status: api_status.ModelDeploymentStatus) -> str | None:
    """The former stable revision still running out its blue-green scale-down delay (not one that
    was itself switched away from for failing)."""
    found = [
        item.revision
        for item in status.scale_downs
        if item.track is Track.STABLE and item.revision not in status.rejected_revisions
    ]
    return found[-1] if found else None


def window(
    spec: api_spec.ModelDeploymentSpec, status: api_status.ModelDeploymentStatus, at: datetime.datetime
) -> decision.AnalysisWindow | None:
    """The analysis window to judge at `at`, from the status alone (what a decision asks for, and
    what the handlers judge after a restart, when the last decision is gone)."""
    candidate, stable, since = status.canary_revision, status.stable_revision, status.analysis_started_at
    if spec.analysis is None or stable is None or since is None or spec.replicas == 0:
        return None  # scaled to zero, no pod answers: nothing to judge
    if candidate is None:
        check, old = post_analysis(spec), retiring_stable(status)
        if check is None or old is None:
            return None
        final = at >= since + durations.parse_duration(check.duration)
        return decision.AnalysisWindow(old, stable, Track.STABLE, since, final=final, alpha_share=alpha_share(spec),
                                       accepted=frozenset(status.analysis_accepted))
    try:
        here = stance(spec, plan(spec), status)
    except ValueError:
        return None
    end = steps.deadline(here.step, status.step_started_at, status.inconclusive_count)
    final = isinstance(here.step, steps.Analyze) and end is not None and at >= end
    return decision.AnalysisWindow(stable, candidate, here.track, since, final=final,
                                   alpha_share=alpha_share(spec), accepted=frozenset(status.analysis_accepted))


def analysis_phases(spec: api_spec.ModelDeploymentSpec) -> tuple[str, ...]:
    """The phases a rollout of this spec judges with fresh evidence, in order: each track the plan
    sends traffic to (shadow, canary, preview), then the post-promotion analysis if there is one.

    analysis_phases(shadow then canary) -> ("shadow", "canary"); blue-green with post-promotion
    analysis -> ("preview", "post-promotion")
    """
    try:
        walked = plan(spec)
    except ValueError:
        return ()
    tracks: list[str] = []
    for index in range(len(walked)):
        here = at(spec, walked, index)
        if not here.promoting and here.track.value not in tracks:
            tracks.append(here.track.value)
    return (*tracks, *(("post-promotion",) if post_analysis(spec) is not None else ()))


def alpha_share(spec: api_spec.ModelDeploymentSpec) -> float:
    """Each phase's share of the rollout's alpha: spent once per rollout, split over its phases.

    A phase's tests start afresh (a new track, or the new revision alone after the switch), so
    their false-rollback chances add up; an equal split keeps the sum within alpha whichever
    phases run, and across restarts, since it follows from the spec alone."""
    return 1.0 / max(1, len(analysis_phases(spec)))
