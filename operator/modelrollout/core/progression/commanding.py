"""The commands a person gives a rollout: promote, promote-full, abort, retry, pause, resume and
undo, one handler per verb in `VERBS`. Each answers whether it was carried out, with a message,
which status.lastCommand records; a command with the id of the last one is not handled again,
and one meant for another revision than the one rolling out is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from modelrollout.api import commands, labels, verdicts
from modelrollout.api import status as api_status
from modelrollout.core import conditions, decision, revisions, steps
from modelrollout.core.progression import moves, turns

PauseReason = api_status.PauseReason
Outcome = api_status.Outcome
Reason = conditions.Reason
NORMAL, WARNING = decision.EventType.NORMAL, decision.EventType.WARNING


def handle(ctx: turns.Context, turn: turns.Turn) -> turns.Turn:
    """Handle the command not handled yet; every one is acknowledged in status.lastCommand."""
    seen, last = ctx.seen, turn.status.last_command
    if seen.command_error is not None:
        turn = turn.note(WARNING, "CommandRefused", f"{labels.COMMAND} is not a command: {seen.command_error}")
    command = seen.command
    if command is None or (last is not None and last.id == command.id):
        return turn
    mismatch = _mismatch(ctx, turn.status, command)
    if mismatch is not None:
        accepted, message = False, mismatch
    else:
        turn, accepted, message = VERBS[command.verb](ctx, turn, command)
    ack = api_status.CommandAck(id=command.id, verb=command.verb, accepted=accepted, message=message[:1024], at=ctx.now)
    kind, reason = (NORMAL, "CommandAccepted") if accepted else (WARNING, "CommandRefused")
    return turn.set(last_command=ack).note(kind, reason, f"{command.verb.value}: {message}")


def _mismatch(ctx: turns.Context, status: api_status.ModelDeploymentStatus, command: commands.Command) -> str | None:
    """Why a command meant for another revision is refused, if it is."""
    meant = command.revision
    if meant is None or command.verb is commands.Verb.UNDO:
        return None
    if command.verb is commands.Verb.RETRY:
        return None if meant == ctx.revision else f"meant for revision {meant}, but the spec asks for {ctx.revision}"
    if meant == status.canary_revision or (command.verb is commands.Verb.ABORT and meant == status.stable_revision):
        return None
    now = status.canary_revision or "no revision"
    return f"meant for revision {meant}, but {now} is rolling out"


def _promote_command(ctx: turns.Context, turn: turns.Turn, command: commands.Command) -> turns.Reply:
    """Finish the current pause or analyze step (or a pause for a person) and go on."""
    st = turn.status
    if st.canary_revision is None:
        return turn, False, "no rollout in progress"
    if st.pause_reason is PauseReason.COMMAND:
        return turn, False, "paused by a command: resume first"
    stance = turns.stance(ctx.spec, ctx.plan, st)
    cleared = turn.set(pause_reason=None, consecutive_errors=0, analysis_accepted=_accepted(st))
    if stance.promoting:
        if st.consecutive_errors or st.pause_reason:
            return cleared, True, "switching once the new pods are ready, despite the analysis"
        return turn, False, "already promoting: the switch follows once the new pods are ready"
    if stance.holds or isinstance(stance.step, steps.Pause):
        return moves.next_step(ctx, cleared, stance, " (promoted)"), True, f"step {(st.current_step or 0) + 1} finished"
    if st.pause_reason is not None:
        return cleared, True, f"carrying on with step {(st.current_step or 0) + 1} despite the analysis"
    what = steps.describe(stance.step)
    return turn, False, f"step {(st.current_step or 0) + 1} ({what}) ends once its pods are ready; promote-full skips"


def _accepted(status: api_status.ModelDeploymentStatus) -> list[str]:
    """A promote past a failed analysis is the person's decision, not new evidence: the tests that
    failed are accepted for the rest of the phase, and every other test keeps its evidence and its
    share of alpha (restarting them would spend alpha a second time)."""
    if status.pause_reason is not PauseReason.FAILED_ANALYSIS:
        return list(status.analysis_accepted)
    failed = [entry.metric for entry in status.analysis if entry.verdict is verdicts.Verdict.FAIL]
    return sorted({*status.analysis_accepted, *failed})[:64]


def _promote_full(ctx: turns.Context, turn: turns.Turn, command: commands.Command) -> turns.Reply:
    """Skip the remaining steps: straight to the promotion."""
    st = turn.status
    if st.canary_revision is None:
        return turn, False, "no rollout in progress"
    if (st.current_step or 0) >= len(ctx.plan):
        return turn, False, "already promoting"
    turn = turn.set(pause_reason=None, paused_at=None, consecutive_errors=0, analysis_accepted=_accepted(st))
    return (
        moves.next_step(ctx, turn, turns.stance(ctx.spec, ctx.plan, st), " (promote-full)", len(ctx.plan)),
        True,
        "skipping to the switch",
    )


def _abort(ctx: turns.Context, turn: turns.Turn, command: commands.Command) -> turns.Reply:
    """Roll back now and reject the revision; during a blue-green scale-down delay, switch back."""
    st = turn.status
    if st.canary_revision is not None:
        stable = st.stable_revision
        turn = moves.rollback(ctx, turn, Outcome.ABORTED, Reason.ABORTED, "aborted by command")
        return turn, True, f"all traffic back to revision {stable}"
    return moves.switch_back(ctx, turn, Outcome.ABORTED, Reason.ABORTED, "aborted by command after the switch")


def _retry(ctx: turns.Context, turn: turns.Turn, command: commands.Command) -> turns.Reply:
    """Take the spec's revision off the rejected list; the revision stage starts its rollout."""
    if ctx.revision not in turn.status.rejected_revisions:
        return turn, False, f"revision {ctx.revision} is not rejected"
    return (
        turn.set(rejected_revisions=revisions.rejected(turn.status, remove=ctx.revision)),
        True,
        (f"rolling out revision {ctx.revision} again"),
    )


