"""The bench's Prometheus arithmetic against plain transcriptions of what Prometheus does."""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import promql
from modelrollout.core.analysis import counters


def reference_increase(samples: list[tuple[float, float]], start: float, end: float,
                       left_open: bool = True) -> float | None:
    """`extrapolatedRate` for a float counter (promql/functions.go), one window, line by line."""
    inside = [(t, v) for t, v in samples if (t > start if left_open else t >= start) and t <= end]
    if len(inside) < 2:
        return None
    result = inside[-1][1] - inside[0][1]
    for (_, before), (_, after) in itertools.pairwise(inside):
        if after < before:
            result += before
    to_start, to_end = inside[0][0] - start, end - inside[-1][0]
    sampled = inside[-1][0] - inside[0][0]
    spacing = sampled / (len(inside) - 1)
    if to_start >= 1.1 * spacing:
        to_start = spacing / 2
    to_zero = to_start
    if result > 0 and inside[0][1] >= 0:
        to_zero = sampled * (inside[0][1] / result)
    to_start = min(to_start, to_zero)
    if to_end >= 1.1 * spacing:
        to_end = spacing / 2
    return result * (sampled + to_start + to_end) / sampled


def _one_series(times: list[float], values: list[float], ok: list[bool]) -> tuple[np.ndarray, ...]:
    return (np.asarray(times, dtype=np.float64)[None, None, :], np.asarray(ok)[None, None, :],
            np.asarray(values, dtype=np.float64)[None, None, :, None])


def test_two_scrapes_in_a_window_of_two_spacings_count_twice() -> None:
    times, ok, values = _one_series([5.0, 20.0, 35.0, 50.0], [100.0, 103.0, 110.0, 111.0], [True] * 4)
    got = promql.increase(times, ok, values, np.asarray([30.0, 60.0]), 30.0)[0, 0, :, 0]
    assert got.tolist() == [6.0, 2.0]  # (103 - 100) x 30/15 and (111 - 110) x 2: the 20 -> 35 step is never seen


def test_one_sample_in_the_window_gives_nothing() -> None:
    times, ok, values = _one_series([5.0, 20.0, 35.0], [1.0, 2.0, 3.0], [True] * 3)
    got = promql.increase(times, ok, values, np.asarray([15.0, 30.0]), 15.0)[0, 0, :, 0]
    assert np.isnan(got).all()


def test_stale_markers_are_skipped_by_range_selectors() -> None:
    times, ok, values = _one_series([5.0, 20.0, 35.0, 50.0], [10.0, 12.0, 14.0, 16.0], [True, False, True, True])
    got = promql.increase(times, ok, values, np.asarray([60.0]), 60.0)[0, 0, 0, 0]
    assert math.isclose(got, reference_increase([(5.0, 10.0), (35.0, 14.0), (50.0, 16.0)], 0.0, 60.0) or 0.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.5, 20.0), st.integers(0, 30), st.booleans(), st.booleans()),
                min_size=2, max_size=20),
       st.floats(5.0, 90.0), st.booleans())
def test_increase_is_extrapolated_rate(steps: list[tuple[float, int, bool, bool]], window: float,
                                       left_open: bool) -> None:
    times, values, ok, value = [], [], [], 50.0
    clock = -10.0
    for gap, grow, reset, scraped in steps:
        clock += gap
        value = float(grow) if reset else value + grow
        times.append(clock)
        values.append(value)
        ok.append(scraped)
    ends = np.arange(1, 8) * window / 2.0
    got = promql.increase(*_one_series(times, values, ok), ends, window, left_open)[0, 0, :, 0]
    seen = [(t, v) for t, v, o in zip(times, values, ok, strict=True) if o]
    for end, value_got in zip(ends, got, strict=True):
        expected = reference_increase(seen, end - window, end, left_open)
        if expected is None:
            assert math.isnan(value_got)
        else:
            assert math.isclose(value_got, expected, rel_tol=1e-9, abs_tol=1e-9)


def test_instant_takes_the_latest_sample_and_nothing_after_a_failed_scrape() -> None:
    times, ok, values = _one_series([5.0, 20.0, 35.0, 50.0], [1.0, 2.0, 3.0, 4.0], [True, True, False, True])
    got = promql.instant(times, ok, values, np.asarray([0.0, 10.0, 30.0, 40.0, 55.0, 340.0]), 300.0)[0, 0, :, 0]
    assert np.array_equal(got, [np.nan, 1.0, 2.0, np.nan, 4.0, 4.0], equal_nan=True)
    stale = promql.instant(times, ok, values, np.asarray([360.0]), 300.0)[0, 0, 0, 0]
    assert math.isnan(stale)  # beyond the 5 min lookback


def test_sum_is_absent_only_where_no_series_is_present() -> None:
    values = np.asarray([[1.0, np.nan], [np.nan, np.nan], [2.0, 3.0]])
    assert np.array_equal(promql.sum_present(values, axis=-1), [1.0, np.nan, 5.0], equal_nan=True)


@given(st.lists(st.one_of(st.none(), st.integers(0, 40)), min_size=1, max_size=30))
def test_vectorised_increments_are_the_counters_rule(raw: list[int | None]) -> None:
    steps = [15.0 * i for i in range(len(raw))]
    values = np.asarray([math.nan if v is None else float(v) for v in raw])
    expected = counters.counter_increments({t: float(v) for t, v in zip(steps, raw, strict=True) if v is not None},
                                           steps)
    assert promql.increments(values).tolist() == expected


@given(st.lists(st.one_of(st.none(), st.tuples(st.integers(0, 9), st.integers(0, 9))), min_size=1, max_size=20))
def test_vectorised_bucket_increments_are_the_counters_rule(raw: list[tuple[int, int] | None]) -> None:
    steps = [15.0 * i for i in range(len(raw))]
    cumulative = [None if v is None else (float(v[0]), float(v[0] + v[1])) for v in raw]
    values = np.asarray([[math.nan, math.nan] if v is None else list(v) for v in cumulative])
    by_le = {k: {t: v[k] for t, v in zip(steps, cumulative, strict=True) if v is not None} for k in range(2)}
    expected = counters.bucket_increments(by_le, steps)
    assert promql.bucket_increments(values).tolist() == expected
