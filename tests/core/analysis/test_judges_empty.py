"""A histogram with no buckets yet (nothing scraped since the window began) is Inconclusive."""

from __future__ import annotations

import math

import pytest

from modelrollout.api.verdicts import Verdict
from modelrollout.core.analysis import checks, judges, samples


@pytest.mark.parametrize("series", [
    samples.HistogramSamples("p99-latency", (math.inf,)),
    samples.HistogramSamples("p99-latency", (0.1, math.inf)),
    samples.HistogramSamples("p99-latency", (math.inf,), (samples.HistogramInterval((5.0,), (1.0,)),)),
])
@pytest.mark.parametrize("quantile", [0.99, None])
def test_no_buckets_yet_is_inconclusive_for_every_check(
        series: samples.HistogramSamples, quantile: float | None) -> None:
    check = checks.MetricCheck("p99-latency", slo=checks.Slo(max=0.5) if quantile else None,
                               compare=checks.Comparison(tolerance=0.2), quantile=quantile)
    found = judges.judge(series, check, alpha=0.01, window_closed=True)
    assert found and all(r.verdict is Verdict.INCONCLUSIVE for r in found)
