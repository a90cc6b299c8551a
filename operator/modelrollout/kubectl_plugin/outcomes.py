"""When `kubectl modelrollout status NAME --timeout D` stops waiting, and the exit code it gives.

A CI pipeline applies a new version and waits for the verdict, so the answer must not come from a
status the operator wrote before it saw the change: nothing is final while status.observedGeneration
is behind metadata.generation (as kstatus and `kubectl wait` read it).

    Succeeded                                   -> 0
    RolledBack, Degraded, or Stalled=True       -> 1 (a paused failed analysis needs a person)
    anything else, or an older generation       -> not yet; 2 if the timeout passes first
"""

from __future__ import annotations

import enum

from modelrollout.api import resources, status


class Exit(enum.IntEnum):
    SUCCEEDED = 0
    FAILED = 1
    TIMEOUT = 2


def finished(md: resources.ModelDeployment) -> Exit | None:
    """The exit code if the rollout has ended for the current spec, else None."""
    s = md.status
    generation = md.metadata.generation
    if generation is not None and (s.observed_generation is None or s.observed_generation < generation):
        return None
    if s.phase is status.Phase.SUCCEEDED:
        return Exit.SUCCEEDED
    if s.phase in (status.Phase.ROLLED_BACK, status.Phase.DEGRADED):
        return Exit.FAILED
    stalled = s.condition(status.ConditionType.STALLED)
    if stalled is not None and stalled.status is status.ConditionStatus.TRUE:
        return Exit.FAILED
    return None
