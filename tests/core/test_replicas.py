"""Replica arithmetic: the docstring examples as tables, and the budget and weight properties."""

from __future__ import annotations

import hypothesis
import pytest
from hypothesis import strategies as st

from modelrollout.core import replicas

Split = replicas.Split


@pytest.mark.parametrize(
    "total, weight, expected",
    [(4, 25, 1), (4, 30, 2), (10, 0, 0), (10, 5, 1), (3, 34, 1), (3, 67, 2), (3, 100, 3), (1, 1, 1), (100, 1, 1)],
)
def test_pods_for_weight(total: int, weight: int, expected: int) -> None:
    assert replicas.pods_for_weight(total, weight) == expected


@pytest.mark.parametrize(
    "stable, candidate, expected",
    [(3, 1, 25), (2, 1, 33), (999, 1, 1), (1, 999, 99), (0, 2, 100), (4, 0, 0), (0, 0, 0), (2, 2, 50)],
)
def test_effective_weight(stable: int, candidate: int, expected: int) -> None:
    assert replicas.effective_weight(stable, candidate) == expected


@pytest.mark.parametrize(
    "total, weight, cap, expected",
    [
        (4, 25, 4, (3, 1)),
        (4, 5, 5, (4, 1)),
        (4, 5, 4, (3, 1)),
        (4, 30, 8, (4, 2)),
        (3, 50, 3, (2, 1)),
        (3, 34, 3, (2, 1)),
        (3, 67, 3, (1, 2)),
        (1, 50, 2, (1, 1)),
        (1, 5, 1, (0, 1)),
        (4, 100, 4, (0, 4)),
        (4, 0, 4, (4, 0)),
    ],
)
def test_ratio(total: int, weight: int, cap: int, expected: tuple[int, int]) -> None:
    assert replicas.ratio(total, weight, cap) == expected


@pytest.mark.parametrize(
    "total, weight, cap, serving, expected",
    [
        (4, 25, 6, 0, (4, 1)),
        (4, 50, 4, 25, (2, 2)),
        (4, 100, 4, 50, (1, 3)),
        (4, 100, 4, 100, (0, 4)),
        (1, 50, 1, 0, (0, 1)),
        (10, 5, 10, 0, (9, 1)),
    ],
)
def test_weighted(total: int, weight: int, cap: int, serving: int, expected: tuple[int, int]) -> None:
    assert replicas.weighted(total, weight, cap, serving) == expected


@pytest.mark.parametrize(
    "args, expected",
    [
        ((4, 25, 4, 0, 0, False), Split(3, 1, 1, 3)),
        ((4, 50, 5, 25, 1, False), Split(3, 2, 2, 3)),
        ((4, 50, 5, 0, 0, True), Split(4, 1, 2, 2)),
        ((4, 50, 4, 25, 1, False), Split(2, 2, 2, 2)),  # no room: one stable pod makes room at a time
        ((4, 100, 6, 50, 2, False), Split(2, 4, 4, 2)),
    ],
)
def test_canary(args: tuple[int, int, int, int, int, bool], expected: Split) -> None:
    assert replicas.canary(*args) == expected


@pytest.mark.parametrize(
    "args, expected",
    [
        ((4, 4, 8, 0), Split(4, 4, 4, 4)),
        ((4, 4, 6, 0), Split(4, 0, 4, 4)),
        ((4, 2, 6, 1), Split(4, 2, 2, 4)),
        ((4, 4, 6, 3), Split(4, 2, 4, 4)),
    ],
)
def test_beside(args: tuple[int, int, int, int], expected: Split) -> None:
    assert replicas.beside(*args) == expected


@pytest.mark.parametrize("args, expected", [((4, 8, 4), 4), ((4, 6, 4), 2), ((2, 4, 4), 0), ((3, 4, 5), 0)])
def test_kept(args: tuple[int, int, int], expected: int) -> None:
    assert replicas.kept(*args) == expected


totals = st.integers(1, 40)
weights = st.integers(0, 100)


@hypothesis.given(totals, weights, st.integers(0, 40), st.integers(0, 100), st.integers(0, 80), st.booleans())
def test_a_canary_split_stays_within_the_budget(
    total: int, weight: int, extra: int, serving: int, ready: int, by_ratio: bool
) -> None:
    cap = total + extra
    split = replicas.canary(total, weight, cap, serving, min(ready, total), by_ratio)
    assert split.stable + split.candidate <= cap
    assert 0 <= split.stable <= total and 0 <= split.candidate <= split.goal <= total
    assert split.stable >= split.stable_goal


@hypothesis.given(totals, weights, st.integers(0, 40), st.booleans())
def test_a_canary_step_reaches_its_goal_as_pods_become_ready(
    total: int, weight: int, extra: int, by_ratio: bool
) -> None:
    cap, ready, serving = total + extra, 0, 0
    for _ in range(2 * total + 2):
        split = replicas.canary(total, weight, cap, serving, ready, by_ratio)
        if ready >= split.goal and split.stable == split.stable_goal:
            break
        ready = split.candidate  # the world makes every asked pod ready
    else:
        pytest.fail(f"no progress: {split}")
    assert ready >= split.goal


@hypothesis.given(totals, weights, st.integers(0, 80))
def test_a_ratio_split_is_as_close_as_pods_allow(total: int, weight: int, extra: int) -> None:
    cap = total + extra
    stable, canary = replicas.ratio(total, weight, cap)
    assert min(total, cap) <= stable + canary <= cap and stable <= total and canary <= total
    assert canary >= (1 if weight > 0 else 0)
    if weight < 100 and cap >= 2:
        assert stable >= 1
    error = abs(100 * canary / (stable + canary) - weight)
    for other in range(1, total):  # no split of `total` pods with both sides present is closer
        if 0 < weight < 100:
            assert error <= abs(100 * other / total - weight) + 1e-9


@hypothesis.given(st.integers(0, 50), st.integers(0, 50))
def test_the_effective_weight_says_who_has_ready_pods(stable: int, candidate: int) -> None:
    weight = replicas.effective_weight(stable, candidate)
    assert 0 <= weight <= 100
    assert (weight > 0) == (candidate > 0)
    assert (weight < 100) == (stable > 0 or candidate == 0)


@hypothesis.given(totals, st.integers(1, 40), st.integers(0, 80), st.integers(0, 40))
def test_a_side_by_side_candidate_never_exceeds_the_budget(total: int, pods: int, extra: int, existing: int) -> None:
    cap = total + extra
    split = replicas.beside(total, min(pods, total), cap, existing)
    assert split.stable == total and split.stable + split.candidate <= max(cap, total)
    assert split.candidate in (split.goal, min(existing, extra))
