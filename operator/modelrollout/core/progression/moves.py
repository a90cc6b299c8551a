"""The moves that change which revision plays which role: start a rollout, go to the next step,
promote, roll back, drop a candidate the spec moved away from, and switch back during a
blue-green scale-down delay. Each one writes history and posts an event.
"""

from __future__ import annotations

from modelrollout.api import durations, labels
from modelrollout.api import status as api_status
from modelrollout.core import conditions, decision, revisions, steps
from modelrollout.core.progression import turns

Outcome = api_status.Outcome
Track = labels.Track
Reason = conditions.Reason
Wanted = conditions.Wanted
NORMAL, WARNING = decision.EventType.NORMAL, decision.EventType.WARNING


def record(
    ctx: turns.Context,
    status: api_status.ModelDeploymentStatus,
    revision: str,
    outcome: api_status.Outcome,
    reason: str,
    snapshot: api_status.RevisionSnapshot | None = None,
) -> api_status.HistoryEntry:
    found = snapshot or revisions.find(revision, ctx.spec, status)
    started = status.rollout_started_at
    return revisions.entry(revision, found.model if found else None, outcome, reason, ctx.now, started, snapshot)


def history(
    ctx: turns.Context, status: api_status.ModelDeploymentStatus, entry: api_status.HistoryEntry
) -> list[api_status.HistoryEntry]:
    return revisions.appended(status.history, entry, ctx.spec.revision_history_limit)


def start(ctx: turns.Context, turn: turns.Turn, revision: str, why: str) -> turns.Turn:
    """Start rolling out `revision` from the first step (its retiring pods, if any, are reused)."""
    st = turn.status
    found = revisions.find(revision, ctx.spec, st)
    version = found.model.version if found else "unknown"
    turn = turn.set(
        **{
            **turns.IDLE,
            "canary_revision": revision,
            "current_step": 0,
            "step_started_at": ctx.now,
            "rollout_started_at": ctx.now,
        },
        analysis=[],
        smoke_test=st.smoke_test if _passed(st.smoke_test, revision) else None,
        scale_downs=[entry for entry in st.scale_downs if entry.revision != revision],
    )
    first = steps.describe(ctx.plan[0])
    return (
        turn.but(started=True)
        .note(NORMAL, "RolloutStarted", f"{why}: rolling out model {version} ({ctx.spec.strategy.type.value})")
        .note(NORMAL, "StepStarted", f"step 1/{len(ctx.plan)}: {first}")
    )


def _passed(result: api_status.SmokeResult | None, revision: str) -> bool:
    """A passed smoke test of `revision` is kept for its next rollout; a failed one is not (retry)."""
    return result is not None and result.revision == revision and result.passed


def drop(ctx: turns.Context, turn: turns.Turn, why: str) -> turns.Turn:
    """The spec moved away from the candidate: it goes at once, and the rollout ends."""
    st = turn.status
    candidate = st.canary_revision or ""
    entry = record(ctx, st, candidate, Outcome.SUPERSEDED, why)
    return turn.set(**turns.IDLE, history=history(ctx, st, entry)).note(
        NORMAL, "Superseded", f"revision {candidate} dropped: {why}"
    )


def next_step(
    ctx: turns.Context, turn: turns.Turn, stance: steps.Stance, why: str, index: int | None = None
) -> turns.Turn:
    """Go to step `index` (default the next one); a new track restarts traffic and evidence."""
    st = turn.status
    index = (st.current_step or 0) + 1 if index is None else index
    following = turns.at(ctx.spec, ctx.plan, index)
    fields: dict[str, object] = {"current_step": index, "step_started_at": ctx.now, "inconclusive_count": 0}
    if following.track is not stance.track:
        fields.update(canary_weight=0, mirror_percent=0, analysis_started_at=None, analysis_accepted=[])
        turn = turn.note(
            NORMAL, "Handover", f"the {stance.track.value} phase passed: continuing as {following.track.value}"
        )
    turn = turn.set(**fields)
    if following.promoting:
        return turn.note(NORMAL, "Promoting", f"all steps done{why}: revision {st.canary_revision} takes over")
    return turn.note(NORMAL, "StepStarted", f"step {index + 1}/{len(ctx.plan)}: {steps.describe(following.step)}{why}")


