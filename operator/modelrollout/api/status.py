"""ModelDeploymentStatus: what the operator has done and seen, and all it needs to carry on.

The operator keeps no state of its own. After a restart, a move to another cluster or a
failover, it resumes from the object alone, so status records every fact the next decision
depends on: which step runs since when, how many analyses erred or could not decide, which
command was last handled, which revisions were rejected, and the stable revision itself.

WHERE THE STABLE TEMPLATE LIVES: once a rollout starts, spec holds the *new* model and pod
template; the old ones are needed to keep running, scale and, after an abort, restore the stable
pods. They are kept in `status.stableSpec` (model + pod template + revision hash), written when
a revision is promoted, and not only in the live stable Deployment: a Deployment can be deleted,
edited by hand or lost with a cluster, and the operator must be able to rebuild it from the
ModelDeployment alone (a backup of the object restores the rollout too). History entries keep
the same snapshot for revisions that were stable, which is what `undo` goes back to.

Lists are bounded (see each field); the operator trims the oldest entries to stay within them.
"""

from __future__ import annotations

import datetime
import enum
from typing import Any

import pydantic

from modelrollout.api import commands, labels, pods, spec, verdicts, wire


class Phase(enum.StrEnum):
    """Where a ModelDeployment stands.

    Pending: accepted, the first pods are not ready yet. Progressing: a rollout walks its steps.
    Paused: a rollout holds for a person (a pause step, a pause command, an inconclusive or, with
    rollback.automatic false, a failed analysis). Promoting: the new revision takes over all
    traffic and the old pods go. Succeeded: one revision serves everything and is healthy.
    RolledBack: the new revision failed or was aborted and the stable one serves everything; it
    is rejected until the spec changes or a retry. Degraded: something needs a person: an
    invalid spec the schema could not catch, a progress deadline passed, stable pods failing.
    """

    PENDING = "Pending"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    PROMOTING = "Promoting"
    SUCCEEDED = "Succeeded"
    ROLLED_BACK = "RolledBack"
    DEGRADED = "Degraded"


class ConditionType(enum.StrEnum):
    """The conditions the operator maintains.

    Ready, Progressing and Degraded follow Deployments and Argo Rollouts. Reconciling and Stalled
    are the two that kstatus reads (Flux, kpt, cli-utils): with observedGeneration current,
    Reconciling=True is InProgress, Stalled=True is Failed, and neither is Current.
    """

    READY = "Ready"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class PauseReason(enum.StrEnum):
    """Why a rollout is Paused, which says what ends the pause."""

    STEP = "Step"  # a pause step with a duration: ends by itself
    AWAITING_PROMOTION = "AwaitingPromotion"  # pause: {}, autoPromote false, shadow then Manual
    COMMAND = "Command"  # the pause command: ends on resume
    INCONCLUSIVE = "InconclusiveAnalysis"  # failureLimits.inconclusive exceeded: promote or abort
    FAILED_ANALYSIS = "FailedAnalysis"  # failed with rollback.automatic false: promote or abort
    SCALED_TO_ZERO = "ScaledToZero"  # spec.replicas 0: ends when it is scaled up again


class Outcome(enum.StrEnum):
    """How a revision's rollout ended."""

    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"
    ABORTED = "Aborted"
    SUPERSEDED = "Superseded"  # a newer revision started before this one finished


class Condition(wire.Record):
    """A standard Kubernetes condition (metav1.Condition)."""

    type: str = pydantic.Field(max_length=316)
    """Ready, Progressing, Degraded, Reconciling or Stalled."""

    status: ConditionStatus
    """True, False or Unknown."""

    reason: str = pydantic.Field(default="", max_length=1024)
    """A CamelCase reason, e.g. AnalysisFailed, ProgressDeadlineExceeded."""

    message: str = pydantic.Field(default="", max_length=32768)
    """Human-readable details."""

    last_transition_time: datetime.datetime
    """When status last changed."""

    observed_generation: int | None = None
    """The metadata.generation this condition was set for."""


class Interval(wire.Record):
    """A confidence interval for the canary's change relative to stable (ratio - 1)."""

    lower: float
    upper: float


