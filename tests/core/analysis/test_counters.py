"""Exact counts from raw counter values: resets, new series, missed steps and pods born mid-window."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from modelrollout.core.analysis import counters


def test_differences_between_steps() -> None:
    assert counters.counter_increments({0: 5, 15: 7, 30: 12}, [0, 15, 30]) == [2.0, 5.0]


def test_a_drop_is_a_restart_counted_from_zero() -> None:
    assert counters.counter_increments({0: 5, 15: 7, 30: 2}, [0, 15, 30]) == [2.0, 2.0]


def test_a_series_without_baseline_counts_from_zero() -> None:
    # a pod started in the window, or an error series created by its first error
    assert counters.counter_increments({15: 3, 30: 4}, [0, 15, 30]) == [3.0, 1.0]


def test_a_missed_step_is_carried_by_the_next() -> None:
    assert counters.counter_increments({0: 1, 30: 9}, [0, 15, 30]) == [0.0, 8.0]


def test_nan_counts_as_no_sample() -> None:
    assert counters.counter_increments({0: 1, 15: math.nan, 30: 4}, [0, 15, 30]) == [0.0, 3.0]


def test_no_steps_no_intervals() -> None:
    assert counters.counter_increments({}, []) == []
    assert counters.counter_increments({0: 1}, [0]) == []


@given(st.lists(st.integers(0, 50), min_size=1, max_size=40), st.data())
def test_totals_are_exact_however_the_steps_fall(increments: list[int], data: st.DataObject) -> None:
    """Whatever steps are missed, the increments add up to what the counter really counted."""
    values = [sum(increments[: i + 1]) for i in range(len(increments))]
    steps = list(range(len(values) + 1))
    seen = data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values)))
    seen[-1] = True
    points = {float(i + 1): float(v) for i, (v, s) in enumerate(zip(values, seen, strict=True)) if s}
    points[0.0] = 0.0
    found = counters.counter_increments(points, [float(s) for s in steps])
    assert sum(found) == values[-1]
    assert all(x >= 0 for x in found)


def test_buckets_difference_per_le() -> None:
    got = counters.bucket_increments({1.0: {0: 1, 15: 3}, math.inf: {0: 2, 15: 5}}, [0, 15])
    assert got == [[2.0, 3.0]]


def test_a_drop_in_any_bucket_restarts_every_bucket() -> None:
    # the +Inf count went on rising by chance, but the 1.0 bucket dropped: the process restarted
    got = counters.bucket_increments({1.0: {0: 10, 15: 2}, math.inf: {0: 11, 15: 12}}, [0, 15])
    assert got == [[2.0, 12.0]]


def test_new_buckets_count_from_zero() -> None:
    got = counters.bucket_increments({1.0: {15: 2}, math.inf: {15: 3}}, [0, 15])
    assert got == [[2.0, 3.0]]
