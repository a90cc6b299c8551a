"""What the handlers saw in the cluster and in Prometheus this tick: the decision core's only input
besides the spec and the status.

The handlers fill an `Observation` from the Kubernetes API (pods per revision, the GPU pool),
from the smoke test and the analysis the previous decision asked for, and from the command
annotation; they never interpret it. Everything here is a plain fact with no judgement attached
(a crash-looping pod is counted, not called a failure), so that the rules about what a fact
means live in one place, `progression`.

Contract with the handlers:

* `revisions` counts the pods of every revision of this ModelDeployment that has a Deployment,
  keyed by revision; a revision with no Deployment may be left out (read as all zeros).
* `pool` is set whenever spec.gpuPool is; `held` are the GPUs this ModelDeployment's *scheduled*
  pods request, so the core can tell the room its own pods take from the room others take.
* `smoke_test` is the result of the smoke test the previous decision asked for (if any).
* `evidence` is the judgement of the analysis window the previous decision asked for (if any);
  after a restart, when no previous decision is at hand, the window comes from
  `progression.window(spec, status, now)`. When a window was asked for, the evidence must come,
  with Verdict.ERROR if the metrics could not be read: an ERROR holds the rollout, nothing
  else does.
* `command` is a command whose id differs from status.lastCommand.id (the core checks again);
  `command_error` the parse error of an annotation value, given once per new value.
* `spec_problem` is a problem with the spec the schema could not catch (e.g. the API server
  refused the Deployment built from the template): the ModelDeployment becomes Degraded with it.
* `route_problem` is why the traffic provider's controller does not carry the split (an HTTPRoute
  its Gateway did not accept): the ModelDeployment holds, Degraded, until it does.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence

from modelrollout.api import commands, verdicts
from modelrollout.api import status as api_status
from modelrollout.core import decision


@dataclasses.dataclass(frozen=True)
class Pods:
    """The pods of one revision."""

    desired: int = 0
    """The Deployment's spec.replicas."""

    ready: int = 0
    """Pods ready (passing their readiness probe)."""

    unschedulable: int = 0
    """Pods Pending because no node has room (the scheduler's Unschedulable condition): capacity."""

    crashing: int = 0
    """Pods not ready that have restarted (CrashLoopBackOff, OOMKilled, failing probes)."""

    restarts: int = 0
    """Container restarts summed over the revision's pods."""

    waiting: str = ""
    """The kubelet's reason a not-ready pod's container waits (ErrImageNeverPull, CrashLoopBackOff)."""


NO_PODS = Pods()


@dataclasses.dataclass(frozen=True)
class Pool:
    """The GPU pool of spec.gpuPool, counted in units of gpuPool.resource."""

    allocatable: int
    """Allocatable units on the pool's nodes."""

    requested: int
    """Units requested by every scheduled pod on those nodes, ours and others'."""

    held: int = 0
    """Units requested by this ModelDeployment's scheduled pods (part of `requested`)."""

    name: str | None = None
    """How to name the pool in messages; default the values of gpuPool.nodeSelector."""

    @property
    def free(self) -> int:
        return max(0, self.allocatable - self.requested)


@dataclasses.dataclass(frozen=True)
class Evidence:
    """The analysis result for one window: the combined verdict and the per-metric judgements."""

    window: decision.AnalysisWindow
    """The window that was judged (as the decision asked for it); stale windows are ignored."""

    verdict: verdicts.Verdict
    """The combined verdict (worst wins): PASS, FAIL, INCONCLUSIVE or ERROR."""

    metrics: Sequence[api_status.MetricResult] = ()
    """The per-metric judgements, written to status.analysis."""

    reason: str = ""
    """The verdict in words, e.g. "error-rate: canary 0.031 > slo max 0.01"."""

    goal: verdicts.Verdict | None = None
    """An A/B test's goal: PASS a win, FAIL a loss, INCONCLUSIVE undecided, ERROR unreadable; None
    outside A/B tests. `verdict` then combines the guardrails (every other metric) only."""

    goal_reason: str = ""
    """The goal's verdict in words, with the estimated effect and its confidence interval."""


@dataclasses.dataclass(frozen=True)
class Observation:
    """Everything the handlers saw this tick."""

    now: datetime.datetime
    """The time of the tick (timezone-aware); the core reads no clock."""

    generation: int
    """metadata.generation of the ModelDeployment."""

    revisions: Mapping[str, Pods] = dataclasses.field(default_factory=dict)
    """Pods per revision."""

    pool: Pool | None = None
    """The GPU pool, when spec.gpuPool is set."""

    smoke_test: api_status.SmokeResult | None = None
    """The smoke test result, when the previous decision asked for one."""

    evidence: Evidence | None = None
    """The analysis result, when the previous decision asked for a window."""

    command: commands.Command | None = None
    """A command not handled yet."""

    command_error: str | None = None
    """Why the command annotation could not be parsed."""

    spec_problem: str | None = None
    """A problem with the spec the schema could not catch."""

    route_problem: str | None = None
    """Why the traffic provider does not carry the split, as its controller says."""

    def pods(self, revision: str | None) -> Pods:
        """The pods of a revision; none for an unknown revision or None."""
        if revision is None:
            return NO_PODS
        return self.revisions.get(revision, NO_PODS)
