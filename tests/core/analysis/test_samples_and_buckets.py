"""Sample records and bucket arithmetic: conversions, quantiles and the predictable boundary."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelrollout.core.analysis import buckets, samples

INF = math.inf
NAN = math.nan


@pytest.mark.parametrize(
    "values, expected",
    [([3, 5, 9], (2.0, 4.0)), ([3, 5, 1], (2.0, 1.0)), ([7], ()), ([], ())],
)
def test_increments_repair_counter_resets(values, expected):
    assert samples.increments(values) == expected


def test_increments_propagate_missing_scrapes():
    result = samples.increments([3, NAN, 9])
    assert len(result) == 2 and all(math.isnan(v) for v in result)


@pytest.mark.parametrize(
    "cumulative, expected",
    [([2, 5, 5, 9], (2.0, 3.0, 0.0, 4.0)), ([], ()), ([4, 3], (4.0, -1.0))],
)
def test_buckets_from_cumulative(cumulative, expected):
    assert samples.buckets_from_cumulative(cumulative) == expected


@pytest.mark.parametrize(
    "bounds, buckets_per_track",
    [((1.0, 2.0), 2), ((1.0, INF, 2.0), 3), ((2.0, 1.0, INF), 3), ((1.0, INF), 3)],
)
def test_histogram_samples_reject_malformed_shapes(bounds, buckets_per_track):
    interval = samples.HistogramInterval((1.0,) * buckets_per_track, (1.0,) * buckets_per_track)
    with pytest.raises(ValueError):
        samples.HistogramSamples("latency", bounds, (interval,))


def test_histogram_samples_with_an_error_need_no_shape():
    assert samples.HistogramSamples("latency", (), error="timeout").error == "timeout"


@pytest.mark.parametrize(
    "q, bounds, counts, expected",
    [
        (0.5, [1, 2, INF], [10, 10, 0], 1.0),
        (0.75, [1, 2, INF], [10, 10, 0], 1.5),
        (0.99, [1, 2, INF], [10, 10, 5], 2.0),  # in the +Inf bucket: the largest finite bound
        (0.5, [-1, 2, INF], [10, 0, 0], -1.0),  # a first bucket with a bound <= 0 returns that bound
        (0.5, [1, INF], [0, 0], NAN),
    ],
)
def test_histogram_quantile_follows_prometheus(q, bounds, counts, expected):
    result = buckets.histogram_quantile(q, bounds, counts)
    assert result == pytest.approx(expected) or (math.isnan(expected) and math.isnan(result))


def test_tail_shares():
    assert buckets.tail_shares([1, 2, 1]) == pytest.approx([0.75, 0.25])


@pytest.mark.parametrize(
    "upper, tail, expected",
    [(True, 0.1, [-1, 0]), (True, 0.01, [-1, 1]), (False, 0.9, [-1, 0])],
)
def test_predictable_boundaries_use_only_earlier_intervals(upper, tail, expected):
    stable = [[90, 9, 1], [90, 9, 1]]
    assert list(buckets.predictable_boundaries(stable, tail, upper, 50)) == expected


@given(st.lists(st.lists(st.integers(0, 50), min_size=4, max_size=4), min_size=2, max_size=8), st.integers(0, 50))
def test_changing_an_interval_never_changes_its_own_boundary(rows, bump):
    # The boundary of interval t depends on data before t only: that is what keeps the test valid.
    before = buckets.predictable_boundaries(rows, 0.05, True, 10)
    changed = [list(r) for r in rows]
    changed[-1][-1] += bump
    after = buckets.predictable_boundaries(changed, 0.05, True, 10)
    assert list(before) == list(after)


@pytest.mark.parametrize(
    "counts, boundary, upper, expected",
    [([[5, 3, 2]], [0], True, [5.0]), ([[5, 3, 2]], [1], False, [8.0]), ([[5, 3, 2]], [-1], True, [0.0])],
)
def test_counts_beyond(counts, boundary, upper, expected):
    assert list(buckets.counts_beyond(np.array(counts, dtype=float), boundary, upper)) == expected


INF = math.inf


@pytest.mark.parametrize(
    "boundary, ratio, upper, fail, passing",
    [
        (2, 1.1, True, 1, 2),  # 0.4 / 1.1 = 0.36: FAIL counts stable above 0.2, PASS above 0.4
        (1, 2.0, True, 0, 0),  # 0.2 / 2 = 0.1 is an edge: both tests count there, exactly
        (0, 1.1, True, -1, 0),  # 0.1 / 1.1 is below every edge: FAIL counts all of stable
        (1, 0.9, False, 2, 1),  # lower tail: 0.2 / 0.9 = 0.22, FAIL at or below 0.4, PASS at or below 0.2
        (2, 0.9, False, 3, 2),  # 0.44 is beyond every finite edge: FAIL counts all of stable
        (-1, 1.1, True, -1, -1),  # no boundary yet
    ],
)
def test_edges_for_take_the_bucket_edge_on_the_safe_side(boundary, ratio, upper, fail, passing):
    found_fail, found_pass = buckets.edges_for([0.1, 0.2, 0.4, INF], [boundary], ratio, upper)
    assert (int(found_fail[0]), int(found_pass[0])) == (fail, passing)


@pytest.mark.parametrize(
    "edge, upper, expected",
    [(-1, True, 24.0), (-1, False, 0.0), (0, True, 14.0), (1, False, 20.0), (2, False, 24.0)],
)
def test_counts_beyond_edge(edge, upper, expected):
    assert list(buckets.counts_beyond_edge([[10, 10, 4]], [edge], upper)) == [expected]


def test_resolvable_tolerance_is_what_the_edges_test():
    assert buckets.resolvable_tolerance([0.1, 0.2, 0.4, INF], 2, 1.1, True) == (1.0, 2.0)
    # Prometheus' default buckets near 0.5 s: a 10 % tolerance is really tested as x2
    go = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, INF]
    assert buckets.resolvable_tolerance(go, 6, 1.1, True) == (1.0, 2.0)
    # geometric 2^(1/8) buckets resolve a 10 % tolerance as 1.19 (two edges)
    fine = [2 ** (k / 8) for k in range(-40, 1)] + [INF]
    passing, fail = buckets.resolvable_tolerance(fine, 38, 1.1, True)
    assert passing == pytest.approx(2 ** (1 / 8)) and fail == pytest.approx(2 ** (2 / 8))