def promote(ctx: turns.Context, turn: turns.Turn, stance: steps.Stance) -> turns.Turn:
    """The switch: the candidate becomes the stable revision; the old one goes (after the blue-green delay)."""
    st = turn.status
    candidate, old = st.canary_revision or "", st.stable_revision or ""
    snapshot = revisions.find(candidate, ctx.spec, st)
    entry = record(ctx, st, candidate, Outcome.PROMOTED, f"promoted after {len(ctx.plan)} steps", snapshot)
    waiting = [item for item in st.scale_downs if item.revision not in (candidate, old)]
    section = ctx.spec.strategy.blue_green
    verify = None
    if stance.track is Track.PREVIEW and section is not None:
        after = ctx.now + durations.parse_duration(section.scale_down_delay)
        waiting.append(api_status.ScaleDown(revision=old, track=Track.STABLE, after=after))
        verify = ctx.now if section.post_promotion_analysis is not None and ctx.spec.analysis is not None else None
    turn = turn.set(
        **turns.IDLE,
        stable_revision=candidate,
        stable_spec=snapshot,
        history=history(ctx, st, entry),
        scale_downs=waiting,
    ).set(analysis_started_at=verify, analysis=[] if verify else st.analysis, analysis_accepted=[])
    return turn.note(NORMAL, "Promoted", f"revision {candidate} serves all traffic; revision {old} goes")


def rollback(ctx: turns.Context, turn: turns.Turn, outcome: api_status.Outcome, reason: Reason, why: str) -> turns.Turn:
    """All traffic back to stable at once; the candidate is rejected and goes after rollback.scaleDownDelay."""
    st = turn.status
    candidate = st.canary_revision or ""
    track = turns.stance(ctx.spec, ctx.plan, st).track
    after = ctx.now + durations.parse_duration(ctx.spec.rollback.scale_down_delay)
    waiting = [item for item in st.scale_downs if item.revision != candidate]
    if after > ctx.now:
        waiting.append(api_status.ScaleDown(revision=candidate, track=track, after=after))
    entry = record(ctx, st, candidate, outcome, f"{reason.value}: {why}")
    turn = turn.set(
        **turns.IDLE,
        history=history(ctx, st, entry),
        rejected_revisions=revisions.rejected(st, add=candidate),
        scale_downs=waiting,
    )
    message = f"revision {candidate} rolled back: {why}; all traffic to revision {st.stable_revision}"
    return turn.but(degraded=Wanted.true(reason, message), hold=None, capacity=False, smoke=None).note(
        WARNING, "RolledBack", message
    )


def switch_back(
    ctx: turns.Context, turn: turns.Turn, outcome: api_status.Outcome, reason: Reason, why: str
) -> turns.Reply:
    """Abort or undo during a blue-green scale-down delay: the former stable takes all traffic again."""
    st = turn.status
    old, current = turns.retiring_stable(st), st.stable_revision or ""
    snapshot = revisions.find(old, ctx.spec, st) if old else None
    if old is None or snapshot is None:
        return turn, False, "no rollout to abort"
    after = ctx.now + durations.parse_duration(ctx.spec.rollback.scale_down_delay)
    waiting = [item for item in st.scale_downs if item.revision != old]
    if after > ctx.now:
        waiting.append(api_status.ScaleDown(revision=current, track=Track.STABLE, after=after))
    entry = record(ctx, st, current, outcome, f"{reason.value}: {why}")
    turn = turn.set(
        stable_revision=old,
        stable_spec=snapshot,
        history=history(ctx, st, entry),
        rejected_revisions=revisions.rejected(st, add=current),
        scale_downs=waiting,
    )
    message = f"revision {current} rolled back: {why}; all traffic to revision {old}"
    return turn.but(degraded=Wanted.true(reason, message)).note(WARNING, "RolledBack", message), True, message
