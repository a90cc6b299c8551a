"""The order of workload writes: the budget holds after every write, and the plan is reached."""

from __future__ import annotations

import hypothesis
from hypothesis import strategies as st

from modelrollout.api import labels
from modelrollout.core import decision, sequencing


def workload(revision: str, replicas: int) -> decision.Workload:
    return decision.Workload(revision, labels.Track.STABLE, replicas)


def replay(seq: sequencing.Writes, current: dict[str, int], plan: tuple[decision.Workload, ...]) -> list[int]:
    """The total asked for after each write, with the removals where the handlers do them."""
    asked = dict(current)
    totals = []
    for write in seq.before_traffic + seq.after_traffic:
        asked[write.revision] = write.replicas
        totals.append(sum(asked.values()))
    listed = {w.revision for w in plan}
    asked = {rev: n for rev, n in asked.items() if rev in listed}
    totals.append(sum(asked.values()))
    for write in seq.after_removals:
        asked[write.revision] = write.replicas
        totals.append(sum(asked.values()))
    assert asked == {w.revision: w.replicas for w in plan}, "the writes reach the plan"
    return totals


def test_a_stable_pod_makes_room_before_the_canary_pod_is_asked_for() -> None:
    plan = (workload("old", 2), workload("new", 1))
    seq = sequencing.sequence(plan, {"old": 3}, budget=3)
    assert [(w.revision, w.replicas) for w in seq.before_traffic] == [("old", 2), ("new", 1)]
    assert seq.after_traffic == () and seq.after_removals == ()


def test_a_scale_up_waits_for_the_scale_down_to_zero_that_follows_the_traffic() -> None:
    plan = (workload("old", 3), workload("new", 0))  # a rollback with no room to spare
    seq = sequencing.sequence(plan, {"old": 2, "new": 1}, budget=3)
    assert [(w.revision, w.replicas) for w in seq.before_traffic] == [("old", 2)]
    assert [(w.revision, w.replicas) for w in seq.after_traffic] == [("new", 0)]
    assert [(w.revision, w.replicas) for w in seq.after_removals] == [("old", 3)]


def test_a_removed_revision_counts_until_it_is_removed() -> None:
    plan = (workload("next", 3),)
    seq = sequencing.sequence(plan, {"dropped": 2, "next": 1}, budget=3)
    assert [(w.revision, w.replicas) for w in seq.before_traffic] == [("next", 1)]
    assert [(w.revision, w.replicas) for w in seq.after_removals] == [("next", 3)]


def test_without_a_budget_the_plan_surges_before_traffic_moves() -> None:
    plan = (workload("old", 4), workload("new", 4))
    seq = sequencing.sequence(plan, {"old": 4}, budget=None)
    assert [(w.revision, w.replicas) for w in seq.before_traffic] == [("old", 4), ("new", 4)]
    assert seq.after_removals == ()


@st.composite
def transitions(draw: st.DrawFn) -> tuple[tuple[decision.Workload, ...], dict[str, int], int]:
    budget = draw(st.integers(1, 12))
    names = ["a", "b", "c"]
    current = {n: draw(st.integers(0, 6)) for n in names if draw(st.booleans())}
    hypothesis.assume(sum(current.values()) <= budget)
    listed = [n for n in names if draw(st.booleans())]
    plan = tuple(workload(n, draw(st.integers(0, 6))) for n in listed)
    hypothesis.assume(sum(w.replicas for w in plan) <= budget)
    return plan, current, budget


@hypothesis.given(transitions())
def test_the_budget_holds_after_every_write(case: tuple[tuple[decision.Workload, ...], dict[str, int], int]) -> None:
    plan, current, budget = case
    seq = sequencing.sequence(plan, current, budget)
    assert max(replay(seq, current, plan), default=0) <= budget
    # a revision reaches 0 only after the traffic has moved
    assert all(w.replicas > 0 for w in seq.before_traffic if current.get(w.revision, 0) > w.replicas)


@hypothesis.given(transitions())
def test_without_a_budget_every_new_pod_is_asked_for_before_traffic(
        case: tuple[tuple[decision.Workload, ...], dict[str, int], int]) -> None:
    plan, current, _ = case
    seq = sequencing.sequence(plan, current, None)
    replay(seq, current, plan)
    assert seq.after_removals == ()
    assert all(w.replicas == 0 for w in seq.after_traffic)
