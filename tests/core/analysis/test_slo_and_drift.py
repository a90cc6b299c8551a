"""SLO gates on the canary alone, and equality-in-distribution (drift)."""

import math

import numpy as np
import pytest

from modelrollout.api.verdicts import Verdict
from modelrollout.core.analysis import checks, drift, samples, settings, slo

INF = math.inf


def canary_counts(requests, errors, intervals=1):
    return samples.CountSamples("errors", (samples.CountInterval(0, 0, requests, errors),) * intervals)


@pytest.mark.parametrize(
    "requests, errors, bound, closed, expected",
    [
        (1000, 30, checks.Slo(max=0.01), False, Verdict.FAIL),  # 3 % against 1 %, surely
        (100, 3, checks.Slo(max=0.01), False, Verdict.INCONCLUSIVE),  # 3 % of 100: could be noise
        (100, 3, checks.Slo(max=0.01), True, Verdict.INCONCLUSIVE),  # estimate beyond the bound
        (100, 0, checks.Slo(max=0.01), True, Verdict.PASS),  # estimate within, window closed
        (10000, 0, checks.Slo(max=0.01), False, Verdict.PASS),  # surely below 1 %
        (1000, 990, checks.Slo(min=0.95), False, Verdict.PASS),  # success ratio surely above 95 %
        (1000, 800, checks.Slo(min=0.95), False, Verdict.FAIL),
        (50, 40, checks.Slo(max=0.01), False, Verdict.INCONCLUSIVE),  # below min_requests
    ],
)
def test_rate_slo_worked_examples(requests, errors, bound, closed, expected):
    (result,) = slo.rate(canary_counts(requests, errors), bound, alpha=0.01, window_closed=closed)
    assert result.verdict is expected, result.reason


def test_rate_slo_interval_explains_the_verdict():
    (result,) = slo.rate(canary_counts(1000, 30), checks.Slo(max=0.01), alpha=0.01)
    lo, hi = result.interval
    assert 0.01 < lo < 0.03 < hi
    assert result.check == "slo-max" and "max 0.01" in result.reason


def test_an_slo_with_both_bounds_gives_two_results():
    found = slo.rate(canary_counts(1000, 30), checks.Slo(max=0.01, min=0.001), alpha=0.01)
    assert [(r.check, r.verdict) for r in found] == [("slo-max", Verdict.FAIL), ("slo-min", Verdict.PASS)]


def test_a_broken_query_is_an_error_for_every_bound():
    broken = samples.CountSamples("errors", error="timeout")
    found = slo.rate(broken, checks.Slo(max=0.01, min=0.0), alpha=0.01, window_closed=True)
    assert [r.verdict for r in found] == [Verdict.ERROR, Verdict.ERROR]


BOUNDS = (0.1, 0.25, 0.5, 1.0, INF)


def latency(canary, intervals=20):
    one = samples.HistogramInterval((0.0,) * len(BOUNDS), tuple(canary))
    return samples.HistogramSamples("latency", BOUNDS, (one,) * intervals)


@pytest.mark.parametrize(
    "canary, bound, expected",
    [
        ([900, 90, 9, 1, 0], checks.Slo(max=0.5), Verdict.PASS),  # 0.1 % above 0.5 s: p99 surely below
        ([700, 200, 50, 40, 10], checks.Slo(max=0.5), Verdict.FAIL),  # 5 % above 0.5 s
        ([700, 200, 50, 40, 10], checks.Slo(max=0.3), Verdict.FAIL),  # counted at le 0.5, conservatively
        ([700, 200, 50, 40, 10], checks.Slo(max=20.0), Verdict.INCONCLUSIVE),  # no bound beyond 20 s
    ],
)
def test_quantile_slo_worked_examples(canary, bound, expected):
    (result,) = slo.quantile(latency(canary), bound, 0.99, alpha=0.01)
    assert result.verdict is expected, result.reason