def _pause(ctx: turns.Context, turn: turns.Turn, command: commands.Command) -> turns.Reply:
    st = turn.status
    if st.canary_revision is None:
        return turn, False, "no rollout in progress"
    if st.pause_reason in turns.STICKY:
        return turn, False, f"already paused ({st.pause_reason.value if st.pause_reason else ''})"
    return turn.set(pause_reason=PauseReason.COMMAND, paused_at=ctx.now), True, "paused until resume"


def _resume(ctx: turns.Context, turn: turns.Turn, command: commands.Command) -> turns.Reply:
    """End a pause command (the step gets its remaining time back), or retry unreadable metrics."""
    st = turn.status
    if st.pause_reason is PauseReason.COMMAND:
        paused = ctx.now - (st.paused_at or ctx.now)
        started = st.step_started_at + paused if st.step_started_at else None
        return turn.set(pause_reason=None, paused_at=None, step_started_at=started), True, "resumed"
    if turns.metrics_down(ctx, st):
        return turn.set(pause_reason=None, consecutive_errors=0), True, "resumed: the analysis is tried again"
    if st.pause_reason in turns.STICKY:
        return turn, False, f"paused for {st.pause_reason.value if st.pause_reason else ''}: promote or abort"
    return turn, False, "not paused by a command"


def _undo(ctx: turns.Context, turn: turns.Turn, command: commands.Command) -> turns.Reply:
    """Roll back to an earlier revision: it rolls out as the candidate; the spec's revision is held back."""
    st = turn.status
    if st.canary_revision is not None:
        return turn, False, "a rollout is in progress: abort it first"
    target = command.to_revision or revisions.previous(st)
    if target is None:
        return turn, False, "no earlier promoted revision in status.history"
    if target == st.stable_revision:
        return turn, False, f"revision {target} is already the stable one"
    if target == turns.retiring_stable(st):
        return moves.switch_back(ctx, turn, Outcome.ROLLED_BACK, Reason.UNDONE, f"undo to revision {target}")
    if revisions.find(target, ctx.spec, st) is None:
        return turn, False, f"revision {target} has no snapshot in status.history"
    held = revisions.rejected(st, remove=target)
    if st.stable_revision and st.stable_revision not in held:
        held.append(st.stable_revision)
    turn = moves.start(ctx, turn.set(rejected_revisions=held), target, f"undo to revision {target}")
    return (
        turn,
        True,
        (
            f"rolling back to revision {target}; the spec's revision {ctx.revision} is held back "
            "until the spec changes or a retry"
        ),
    )


Verb = Callable[[turns.Context, turns.Turn, commands.Command], turns.Reply]
"""A command handler: what it does to the turn, and whether and why it was carried out."""

VERBS: Mapping[commands.Verb, Verb] = {
    commands.Verb.PROMOTE: _promote_command,
    commands.Verb.PROMOTE_FULL: _promote_full,
    commands.Verb.ABORT: _abort,
    commands.Verb.RETRY: _retry,
    commands.Verb.PAUSE: _pause,
    commands.Verb.RESUME: _resume,
    commands.Verb.UNDO: _undo,
}
