"""The one small state machine every strategy shares: which phase may follow which, and why.

The phase is a summary for people and tools (kubectl get, Argo CD's health check); the facts
behind it are the other status fields. `progression` derives the phase from them at the end of
every tick and checks the move against `TRANSITIONS` (a property test drives it with random
observations to show it never leaves the table). Staying in a phase is always allowed. `None`
stands for a ModelDeployment with no status yet.
"""

from __future__ import annotations

from collections.abc import Mapping

from modelrollout.api.status import Phase

_P = Phase

TRANSITIONS: Mapping[tuple[Phase | None, Phase], str] = {
    (None, _P.PENDING): "a new ModelDeployment deploys its first version",
    (None, _P.DEGRADED): "a new ModelDeployment whose spec cannot be acted on",
    (_P.PENDING, _P.SUCCEEDED): "the first version is ready: nothing to compare it with",
    (_P.PENDING, _P.DEGRADED): "the spec cannot be acted on, or the first pods fail past the progress deadline",
    (_P.SUCCEEDED, _P.PROGRESSING): "a new revision (or a retry, or an undo) starts a rollout",
    (_P.SUCCEEDED, _P.PAUSED): "a rollout starts whose first step is a pause",
    (_P.SUCCEEDED, _P.ROLLED_BACK): "abort or undo during the blue-green scale-down delay switches back at once",
    (_P.SUCCEEDED, _P.DEGRADED): "the spec cannot be acted on, or the stable pods fail",
    (_P.PROGRESSING, _P.PAUSED): "a pause step, a pause command, or an analysis that needs a person",
    (_P.PROGRESSING, _P.PROMOTING): "the last step is done (or promote-full): the candidate takes over",
    (_P.PROGRESSING, _P.ROLLED_BACK): "a failed analysis, smoke test or progress deadline, or abort",
    (_P.PROGRESSING, _P.SUCCEEDED): "the spec went back to the stable revision, or promote ended the last step",
    (_P.PROGRESSING, _P.DEGRADED): "the spec cannot be acted on",
    (_P.PAUSED, _P.PROGRESSING): "the pause ended: its time ran out, promote, resume, or metrics came back",
    (_P.PAUSED, _P.PROMOTING): "promote past the last step, or promote-full",
    (_P.PAUSED, _P.ROLLED_BACK): "abort, or the background analysis failed during the pause",
    (_P.PAUSED, _P.SUCCEEDED): "the spec went back to the stable revision, or promote ended the last pause",
    (_P.PAUSED, _P.DEGRADED): "the spec cannot be acted on",
    (_P.PROMOTING, _P.SUCCEEDED): "the switch: the candidate is the stable revision now",
    (_P.PROMOTING, _P.ROLLED_BACK): "abort, or the analysis failed before the switch",
    (_P.PROMOTING, _P.PAUSED): "a pause command, or the metrics stayed unreadable",
    (_P.PROMOTING, _P.PROGRESSING): "a newer revision supersedes the candidate and starts from the first step",
    (_P.PROMOTING, _P.DEGRADED): "the spec cannot be acted on",
    (_P.ROLLED_BACK, _P.PROGRESSING): "a new revision, or retry of the rejected one, starts a rollout",
    (_P.ROLLED_BACK, _P.PAUSED): "a rollout starts whose first step is a pause",
    (_P.ROLLED_BACK, _P.SUCCEEDED): "the spec went back to the stable revision",
    (_P.ROLLED_BACK, _P.DEGRADED): "the spec cannot be acted on, or the stable pods fail",
    (_P.DEGRADED, _P.PENDING): "the problem is gone and the first version is still deploying",
    (_P.DEGRADED, _P.PROGRESSING): "the problem is gone and the rollout carries on",
    (_P.DEGRADED, _P.PAUSED): "the problem is gone and the rollout was paused",
    (_P.DEGRADED, _P.PROMOTING): "the problem is gone and the promotion carries on",
    (_P.DEGRADED, _P.SUCCEEDED): "the problem is gone and one revision serves",
    (_P.DEGRADED, _P.ROLLED_BACK): "the problem is gone; the last rollout had been rolled back",
}


def allowed(before: Phase | None, after: Phase) -> bool:
    """Whether a tick may move from `before` to `after`.

        allowed(Phase.PROGRESSING, Phase.PAUSED)  -> True
        allowed(Phase.SUCCEEDED, Phase.PROMOTING) -> False
        allowed(Phase.PAUSED, Phase.PAUSED)       -> True
    """
    return before is after or (before, after) in TRANSITIONS


def why(before: Phase | None, after: Phase) -> str:
    """The reason a transition is allowed, or a ValueError if it is not."""
    if before is after:
        return "no change"
    try:
        return TRANSITIONS[before, after]
    except KeyError:
        raise ValueError(f"phase {before} cannot become {after}") from None


def derive(
    *,
    candidate: bool,
    paused: bool,
    promoting: bool,
    deploying: bool,
    stuck: bool,
    rolled_back: bool,
) -> Phase:
    """The phase the status facts describe.

    `candidate`: a revision is being rolled out; `paused`: it holds for a pause reason;
    `promoting`: it is past its last step, or a blue-green switch is judged after the fact;
    `deploying`: the first version is not ready yet;
    `stuck`: ... past the progress deadline; `rolled_back`: the last rollout ended in a rollback
    and the spec still asks for the rejected revision.

        derive(candidate=True, paused=False, promoting=True, ...)    -> Phase.PROMOTING
        derive(candidate=False, deploying=True, stuck=False, ...)    -> Phase.PENDING
        derive(candidate=False, rolled_back=True, ...)               -> Phase.ROLLED_BACK
    """
    if candidate:
        return Phase.PAUSED if paused else Phase.PROMOTING if promoting else Phase.PROGRESSING
    if promoting:
        return Phase.PROMOTING
    if deploying:
        return Phase.DEGRADED if stuck else Phase.PENDING
    return Phase.ROLLED_BACK if rolled_back else Phase.SUCCEEDED