def test_quantile_slo_interval_is_a_pair_of_bucket_bounds():
    (result,) = slo.quantile(latency([700, 200, 50, 40, 10]), checks.Slo(max=0.5), 0.99, alpha=0.01)
    # Surely more than 1 % above 0.5 s; exactly 1 % above 1 s is not 'more than 1 %'; +Inf bounds nothing.
    assert result.interval == (0.5, INF)
    assert result.canary.value == pytest.approx(1.0)  # histogram_quantile caps at the last finite bound


@pytest.mark.parametrize(
    "bounds, limit, is_max, expected",
    [((0.1, 0.5, 1.0), 0.3, True, (1, 0)), ((0.1, 0.5, 1.0), 0.3, False, (0, 1)), ((0.1, 0.5), 0.05, True, (0, None))],
)
def test_bound_indices_are_conservative(bounds, limit, is_max, expected):
    import numpy as np

    assert slo._bound_indices(np.array(bounds), limit, is_max) == expected


@pytest.mark.parametrize(
    "measured, observations, bound, expected",
    [
        (0.7, 500, checks.Slo(max=0.9), Verdict.PASS),
        (0.95, 500, checks.Slo(max=0.9), Verdict.FAIL),
        (0.95, 50, checks.Slo(max=0.9), Verdict.INCONCLUSIVE),
        (math.nan, 500, checks.Slo(max=0.9), Verdict.INCONCLUSIVE),
        (0.1, 500, checks.Slo(min=0.2), Verdict.FAIL),
    ],
)
def test_point_value_gate(measured, observations, bound, expected):
    (result,) = slo.value("gpu-memory", measured, observations, bound, config=settings.DEFAULT)
    assert result.verdict is expected


@pytest.mark.parametrize("bound", [{}, {"max": 0.1, "min": 0.2}])
def test_slo_rejects_impossible_bounds(bound):
    with pytest.raises(ValueError):
        checks.Slo(**bound)


SCORES = (0.2, 0.4, 0.6, 0.8, INF)


def scores(stable, canary, intervals=40):
    one = samples.HistogramInterval(tuple(stable), tuple(canary))
    return samples.HistogramSamples("score", SCORES, (one,) * intervals)


@pytest.mark.parametrize(
    "stable, canary, closed, expected",
    [
        ([200, 300, 300, 150, 50], [20, 30, 30, 15, 5], False, Verdict.INCONCLUSIVE),
        ([200, 300, 300, 150, 50], [20, 30, 30, 15, 5], True, Verdict.PASS),
        ([200, 300, 300, 150, 50], [10, 20, 30, 25, 15], False, Verdict.FAIL),  # shifted up
        ([200, 300, 300, 150, 50], [35, 30, 20, 10, 5], False, Verdict.FAIL),  # shifted down
    ],
)
def test_drift_worked_examples(stable, canary, closed, expected):
    result = drift.compare_distributions(scores(stable, canary), 0.1, alpha=0.01, window_closed=closed)
    assert result.verdict is expected, result.reason
    assert result.check == "drift"


def test_drift_reason_names_the_boundary_with_the_largest_gap():
    result = drift.compare_distributions(scores([200, 300, 300, 150, 50], [10, 20, 30, 25, 15]), 0.1, alpha=0.01)
    assert "largest gap above le 0.8" in result.reason
    assert result.ratio == pytest.approx(3.0)


def test_identical_distributions_never_drift():
    same = [200, 300, 300, 150, 50]
    result = drift.compare_distributions(scores(same, same, intervals=200), 0.0, alpha=0.01, window_closed=True)
    assert result.verdict is Verdict.PASS
    assert result.p_value == 1.0


def test_a_rate_gate_tempered_for_bursts_needs_more_evidence():
    one = samples.CountInterval(1000, 10, 1000, 20)
    series = samples.CountSamples("e", (one,) * 10)
    plain = slo.rate(series, checks.Slo(max=0.01), alpha=0.01)[0]
    tempered = slo.rate(series, checks.Slo(max=0.01), alpha=0.01, dispersion=np.full(10, 3.0))[0]
    assert plain.e_value is not None and tempered.e_value is not None
    # a third of the evidence, give or take which of the mixture's alternatives fits best
    assert math.log(plain.e_value) / 3.0 - 2.0 < math.log(tempered.e_value) < math.log(plain.e_value) / 2.0
