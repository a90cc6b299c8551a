"""Canary against stable: anytime-valid comparisons with a direction and a tolerance.

Numbers in, a `MetricResult` out. Three comparisons, all on the conditional-binomial e-process
of `sequential` (events split between the tracks in proportion to each interval's traffic):

- `compare_counts`: an event rate (errors per request). Events are the errors.
- `compare_tail`: a quantile of a histogram (p99 latency). Events are the canary's observations
  beyond stable's quantile bucket boundary b, chosen predictably, and stable's beyond b scaled
  back by the tolerance (b / 1.1 for "10 % slower"), so the tolerance is on the value, as people
  mean it (see `buckets`).
- `compare_distributions`: equality in distribution (prediction-score or input drift). At every
  bucket boundary, events are the observations on the boundary's rarer side (chosen from the
  pooled data before each interval); both directions; the e-process is the average over
  boundaries and directions, so it holds alpha whichever boundary ends up showing the drift.

`judge()` runs every test a `MetricCheck` asks for on one metric (SLO gates from `slo`, and the
comparison here) and returns one result per test. Each test runs at the `alpha` it is given:
the caller splits the rollout's alpha (`verdicts.alpha_per_test`).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from modelrollout.api import verdicts as api_verdicts
from modelrollout.core.analysis import (
    buckets,
    checks,
    decisions,
    drift,
    quality,
    results,
    samples,
    sequential,
    settings,
    slo,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Verdict = api_verdicts.Verdict

#: Stable observations needed before a tail boundary is chosen, in units of 1 / tail share
#: (500 observations for p99): enough that the chosen bucket is not a coin flip.
BOUNDARY_OBSERVATIONS = 5.0


def judge(
    series: samples.CountSamples | samples.HistogramSamples,
    check: checks.MetricCheck,
    *,
    alpha: float,
    config: settings.AnalysisSettings = settings.DEFAULT,
    window_closed: bool = False,
) -> tuple[results.MetricResult, ...]:
    """Every test of one metric: its SLO bounds, then its comparison, each at level `alpha`.

    Count samples get `slo.rate` and `compare_counts`; histograms with a quantile get
    `slo.quantile` and `compare_tail`; histograms without one get `drift.compare_distributions`
    (an SLO needs a quantile there, so it answers ERROR: a configuration mistake must be seen).
    """
    found: list[results.MetricResult] = []
    closed = window_closed
    if isinstance(series, samples.HistogramSamples) and series.error is None and (
            len(series.bounds) < 2 or not series.intervals):
        # No buckets yet (nothing scraped since the window began): too little data, never a verdict.
        reason = f"{series.metric}: no histogram buckets yet"
        checks_asked = [("slo", check.slo), ("compare", check.compare)]
        return tuple(results.MetricResult(metric=check.name, check=name, verdict=Verdict.INCONCLUSIVE, reason=reason)
                     for name, asked in checks_asked if asked is not None)
    if isinstance(series, samples.CountSamples):
        if check.slo is not None:
            found += slo.rate(series, check.slo, alpha=alpha, config=config, window_closed=closed)
        if check.compare is not None:
            found.append(compare_counts(series, check.compare, alpha=alpha, config=config, window_closed=closed))
    elif check.quantile is None:
        if check.slo is not None:
            found.append(results.error(check.name, "slo", "an slo on a histogram needs a quantile"))
        if check.compare is not None:
            found.append(drift.compare_distributions(
                series, check.compare.tolerance, alpha=alpha, config=config, window_closed=closed))
    else:
        if check.slo is not None:
            found += slo.quantile(series, check.slo, check.quantile, alpha=alpha, config=config,
                                  window_closed=closed)
        if check.compare is not None:
            found.append(compare_tail(series, check.compare, check.quantile, alpha=alpha, config=config,
                                      window_closed=closed))
    return tuple(found)


def compare_counts(
    series: samples.CountSamples,
    comparison: checks.Comparison,
    *,
    alpha: float,
    config: settings.AnalysisSettings = settings.DEFAULT,
    window_closed: bool = False,
) -> results.MetricResult:
    """Is the canary's event rate within `comparison`'s tolerance of stable's?

    e.g. stable 10 errors in 1000 requests per interval, canary 3 in 100, for 20 intervals, at
    tolerance 0.1 and alpha 0.01 -> FAIL, ratio 3.0, CS about [2.3, 3.9].
    """
    if series.error is not None:
        return results.error(series.metric, "compare", f"cannot read {series.metric}: {series.error}")
    data = quality.counts(series)
    stable = _track(data.stable_requests, data.stable_events)
    canary = _track(data.canary_requests, data.canary_events)
    return _compare_shares(
        _Shares(series.metric, "compare", data.canary_events, data.stable_events,
                data.canary_requests, data.stable_requests, stable, canary, data.window),
        theta0=comparison.null_ratio, upward=comparison.upward,
        alpha=alpha, config=config, window_closed=window_closed,
        subject=f"canary rate {results.number(canary.value)} vs stable {results.number(stable.value)}",
    )


def tail_events(
    stable: FloatArray, canary: FloatArray, bounds: FloatArray, quantile: float, comparison: checks.Comparison,
) -> tuple[FloatArray, FloatArray, IntArray]:
    """Per-interval events of the tail test on (..., T, K) histograms: canary's, stable's, boundary.

    The canary's events are its observations beyond the predictable boundary b (above it for
    lower-is-better); stable's are its observations beyond b / null_ratio, so that "canary's
    quantile at most null_ratio times stable's" becomes "canary's share beyond b at most stable's
    beyond b / null_ratio": a ratio of 1 is the tolerance. Intervals without a boundary have none.
    """
    upper = comparison.upward
    tail = 1.0 - quantile if upper else quantile
    boundary = buckets.predictable_boundaries(stable, tail, upper, BOUNDARY_OBSERVATIONS / tail)
    has = boundary >= 0
    scaled = bounds[np.maximum(boundary, 0)] / comparison.null_ratio
    x_c = buckets.counts_beyond(canary, boundary, upper)
    x_s = np.where(has, buckets.counts_beyond_value(stable, bounds, scaled, upper), 0.0)
    return x_c, x_s, boundary


def compare_tail(
    series: samples.HistogramSamples,
    comparison: checks.Comparison,
    quantile: float,
    *,
    alpha: float,
    config: settings.AnalysisSettings = settings.DEFAULT,
    window_closed: bool = False,
) -> results.MetricResult:
    """Is the canary's `quantile` beyond stable's by more than the tolerance (on the value)?

    For lower-is-better the bad side is above the boundary (slow requests); for higher-is-better
    it is below. See `tail_events` for how the tolerance becomes a comparison of counts.
    """
    if series.error is not None:
        return results.error(series.metric, "compare", f"cannot read {series.metric}: {series.error}")
    data = quality.histograms(series)
    upper = comparison.upward
    x_c, x_s, boundary = tail_events(data.stable, data.canary, data.bounds, quantile, comparison)
    n_c, n_s = data.canary.sum(axis=-1), data.stable.sum(axis=-1)
    stable = _track(n_s, x_s, buckets.histogram_quantile(quantile, data.bounds, data.stable.sum(axis=0)))
    canary = _track(n_c, x_c, buckets.histogram_quantile(quantile, data.bounds, data.canary.sum(axis=0)))
    has = boundary >= 0  # intervals with a boundary: the only ones the shares count
    chosen = boundary[has]
    side = "above" if upper else "at or below"
    name = f"p{_percent(quantile)}"
    if chosen.size:
        at = float(data.bounds[chosen[-1]])
        where = (f"canary {_share(x_c, n_c * has)} {side} {results.number(at)} vs stable "
                 f"{_share(x_s, n_s * has)} {side} {results.number(at / comparison.null_ratio)}")
    else:
        where = "no boundary yet"
    return _compare_shares(
        _Shares(series.metric, "compare", x_c, x_s, n_c, n_s, stable, canary, data.window),
        theta0=1.0, upward=True, alpha=alpha, config=config, window_closed=window_closed,
        ratio_of="ratio of those shares",
        subject=(f"canary {name} {results.number(canary.value)} vs stable {results.number(stable.value)}, "
                 f"tolerated x{results.number(comparison.null_ratio)}; {where}"),
    )


class _Shares:
    """Per-interval events and exposures of both tracks, with what to report about them."""

    def __init__(
        self, metric: str, check: str, x_c: FloatArray, x_s: FloatArray, n_c: FloatArray, n_s: FloatArray,
        stable: results.Track, canary: results.Track, window: results.Window,
    ) -> None:
        informative = (n_c > 0.0) & (n_s > 0.0)
        self.metric, self.check, self.stable, self.canary, self.window = metric, check, stable, canary, window
        self.events = np.where(informative, x_c, 0.0)
        self.total = np.where(informative, x_c + x_s, 0.0)
        self.exposure = np.where(informative, n_c / np.where(informative, n_s, 1.0), 1.0)


def _compare_shares(
    shares: _Shares, *, theta0: float, upward: bool, alpha: float,
    config: settings.AnalysisSettings, window_closed: bool, subject: str, ratio_of: str = "ratio",
) -> results.MetricResult:
    """The comparison both count and tail tests share, from events split between the tracks."""
    missing = quality.shortfall(shares.stable.requests, shares.canary.requests,
                                shares.stable.events + shares.canary.events, config)
    ratio = float(sequential.ratio_estimate(shares.events, shares.total, shares.exposure))
    lo, hi = sequential.ratio_bounds(shares.events, shares.total, shares.exposure, alpha)
    log_fail = _log_e_max(shares, theta0, upward)
    evidence = decisions.Evidence(
        log_e_fail=log_fail,
        log_e_pass=_log_e_max(shares, theta0, not upward),
        estimate_ok=not math.isnan(ratio) and (ratio <= theta0 if upward else ratio >= theta0),
    )
    if missing is not None:
        verdict, why = Verdict.INCONCLUSIVE, f"not enough data: {missing}"
    else:
        verdict, why = decisions.decide(evidence, alpha=alpha, window_closed=window_closed, rule=config.compare_pass)
    p = sequential.p_value(log_fail)
    level = decisions.confidence(alpha)
    reason = (
        f"{why}: {subject} ({ratio_of} {results.number(ratio)}, {level:.1%} CS "
        f"[{results.number(lo)}, {results.number(hi)}], tolerance {results.number(theta0)}, p={p:.2g})"
    )
    return results.MetricResult(
        metric=shares.metric, check=shares.check, verdict=verdict, reason=reason,
        stable=shares.stable, canary=shares.canary, ratio=ratio, interval=(lo, hi), confidence=level,
        e_value=math.exp(log_fail), p_value=p, alpha=alpha, window=shares.window,
    )


def _log_e_max(shares: _Shares, theta0: float, upward: bool) -> float:
    if shares.events.size == 0:
        return 0.0
    log_lr = sequential.share_log_lr(shares.events, shares.total, shares.exposure, theta0,
                                     sequential.signed_offsets(upward))
    return max(0.0, float(sequential.log_mixture_path(log_lr).max()))


def _track(requests: FloatArray, events: FloatArray, value: float | None = None) -> results.Track:
    """A track's totals, with its event rate as the value unless a value (a quantile) is given."""
    total, count = float(requests.sum()), float(events.sum())
    if value is None:
        value = count / total if total > 0.0 else math.nan
    return results.Track(total, count, value)


def _share(events: FloatArray, requests: FloatArray) -> str:
    """Events as a share of requests, for a reason string: _share([1, 1], [50, 50]) -> "2.00%"."""
    total = float(requests.sum())
    return f"{float(events.sum()) / total:.2%}" if total > 0.0 else "n/a"


def _percent(quantile: float) -> str:
    """The quantile as people name it: 0.99 -> "99", 0.5 -> "50", 0.999 -> "99.9"."""
    return f"{quantile * 100:.10g}"