class MetricResult(wire.Record):
    """The latest judgement of one metric, with the evidence behind it."""

    metric: str
    """The metric's name."""

    verdict: verdicts.Verdict
    """Pass, Fail, Inconclusive or Error."""

    stable: float | None = None
    """The stable revision's value over the analysis window."""

    canary: float | None = None
    """The new revision's value over the analysis window."""

    ratio: float | None = None
    """canary / stable."""

    interval: Interval | None = None
    """Confidence interval for the relative change; the margin is the metric's tolerance."""

    tolerance: float | None = None
    """The tolerated relative change in the worse direction."""

    e_value: float | None = None
    """Evidence against "no worse than tolerated" (anytime-valid); 1/alpha or more fails."""

    p_value: float | None = None
    """The anytime-valid p-value, min(1, 1/e-value)."""

    samples: int | None = None
    """Observations behind the verdict, both tracks together."""

    stable_samples: int | None = None
    """Observations of the stable revision."""

    canary_samples: int | None = None
    """Observations of the new revision."""

    dispersion: float | None = None
    """How many times more the counts vary than independent events would (bursts of errors); the
    evidence is divided by it."""

    pod_spread: float | None = None
    """Spread of the stable pods' log rates beyond chance; the tolerance is widened by it."""

    warning: str | None = pydantic.Field(default=None, max_length=512)
    """Something to fix although the test runs, e.g. buckets too coarse for the tolerance asked."""

    reason: str = pydantic.Field(default="", max_length=1024)
    """Why this verdict, in words: e.g. "canary error rate 0.031 > slo max 0.01"."""

    at: datetime.datetime
    """When the metric was last read."""


class RevisionSnapshot(wire.Record):
    """Everything needed to run a revision's pods again: its model and pod template."""

    revision: str = pydantic.Field(max_length=64)
    """The revision hash of model + template."""

    model: spec.Model
    """The model of this revision."""

    template: pods.PodTemplate
    """The pod template of this revision."""


class HistoryEntry(wire.Record):
    """One finished rollout."""

    revision: str = pydantic.Field(max_length=64)
    """The revision hash."""

    model: str = pydantic.Field(max_length=128)
    """The model version it served."""

    outcome: Outcome
    """Promoted, RolledBack, Aborted or Superseded."""

    reason: str = pydantic.Field(default="", max_length=1024)
    """Why, in words: the failed metric and its evidence, the command, ..."""

    started_at: datetime.datetime | None = None
    """When its rollout started."""

    at: datetime.datetime
    """When its rollout ended."""

    snapshot: RevisionSnapshot | None = None
    """Model and template, for revisions that were promoted (what undo goes back to)."""


class TrackReplicas(wire.Record):
    """Pods of one track."""

    revision: str | None = pydantic.Field(default=None, max_length=64)
    """The revision the track runs."""

    desired: int = 0
    """Pods asked for."""

    ready: int = 0
    """Pods ready."""


class Replicas(wire.Record):
    """Pods per track; the tracks a rollout does not use are absent."""

    stable: TrackReplicas | None = None
    canary: TrackReplicas | None = None
    preview: TrackReplicas | None = None
    shadow: TrackReplicas | None = None

    def of(self, track: labels.Track) -> TrackReplicas | None:
        found: TrackReplicas | None = getattr(self, track.value)
        return found


class SmokeResult(wire.Record):
    """The smoke test's outcome for a revision, so that it is not sent again after a restart."""

    revision: str = pydantic.Field(max_length=64)
    passed: bool
    message: str = pydantic.Field(default="", max_length=1024)
    at: datetime.datetime


class CommandAck(wire.Record):
    """The last command the operator handled; a command with the same id is not handled again."""

    id: str = pydantic.Field(max_length=128)
    """The command's id."""

    verb: commands.Verb
    """What it asked for."""

    accepted: bool
    """Whether it was carried out."""

    message: str = pydantic.Field(default="", max_length=1024)
    """What was done, or why not."""

    at: datetime.datetime
    """When it was handled."""


class ScaleDown(wire.Record):
    """Pods that keep running for a while after they stopped serving (scaleDownDelay)."""

    revision: str = pydantic.Field(max_length=64)
    track: labels.Track
    after: datetime.datetime
    """When they may go."""


