"""The e-process arithmetic: worked examples, and the properties every test relies on."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelrollout.core.analysis import sequential

LOG2 = math.log(2.0)


@pytest.mark.parametrize("alpha, expected", [(0.01, 4.605), (0.05, 2.996), (1.0, 0.0)])
def test_threshold_is_log_inverse_alpha(alpha, expected):
    assert sequential.threshold(alpha) == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize("alpha", [0.0, -0.1, 1.5])
def test_threshold_rejects_impossible_levels(alpha):
    with pytest.raises(ValueError):
        sequential.threshold(alpha)


@pytest.mark.parametrize("log_e, expected", [(0.0, 1.0), (math.log(20.0), 0.05), (-3.0, 1.0), (1e6, 0.0)])
def test_p_value_is_inverse_e_value_capped_at_one(log_e, expected):
    assert sequential.p_value(log_e) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    "events, total, expected",
    [
        (1, 1, math.log(2.0) - math.log(1.5)),  # one event, and it went to the canary
        (0, 1, -math.log(1.5)),  # it went to stable
        (0, 0, 0.0),  # no events: no information
    ],
)
def test_share_log_lr_worked_examples(events, total, expected):
    assert sequential.share_log_lr(events, total, 1.0, 1.0, [LOG2])[0] == pytest.approx(expected)


def test_share_log_lr_is_a_likelihood_ratio_with_mean_one_under_the_null():
    # Under rho = theta0 the canary's count is Binomial(m, q0): the ratio must average exactly 1.
    m, r, theta0 = 7, 0.25, 1.1
    q0 = theta0 * r / (1.0 + theta0 * r)
    x = np.arange(m + 1)
    pmf = np.array([math.comb(m, k) * q0**k * (1.0 - q0) ** (m - k) for k in x])
    ratios = np.exp(sequential.share_log_lr(x, np.full(x.shape, m), r, theta0, sequential.signed_offsets(True)))
    assert (pmf[:, None] * ratios).sum(axis=0) == pytest.approx(np.ones(len(sequential.OFFSETS)))


@pytest.mark.parametrize(
    "events, trials, p0, offset, expected",
    [(1, 1, 0.5, math.log(3.0), math.log(1.5)), (0, 1, 0.5, math.log(3.0), math.log(0.5))],
)
def test_rate_log_lr_worked_examples(events, trials, p0, offset, expected):
    assert sequential.rate_log_lr(events, trials, p0, [offset])[0] == pytest.approx(expected)


@pytest.mark.parametrize(
    "log_lr, expected",
    [([[0.0], [LOG2]], [0.0, LOG2]), ([[math.log(3.0), 0.0]], [LOG2])],
)
def test_log_mixture_path_worked_examples(log_lr, expected):
    assert sequential.log_mixture_path(np.array(log_lr)) == pytest.approx(expected)


def test_logsumexp_does_not_overflow():
    assert sequential.logsumexp(np.array([1000.0, 0.0]), -1) == pytest.approx(1000.0)
    assert sequential.logsumexp(np.array([0.0, 0.0]), -1) == pytest.approx(LOG2)


@pytest.mark.parametrize(
    "path, level, expected",
    [([0.0, 5.0, 1.0], 4.6, 1), ([0.0, 1.0], 4.6, -1), ([9.0], 4.6, 0)],
)
def test_first_crossing(path, level, expected):
    assert sequential.first_crossing(np.array(path), level) == expected


@pytest.mark.parametrize(
    "events, total, exposure, expected",
    [([2], [3], [1.0], 2.0), ([1, 1], [2, 3], [1.0, 0.5], 1.0), ([0], [5], [1.0], 0.0), ([5], [5], [1.0], math.inf)],
)
def test_ratio_estimate_worked_examples(events, total, exposure, expected):
    assert sequential.ratio_estimate(events, total, exposure) == pytest.approx(expected, rel=1e-6)


def test_ratio_estimate_without_events_is_nan():
    assert math.isnan(sequential.ratio_estimate([0, 0], [0, 0], [1.0, 1.0]))


def test_ratio_bounds_without_events_say_nothing():
    assert sequential.ratio_bounds([0] * 9, [0] * 9, [1.0] * 9, 0.05) == (0.0, math.inf)
    assert sequential.ratio_bounds([], [], [], 0.05) == (0.0, math.inf)


def test_ratio_bounds_bracket_the_estimate_and_shrink_with_data():
    small = sequential.ratio_bounds([3] * 5, [13] * 5, [1 / 9] * 5, 0.01)
    large = sequential.ratio_bounds([30] * 50, [130] * 50, [1 / 9] * 50, 0.01)
    assert small[0] < 3.0 < small[1]
    assert large[0] < 3.0 < large[1]
    assert large[1] - large[0] < small[1] - small[0]


def test_rate_bounds_cover_the_observed_rate():
    lo, hi = sequential.rate_bounds([3] * 10, [100] * 10, 0.01)
    assert lo < 0.03 < hi
    assert sequential.rate_bounds([0], [0], 0.05) == (0.0, 1.0)


def test_confidence_sequence_covers_the_truth_at_its_level():
    # 400 series with a true ratio of 2; each side may miss at most alpha of the time.
    rng = np.random.default_rng(7)
    misses = 0
    for _ in range(400):
        share = rng.uniform(0.05, 0.5, 20)
        r = share / (1.0 - share)
        total = rng.poisson(30, 20)
        events = rng.binomial(total, 2.0 * r / (1.0 + 2.0 * r))
        lo, hi = sequential.ratio_bounds(events, total, r, 0.05)
        misses += not lo <= 2.0 <= hi
    assert misses / 400 <= 0.10 + 3 * math.sqrt(0.1 * 0.9 / 400)


counts = st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40), st.floats(0.05, 2.0)), min_size=1, max_size=12)


@given(counts)
def test_anytime_p_value_is_a_probability(data):
    x = np.array([d[0] for d in data], dtype=float)
    m = x + np.array([d[1] for d in data], dtype=float)
    r = np.array([d[2] for d in data])
    path = sequential.log_mixture_path(sequential.share_log_lr(x, m, r, 1.1, sequential.signed_offsets(True)))
    p = sequential.p_value(float(path.max()))
    assert 0.0 <= p <= 1.0


@given(counts, st.integers(0, 11), st.integers(1, 10))
def test_moving_an_event_to_the_canary_never_raises_the_p_value(data, where, moved):
    # More bad evidence (an event counted on the canary instead of stable) only adds evidence.
    x = np.array([d[0] for d in data], dtype=float)
    y = np.array([d[1] for d in data], dtype=float)
    r = np.array([d[2] for d in data])
    i = where % len(data)
    shift = min(moved, y[i])
    worse_x, worse_y = x.copy(), y.copy()
    worse_x[i] += shift
    worse_y[i] -= shift

    def p(xs, ys):
        log_lr = sequential.share_log_lr(xs, xs + ys, r, 1.1, sequential.signed_offsets(True))
        path = sequential.log_mixture_path(log_lr)
        return sequential.p_value(float(path.max()))

    assert p(worse_x, worse_y) <= p(x, y) + 1e-12


@settings(max_examples=50)
@given(counts)
def test_the_estimate_solves_its_likelihood_equation(data):
    x = np.array([d[0] for d in data], dtype=float)
    m = x + np.array([d[1] for d in data], dtype=float)
    r = np.array([d[2] for d in data])
    rho = float(sequential.ratio_estimate(x, m, r))
    if 0.0 < rho < math.inf:
        assert (m * rho * r / (1.0 + rho * r)).sum() == pytest.approx(x.sum(), rel=1e-6, abs=1e-6)
