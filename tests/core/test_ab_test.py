"""A/B tests through the simulated world: a win promotes, a loss, a guardrail failure and an
undecided end keep stable, and the cohort reaches the challenger only once its pods are ready."""

from __future__ import annotations

import dataclasses

from modelrollout.api import labels, verdicts
from modelrollout.api.status import ConditionType, Outcome, PauseReason, Phase
from modelrollout.core import observation, revisions
from tests.core import world

Verdict = verdicts.Verdict
Track = labels.Track


def started(**options: object) -> world.World:
    w = world.World(world.make_spec(strategy="ABTest", max_extra=4, **options))  # type: ignore[arg-type]
    w.settle()
    assert w.status.phase is Phase.SUCCEEDED
    return w


def _after(seconds: int) -> world.Judge:
    """INCONCLUSIVE until `seconds` after the window opened, then PASS."""
    return lambda window, w: Verdict.PASS if (w.now - window.since).total_seconds() >= seconds else Verdict.INCONCLUSIVE


def test_a_winning_challenger_ends_the_test_early_and_is_promoted() -> None:
    w = started()
    w.change(version="2.0.0")
    new = revisions.of_spec(w.spec)
    w.goal = _after(300)
    w.judge = lambda window, w_: Verdict.PASS
    w.settle()
    assert w.stable == new and w.status.phase is Phase.SUCCEEDED
    assert w.outcomes()[-1] == (new, Outcome.PROMOTED)
    routed = [m for m in w.decisions if m.traffic.cohort]
    assert routed and all(m.traffic.canary_weight == 0 and m.traffic.candidate_track is Track.CANARY for m in routed)
    assert routed[0].traffic.cohort[0].headers == {"x-cohort": "b"}
    assert "ChallengerWon" in w.reasons()
    won_at = next(m for m in w.decisions if any(e.reason == "ChallengerWon" for e in m.events))
    assert won_at.status.current_step == 2  # the win ended the 20m analysis early: the promotion follows
    challenger = [m for m in w.decisions if m.traffic.candidate_revision == new and not m.traffic.cohort]
    assert any(m.workloads[1].replicas == 4 for m in challenger if len(m.workloads) > 1)


@dataclasses.dataclass
class SlowWorld(world.World):
    """Pods of `slow` become ready two at most, until `slow` is cleared."""

    slow: str | None = None

    def observe(self) -> observation.Observation:
        seen = super().observe()
        if self.slow not in seen.revisions:
            return seen
        pods = dict(seen.revisions)
        pods[self.slow] = dataclasses.replace(pods[self.slow], ready=min(2, pods[self.slow].ready))
        return dataclasses.replace(seen, revisions=pods)


def test_the_cohort_waits_for_every_challenger_pod() -> None:
    w = SlowWorld(world.make_spec(strategy="ABTest", max_extra=4))
    w.settle()
    w.change(version="2.0.0")
    new = revisions.of_spec(w.spec)
    w.goal = lambda window, w_: Verdict.INCONCLUSIVE
    w.slow = new
    w.run(ticks=20)
    assert w.decisions[-1].status.tracks is not None
    assert not any(m.traffic.cohort for m in w.decisions) and w.status.analysis_started_at is None
    assert "2/4 ready" in (w.status.message or "")
    w.slow = None
    w.run(until=lambda x: bool(x.decisions[-1].traffic.cohort))
    assert w.pods[new].ready == 4 and w.decisions[-1].workloads[0].replicas == 4  # beside a whole stable


def test_a_challenger_that_cannot_win_is_rolled_back_as_challenger_lost() -> None:
    w = started()
    old = w.stable
    w.change(version="2.0.0")
    new = revisions.of_spec(w.spec)
    w.goal = lambda window, w_: Verdict.FAIL if (w_.now - window.since).total_seconds() > 120 else Verdict.INCONCLUSIVE
    w.judge = lambda window, w_: Verdict.PASS
    w.run(until=lambda x: x.status.phase is Phase.ROLLED_BACK)
    assert w.stable == old and new in w.status.rejected_revisions
    assert w.status.history[-1].outcome is Outcome.ROLLED_BACK
    assert w.status.history[-1].reason.startswith("ChallengerLost")
    found = w.status.condition(ConditionType.DEGRADED)
    assert found is not None and found.reason == "ChallengerLost"
    assert not w.decisions[-1].traffic.cohort


def test_a_broken_guardrail_rolls_back_even_when_the_goal_wins() -> None:
    w = started()
    w.change(version="2.0.0")
    w.goal = lambda window, w_: Verdict.PASS
    w.judge = lambda window, w_: Verdict.FAIL
    w.run(until=lambda x: x.status.phase is Phase.ROLLED_BACK)
    assert w.status.history[-1].reason.startswith("AnalysisFailed")
    assert "ChallengerWon" not in w.reasons()


def test_an_undecided_test_keeps_stable_at_its_end_with_the_interval() -> None:
    w = started()
    old = w.stable
    w.change(version="2.0.0")
    w.goal = lambda window, w_: Verdict.INCONCLUSIVE
    w.judge = world.passing
    w.run(until=lambda x: x.status.phase is Phase.ROLLED_BACK)
    assert w.stable == old
    last = w.status.history[-1]
    assert last.reason.startswith("Undecided") and "undecided after 20m" in last.reason and "CS [" in last.reason
    rolled = next(m for m in w.decisions if m.status.phase is Phase.ROLLED_BACK)
    started_at = next(m for m in w.decisions if m.traffic.cohort).status.step_started_at
    assert started_at is not None and rolled.status.history[-1].at - started_at >= world.datetime.timedelta(minutes=20)


def test_a_win_with_guardrails_still_collecting_waits_and_never_promotes_on_them_unshown() -> None:
    w = started()
    old = w.stable
    w.change(version="2.0.0")
    w.goal = lambda window, w_: Verdict.PASS
    w.judge = lambda window, w_: Verdict.INCONCLUSIVE  # the guardrails never show they hold
    w.run(until=lambda x: x.status.phase is Phase.ROLLED_BACK)
    assert w.stable == old and "guardrails were not shown" in w.status.history[-1].reason


def test_on_win_pause_waits_for_promote() -> None:
    w = started(ab_test={"onWin": "Pause"})
    w.change(version="2.0.0")
    new = revisions.of_spec(w.spec)
    w.goal = lambda window, w_: Verdict.PASS
    w.judge = lambda window, w_: Verdict.PASS
    w.run(until=lambda x: x.status.pause_reason is PauseReason.AWAITING_PROMOTION)
    assert w.status.canary_revision == new and w.status.phase is Phase.PAUSED
    for _ in range(5):
        assert w.tick().status.canary_revision == new
    w.send(world.commands.Verb.PROMOTE, revision=new)
    w.settle()
    assert w.stable == new
