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
    "value, upper, expected",
    [
        (1.5, True, 5.0 + 4.0),  # half of (1, 2] plus the +Inf bucket
        (2.0, True, 4.0),  # on a bound: exact
        (0.5, False, 5.0),  # the first bucket starts at 0
        (1.0, False, 10.0),
        (3.0, True, 4.0),  # inside +Inf: the whole bucket, on either side
        (3.0, False, 24.0),
    ],
)
def test_counts_beyond_value_interpolates_like_histogram_quantile(value, upper, expected):
    assert list(buckets.counts_beyond_value([[10, 10, 4]], [1, 2, INF], [value], upper)) == [expected]


def test_counts_beyond_value_overstates_a_falling_tail():
    # Density falling across (1, 2]: 8 observations in (1, 1.5], 2 in (1.5, 2]; the linear share
    # above 1.5 (5) is more than the true 2, the safe side for stable's count.
    assert buckets.counts_beyond_value([[0, 10, 0]], [1, 2, INF], [1.5], True)[0] >= 2.0
