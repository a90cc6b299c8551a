"""Combining a tick's results: worst wins, only FAIL rolls back, limits on errors and inconclusive windows."""

import pytest

from modelrollout.api.verdicts import Verdict
from modelrollout.core.analysis import checks, results, settings, verdicts

P, F, N, E = Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.ERROR  # N: not conclusive
Action = verdicts.Action


def found(*verdict_list):
    return [results.MetricResult(metric=f"m{i}", check="compare", verdict=v, reason="")
            for i, v in enumerate(verdict_list)]


@pytest.mark.parametrize(
    "given, expected",
    [([P, N], N), ([E, F], F), ([N, E], E), ([P, P], P), ([], P)],
)
def test_worst_wins_with_fail_above_error(given, expected):
    assert verdicts.worst(given) is expected


@pytest.mark.parametrize(
    "given, counters, closed, action, after",
    [
        ([P, F], verdicts.Counters(3, 1), False, Action.ROLLBACK, verdicts.Counters()),
        ([E, F], verdicts.Counters(), False, Action.ROLLBACK, verdicts.Counters()),  # an outage hides no FAIL
        ([P, E], verdicts.Counters(0, 0), False, Action.CONTINUE, verdicts.Counters(1, 0)),
        ([P, E], verdicts.Counters(4, 0), True, Action.HOLD, verdicts.Counters(5, 0)),  # never promotes
        ([P, N], verdicts.Counters(2, 0), False, Action.CONTINUE, verdicts.Counters(0, 0)),
        ([P, N], verdicts.Counters(0, 1), True, Action.CONTINUE, verdicts.Counters(0, 2)),  # one more window
        ([P, N], verdicts.Counters(0, 2), True, Action.HOLD, verdicts.Counters(0, 3)),
        ([P, P], verdicts.Counters(0, 2), True, Action.PROMOTE, verdicts.Counters()),
        ([P, P], verdicts.Counters(), False, Action.CONTINUE, verdicts.Counters()),  # steps last their duration
        ([], verdicts.Counters(), True, Action.PROMOTE, verdicts.Counters()),
    ],
)
def test_assess(given, counters, closed, action, after):
    assessment = verdicts.assess(found(*given), counters=counters, window_closed=closed)
    assert (assessment.action, assessment.counters) == (action, after), assessment.reason


def test_only_fail_rolls_back():
    for combination in ([E] * 10, [N] * 10):
        counters = verdicts.Counters()
        for closed in (False, True) * 5:
            assessment = verdicts.assess(found(*combination), counters=counters, window_closed=closed)
            assert assessment.action is not Action.ROLLBACK and assessment.action is not Action.PROMOTE
            counters = assessment.counters


def test_promote_early_needs_every_test_to_pass():
    early = settings.AnalysisSettings(promote_early=True)
    assert verdicts.assess(found(P, P), window_closed=False, config=early).action is Action.PROMOTE
    assert verdicts.assess(found(P, N), window_closed=False, config=early).action is Action.CONTINUE


def test_the_reason_names_the_deciding_metrics():
    assessment = verdicts.assess(found(P, F, N), window_closed=False)
    assert assessment.reason == "failed: m1 compare"


def test_alpha_is_split_over_every_test():
    metrics = [checks.MetricCheck("e", slo=checks.Slo(max=0.01), compare=checks.Comparison()),
               checks.MetricCheck("p99", compare=checks.Comparison(), quantile=0.99)]
    assert verdicts.alpha_per_test(settings.DEFAULT, metrics) == pytest.approx(0.01 / 3)
    assert verdicts.alpha_per_test(settings.DEFAULT, []) == pytest.approx(0.01)
