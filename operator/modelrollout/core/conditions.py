"""The Ready, Progressing, Degraded, Reconciling and Stalled conditions, and their reasons.

Conditions are the machine-readable side of the phase (read by Argo CD's health check, kstatus
and `kubectl wait`): Ready says whether user traffic is served, Progressing whether a rollout
moves (and if not, why: a pause, missing GPUs), Degraded whether something needs a person (a
rollback, an invalid spec, metrics that cannot be read). Reconciling and Stalled say the same
in kstatus's words, so Flux, kpt and `kubectl wait --for=condition=Reconciling=False` agree on
"in progress" (a rollout walks its steps, waits for a person or for metrics that will come
back), "failed" (rolled back, Degraded, paused on a failed or inconclusive analysis) and "done"
(neither). `merge` keeps each
condition's lastTransitionTime unless its status changes, as Kubernetes conventions ask, so a
reason or message update does not look like a transition.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import Mapping, Sequence

from modelrollout.api import status as api_status

Type = api_status.ConditionType
Status = api_status.ConditionStatus


class Reason(str, enum.Enum):
    """The CamelCase reasons the operator writes."""

    # Ready
    SERVING = "Serving"
    DEPLOYING = "Deploying"
    NO_READY_PODS = "NoReadyPods"
    # Progressing
    ROLLOUT_IN_PROGRESS = "RolloutInProgress"
    WAITING_FOR_PODS = "WaitingForPods"
    INSUFFICIENT_CAPACITY = "InsufficientCapacity"
    PROMOTING = "Promoting"
    PAUSED = "Paused"
    ROLLOUT_COMPLETE = "RolloutComplete"
    ROLLED_BACK = "RolledBack"
    # Degraded
    AS_EXPECTED = "AsExpected"
    ANALYSIS_FAILED = "AnalysisFailed"
    ANALYSIS_INCONCLUSIVE = "AnalysisInconclusive"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    SMOKE_TEST_FAILED = "SmokeTestFailed"
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    ABORTED = "Aborted"
    UNDONE = "Undone"
    INVALID_SPEC = "InvalidSpec"
    ROUTE_NOT_ACCEPTED = "RouteNotAccepted"
    CHALLENGER_LOST = "ChallengerLost"
    UNDECIDED = "Undecided"


@dataclasses.dataclass(frozen=True)
class Wanted:
    """What one condition should say."""

    status: Status
    reason: Reason | str
    message: str = ""

    @classmethod
    def true(cls, reason: Reason | str, message: str = "") -> Wanted:
        return cls(Status.TRUE, reason, message)

    @classmethod
    def false(cls, reason: Reason | str, message: str = "") -> Wanted:
        return cls(Status.FALSE, reason, message)


def merge(
    previous: Sequence[api_status.Condition],
    wanted: Mapping[Type, Wanted],
    now: datetime.datetime,
    generation: int,
) -> list[api_status.Condition]:
    """The conditions to write: `wanted` ones, with the old transition time where the status held.

        previous Ready=True since 10:00, wanted Ready=True (new message)  -> Ready=True since 10:00
        previous Ready=True since 10:00, wanted Ready=False at 10:05       -> Ready=False since 10:05
        no previous Degraded, wanted Degraded=False at 10:05               -> Degraded=False since 10:05
    """
    before = {condition.type: condition for condition in previous}
    merged = []
    for kind, want in wanted.items():
        old = before.get(kind.value)
        since = old.last_transition_time if old is not None and old.status is want.status else now
        reason = want.reason.value if isinstance(want.reason, Reason) else want.reason
        merged.append(
            api_status.Condition(
                type=kind.value,
                status=want.status,
                reason=reason,
                message=want.message[:32768],
                last_transition_time=since,
                observed_generation=generation,
            )
        )
    known = {kind.value for kind in wanted}
    merged.extend(condition for condition in previous if condition.type not in known)
    return merged


def wanted_of(condition: api_status.Condition | None) -> Wanted | None:
    """A condition as it was written, to carry it over unchanged."""
    if condition is None:
        return None
    return Wanted(condition.status, condition.reason, condition.message)


@dataclasses.dataclass(frozen=True)
class Facts:
    """What the conditions are derived from, as the progression found it."""

    phase: api_status.Phase
    serving: bool
    """User traffic reaches ready pods."""
    detail: str = ""
    """The status message: what is going on, in one line."""
    pause_reason: api_status.PauseReason | None = None
    metrics_unavailable: bool = False
    """The pause is for metrics that could not be read."""
    hold: str | None = None
    """Why the current step waits."""
    capacity: bool = False
    """The wait is for GPUs or nodes."""
    degraded: Wanted | None = None
    """A Degraded condition decided this tick (a rollback, an invalid spec)."""
    previous_degraded: Wanted | None = None
    """The Degraded condition written before, carried over while the phase stays RolledBack."""


_PAUSES = {
    api_status.PauseReason.FAILED_ANALYSIS: Reason.ANALYSIS_FAILED,
    api_status.PauseReason.INCONCLUSIVE: Reason.ANALYSIS_INCONCLUSIVE,
}


def derive(facts: Facts) -> dict[Type, Wanted]:
    """Ready, Progressing, Degraded, Reconciling and Stalled for the facts of a tick.

        Progressing phase, a hold for GPUs  -> Progressing=True InsufficientCapacity, Degraded=False,
                                               Reconciling=True InsufficientCapacity
        Paused for FailedAnalysis           -> Progressing=False FailedAnalysis, Degraded=True AnalysisFailed,
                                               Stalled=True AnalysisFailed
        RolledBack                          -> Progressing=False RolledBack, Degraded as set by the rollback,
                                               Stalled as Degraded
    """
    progressing, degraded = _progressing(facts), _degraded(facts)
    return {Type.READY: _ready(facts), Type.PROGRESSING: progressing, Type.DEGRADED: degraded,
            **kstatus(facts.phase, progressing, degraded)}


def kstatus(phase: api_status.Phase, progressing: Wanted, degraded: Wanted) -> dict[Type, Wanted]:
    """Reconciling and Stalled from the phase and the other two conditions.

        Progressing, Progressing=True RolloutInProgress -> Reconciling=True RolloutInProgress, Stalled=False
        Paused AwaitingPromotion                        -> Reconciling=True AwaitingPromotion (a person is
                                                           part of the rollout: not done yet)
        Paused, Degraded=True MetricsUnavailable        -> Reconciling=True MetricsUnavailable (retried)
        Degraded, Degraded=True RouteNotAccepted        -> Reconciling=False, Stalled=True RouteNotAccepted
        Succeeded                                       -> Reconciling=False RolloutComplete, Stalled=False
    """
    phases = api_status.Phase
    metrics_down = degraded.status is Status.TRUE and _value(degraded.reason) == Reason.METRICS_UNAVAILABLE.value
    failed = degraded.status is Status.TRUE and not metrics_down
    if failed or phase in (phases.ROLLED_BACK, phases.DEGRADED):
        reason = degraded.reason if degraded.status is Status.TRUE else progressing.reason
        return {Type.RECONCILING: Wanted.false(progressing.reason, progressing.message),
                Type.STALLED: Wanted(Status.TRUE, reason, degraded.message or progressing.message)}
    stalled = Wanted.false(Reason.AS_EXPECTED)
    if phase is phases.SUCCEEDED:
        return {Type.RECONCILING: Wanted.false(Reason.ROLLOUT_COMPLETE, progressing.message), Type.STALLED: stalled}
    reason = Reason.METRICS_UNAVAILABLE if metrics_down else progressing.reason
    return {Type.RECONCILING: Wanted(Status.TRUE, reason, progressing.message), Type.STALLED: stalled}


def _value(reason: Reason | str) -> str:
    return reason.value if isinstance(reason, Reason) else reason


def _ready(facts: Facts) -> Wanted:
    if facts.phase is api_status.Phase.PENDING:
        return Wanted.false(Reason.DEPLOYING, facts.detail)
    if facts.serving:
        return Wanted.true(Reason.SERVING, facts.detail)
    return Wanted.false(Reason.NO_READY_PODS, "no ready pod receives the traffic")


def _progressing(facts: Facts) -> Wanted:
    phase = api_status.Phase
    match facts.phase:
        case phase.PENDING | phase.PROGRESSING | phase.PROMOTING:
            if facts.capacity:
                return Wanted.true(Reason.INSUFFICIENT_CAPACITY, facts.hold or facts.detail)
            if facts.hold:
                return Wanted.true(Reason.WAITING_FOR_PODS, facts.hold)
            busy = Reason.PROMOTING if facts.phase is phase.PROMOTING else Reason.ROLLOUT_IN_PROGRESS
            return Wanted.true(busy, facts.detail)
        case phase.PAUSED:
            if facts.pause_reason is api_status.PauseReason.STEP:
                return Wanted.true(Reason.ROLLOUT_IN_PROGRESS, facts.detail)
            reason = facts.pause_reason.value if facts.pause_reason else Reason.PAUSED
            return Wanted.false(Reason.METRICS_UNAVAILABLE if facts.metrics_unavailable else reason, facts.detail)
        case phase.ROLLED_BACK:
            return Wanted.false(Reason.ROLLED_BACK, facts.detail)
        case phase.DEGRADED:
            return Wanted.false(Reason.PROGRESS_DEADLINE_EXCEEDED, facts.detail)
    if facts.capacity:  # serving, and a scale-up waits for GPUs
        return Wanted.true(Reason.INSUFFICIENT_CAPACITY, facts.hold or facts.detail)
    return Wanted.false(Reason.ROLLOUT_COMPLETE, facts.detail)


def _degraded(facts: Facts) -> Wanted:
    phase = api_status.Phase
    if facts.degraded is not None:
        return facts.degraded
    if facts.phase is phase.ROLLED_BACK:
        return facts.previous_degraded or Wanted.true(Reason.ROLLED_BACK, facts.detail)
    if facts.phase is phase.PAUSED and facts.metrics_unavailable:
        return Wanted.true(Reason.METRICS_UNAVAILABLE, facts.detail)
    paused_for = _PAUSES.get(facts.pause_reason) if facts.pause_reason is not None else None
    if facts.phase is phase.PAUSED and paused_for is not None:
        return Wanted.true(paused_for, facts.detail)
    if facts.phase is phase.DEGRADED:
        return Wanted.true(Reason.PROGRESS_DEADLINE_EXCEEDED, facts.detail)
    return Wanted.false(Reason.AS_EXPECTED, "")
