"""What the decision core says the world should look like next; the handlers carry it out.

A Decision names revisions; each workload also carries the revision's snapshot (model and pod
template: the spec's for the newest, status.stableSpec or status.history for older ones), so
the handlers need not work out which template belongs to which revision. The
handlers apply a decision in a fixed, safe order (`sequencing`): traffic moves only to pods
that exist and leaves a revision before it goes, and the writes never ask for more pods than
`pod_budget`.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum

from modelrollout.api import labels, status, strategies


@dataclasses.dataclass(frozen=True)
class Workload:
    """One revision that should be running: its role and how many replicas it should have."""

    revision: str
    track: labels.Track
    replicas: int
    snapshot: status.RevisionSnapshot | None = None
    """The revision's model and pod template, to create or rebuild its Deployment from (the spec's,
    status.stableSpec, or a promoted revision in status.history). None only for a retiring
    revision whose template is no longer known: scale its Deployment, never create it."""

    until: datetime.datetime | None = None
    """Set on a revision that no longer serves and waits out a scale-down delay (status.scaleDowns):
    it gets no Service and no traffic, and goes at this time."""


@dataclasses.dataclass(frozen=True)
class TrafficSplit:
    """How user traffic is split between the stable and the new revision, and what is mirrored.

    `canary_weight` is the percentage of requests the new revision answers (0-100); the stable
    revision answers the rest. `mirror_percent` is the percentage of requests copied to the new
    revision, whose answers are dropped (shadow). With no new revision both are 0.

        TrafficSplit("5d8f9c", None, labels.Track.CANARY, 0, 0)          all to stable
        TrafficSplit("5d8f9c", "7b21aa", labels.Track.CANARY, 25, 0)     a quarter to the canary
        TrafficSplit("5d8f9c", "7b21aa", labels.Track.SHADOW, 0, 100)    a copy of everything

    `cohort` (an A/B test) sends every request that matches one of its rules to the new revision,
    before any weight applies; the rest is split by `canary_weight` (0 in an A/B test: unmatched
    requests stay with stable).

        TrafficSplit("5d8f9c", "7b21aa", labels.Track.CANARY, 0, 0, cohort=(x-cohort: b,))
    """

    stable_revision: str
    candidate_revision: str | None
    candidate_track: labels.Track
    canary_weight: int
    mirror_percent: int
    cohort: tuple[strategies.CohortMatch, ...] = ()

    def __post_init__(self) -> None:
        if not (0 <= self.canary_weight <= 100 and 0 <= self.mirror_percent <= 100):
            raise ValueError(f"weights out of range: {self}")
        if self.candidate_revision is None and (self.canary_weight or self.mirror_percent):
            raise ValueError("traffic to a candidate that does not exist")
        if self.cohort and (self.candidate_revision is None or self.candidate_track is not labels.Track.CANARY):
            raise ValueError("a cohort goes to a candidate on the canary track")

    @classmethod
    def all_stable(cls, stable_revision: str) -> TrafficSplit:
        return cls(stable_revision, None, labels.Track.CANARY, 0, 0)


class EventType(str, enum.Enum):
    NORMAL = "Normal"
    WARNING = "Warning"


@dataclasses.dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the ModelDeployment."""

    type: EventType
    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class AnalysisWindow:
    """Asks the handlers to judge `candidate` against `stable` on data from `since` on.

    `since` is when traffic (weighted or mirrored) first reached the candidate on its current
    track, or when an analyze step began if it had none: the evidence carries across steps
    (the judges' tests are anytime-valid and spend alpha once per rollout) and restarts at a
    handover to another track. After a blue-green switch with a post-promotion analysis,
    `candidate_track` is STABLE: the new revision serves everything and is judged on its SLOs.

    `final` marks the last look of an `analyze` step: a result that is still inconclusive then
    is settled by the analysis settings' limits instead of waiting for more data. A PASS before
    the final look does not end the step (a step lasts at least its duration); a FAIL at any
    look rolls back.
    """

    stable_revision: str
    candidate_revision: str
    candidate_track: labels.Track
    since: datetime.datetime
    final: bool = False
    alpha_share: float = 1.0
    """This phase's share of the rollout's alpha (`turns.alpha_share`): the tests run at alpha times it."""
    accepted: frozenset[str] = frozenset()
    """Tests whose failure a person accepted (status.analysisAccepted): reported, never deciding."""


@dataclasses.dataclass(frozen=True)
class Decision:
    """The whole of what should happen now for one ModelDeployment."""

    workloads: tuple[Workload, ...]
    """Every revision that should exist, with its replicas; a revision not listed is removed."""

    traffic: TrafficSplit
    """The split the traffic provider should hold."""

    status: status.ModelDeploymentStatus
    """The status to write."""

    events: tuple[Event, ...] = ()
    smoke_test: str | None = None
    """A revision to smoke-test before it gets any traffic; the result arrives in the next observation."""

    analysis: AnalysisWindow | None = None
    """What the next tick should judge; None when no analysis runs."""

    requeue_after: datetime.timedelta = datetime.timedelta(seconds=5)
    """When the next tick should come, at the latest."""

    pod_budget: int | None = None
    """Pods of every revision together the cluster may be asked for while this decision is
    applied (the GPU budget, `capacity.Budget.cap`); None when GPUs are not counted."""