class ModelDeploymentStatus(wire.Record):
    """What the operator did and saw; enough to resume after a restart."""

    observed_generation: int | None = None
    """The metadata.generation the status reflects."""

    phase: Phase | None = None
    """Pending, Progressing, Paused, Promoting, Succeeded, RolledBack or Degraded."""

    message: str | None = pydantic.Field(default=None, max_length=4096)
    """What is happening, in one line."""

    stable_revision: str | None = pydantic.Field(default=None, max_length=64)
    """The revision serving when no rollout runs."""

    canary_revision: str | None = pydantic.Field(default=None, max_length=64)
    """The revision being rolled out (canary, preview or shadow); absent when none is."""

    stable_spec: RevisionSnapshot | None = None
    """Model and template of the stable revision: spec holds the new ones during a rollout."""

    current_step: int | None = pydantic.Field(default=None, ge=0)
    """Index of the step in progress in the strategy's plan."""

    step_started_at: datetime.datetime | None = None
    """When the current step started."""

    rollout_started_at: datetime.datetime | None = None
    """When the current rollout started."""

    canary_weight: int | None = pydantic.Field(default=None, ge=0, le=100)
    """Percentage of requests the new revision answers."""

    mirror_percent: int | None = pydantic.Field(default=None, ge=0, le=100)
    """Percentage of requests copied to the new revision (shadow)."""

    pause_reason: PauseReason | None = None
    """Why the rollout is Paused."""

    paused_at: datetime.datetime | None = None
    """When the pause began (a resumed step gets its remaining time back)."""

    analysis_started_at: datetime.datetime | None = None
    """Start of the current analysis window; the judges read everything since."""

    analysis_accepted: list[str] = pydantic.Field(default_factory=list, max_length=64)
    """Tests whose failure a person accepted by promoting past it: for the rest of this analysis phase
    they are reported but decide nothing (no new evidence or alpha is spent on them)."""

    consecutive_errors: int = pydantic.Field(default=0, ge=0)
    """Analysis intervals in a row in which a metric could not be read."""

    inconclusive_count: int = pydantic.Field(default=0, ge=0)
    """Times the current analysis was extended for lack of evidence."""

    smoke_test: SmokeResult | None = None
    """The smoke test's outcome for the canary revision."""

    conditions: list[Condition] = pydantic.Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """Ready, Progressing and Degraded."""

    analysis: list[MetricResult] = pydantic.Field(default_factory=list, max_length=64)
    """The latest judgement per metric of the analysis in progress or last finished."""

    history: list[HistoryEntry] = pydantic.Field(default_factory=list, max_length=50)
    """Finished rollouts, newest last; spec.revisionHistoryLimit long at most."""

    rejected_revisions: list[str] = pydantic.Field(default_factory=list, max_length=100)
    """Revisions that failed or were aborted: not rolled out again until a retry or a spec change."""

    tracks: Replicas | None = None
    """Pods per track: revision, desired and ready."""

    replicas: int | None = pydantic.Field(default=None, ge=0)
    """Pods answering user requests (stable and canary; not preview or shadow, which get none or
    copies): what the scale subresource reports to kubectl scale and a HorizontalPodAutoscaler."""

    selector: str | None = pydantic.Field(default=None, max_length=1024)
    """The label selector of the ModelDeployment's pods, for the scale subresource."""

    @pydantic.model_validator(mode="before")
    @classmethod
    def _tracks_from_before_the_scale_subresource(cls, data: Any) -> Any:
        """Status written before 0.2 kept the pods per track under `replicas`."""
        if isinstance(data, dict) and isinstance(data.get("replicas"), dict):
            data = dict(data)
            data.setdefault("tracks", data.pop("replicas"))
        return data

    scale_downs: list[ScaleDown] = pydantic.Field(default_factory=list, max_length=8)
    """Old pods waiting out their scale-down delay."""

    last_command: CommandAck | None = None
    """The last command handled (see the modelrollout.io/command annotation)."""

    def condition(self, kind: ConditionType) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind.value), None)
