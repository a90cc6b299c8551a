"""Equality in distribution, sequentially: has the canary's histogram drifted from stable's?

For prediction scores and input features there is no "worse" direction, only "different". The
test looks at every finite bucket boundary j of the 2 x K table of counts:

- the events of boundary j are the observations on its rarer side (above it when the pooled
  data *before* the interval put less than half above, else at or below it): a predictable choice,
  so validity holds, and the rarer side is where a shift changes the share most;
- given the events' total in the interval, the canary's count is binomial with the canary's
  traffic share under "no drift" (`sequential`, the same conditioning as for error counts), so
  the e-process is exact under identical distributions, whatever the shared time variation;
- each boundary is tested in both directions against the tolerated ratio (1 + tol above,
  1 / (1 + tol) below), with the usual mixture over alternatives;
- the drift e-process is the *average* of all 2 (K - 1) boundary-direction e-processes. An average
  of e-processes on one filtration is an e-process, so it holds alpha whichever boundary turns
  out to carry the drift, at the price of log(2 (K - 1)) nats of evidence.

Why not one multinomial likelihood ratio over the whole table: conditioning on both margins of
each interval's table makes the product of per-bucket binomials an invalid null (the bucket
counts are negatively dependent given the canary's total, so opposite-sign deviations inflate
it); the per-boundary tests are two-colour tables, where the binomial bound is exact.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from modelrollout.api import verdicts as api_verdicts
from modelrollout.core.analysis import buckets, decisions, quality, results, samples, sequential, settings

FloatArray = NDArray[np.float64]


def components(stable: FloatArray, canary: FloatArray, tolerance: float) -> FloatArray:
    """Per-interval log ratios of every drift alternative: (..., T, K) counts -> (..., T, J, 2 L).

    J = K - 1 boundaries; for each, L upward then L downward alternatives. Vectorised over
    leading axes, so the benchmark runs it over thousands of rollouts at once.
    """
    pooled = stable + canary
    past = np.cumsum(pooled, axis=-2) - pooled
    upper = ~(buckets.tail_shares(past) > 0.5)  # (..., T, J); no past data (nan) counts as above
    below_c = np.cumsum(canary, axis=-1)[..., :-1]
    below_s = np.cumsum(stable, axis=-1)[..., :-1]
    n_c, n_s = canary.sum(axis=-1), stable.sum(axis=-1)
    x_c = np.where(upper, n_c[..., None] - below_c, below_c)
    x_s = np.where(upper, n_s[..., None] - below_s, below_s)
    informative = ((n_c > 0.0) & (n_s > 0.0))[..., None]
    x = np.where(informative, x_c, 0.0)
    m = np.where(informative, x_c + x_s, 0.0)
    r = np.broadcast_to(np.where(informative, n_c[..., None] / np.where(n_s > 0.0, n_s, 1.0)[..., None], 1.0), x.shape)
    # share_log_lr wants the intervals last: put the boundary axis in front of them, then back.
    x, m, r = (np.moveaxis(a, -1, -2) for a in (x, m, r))
    theta_up = 1.0 + tolerance
    up = sequential.share_log_lr(x, m, r, theta_up, sequential.signed_offsets(True))
    down = sequential.share_log_lr(x, m, r, 1.0 / theta_up, sequential.signed_offsets(False))
    result: FloatArray = np.moveaxis(np.concatenate([up, down], axis=-1), -3, -2)
    return result


def log_e_path(stable: FloatArray, canary: FloatArray, tolerance: float) -> FloatArray:
    """The drift e-process (log) at every interval: (..., T, K) counts -> (..., T)."""
    parts = components(stable, canary, tolerance)
    return sequential.log_mixture_path(parts.reshape(*parts.shape[:-2], -1))


def compare_distributions(
    series: samples.HistogramSamples,
    tolerance: float,
    *,
    alpha: float,
    config: settings.AnalysisSettings = settings.DEFAULT,
    window_closed: bool = False,
) -> results.MetricResult:
    """Has the canary's distribution moved beyond `tolerance` at any bucket boundary?

    Only FAIL or "no evidence": equality cannot be shown surely, so PASS comes from the pass
    rule at the end of a window. `stable`/`canary` report each track's median.
    """
    if series.error is not None:
        return results.error(series.metric, "drift", f"cannot read {series.metric}: {series.error}")
    data = quality.histograms(series)
    n_s, n_c = float(data.stable.sum()), float(data.canary.sum())
    stable = results.Track(n_s, 0.0, buckets.histogram_quantile(0.5, data.bounds, data.stable.sum(axis=0)))
    canary = results.Track(n_c, 0.0, buckets.histogram_quantile(0.5, data.bounds, data.canary.sum(axis=0)))
    log_e = 0.0
    if data.stable.shape[0] and data.bounds.size > 1:
        log_e = max(0.0, float(log_e_path(data.stable, data.canary, tolerance).max()))
    missing = quality.shortfall(n_s, n_c, math.inf, config)
    evidence = decisions.Evidence(log_e_fail=log_e, log_e_pass=0.0, estimate_ok=True)
    if missing is not None:
        verdict, why = api_verdicts.Verdict.INCONCLUSIVE, f"not enough data: {missing}"
    else:
        verdict, why = decisions.decide(evidence, alpha=alpha, window_closed=window_closed, rule=config.compare_pass)
    p = sequential.p_value(log_e)
    where, ratio = _largest_gap(data.stable.sum(axis=0), data.canary.sum(axis=0), data.bounds)
    reason = (
        f"{why}: median canary {results.number(canary.value)} vs stable {results.number(stable.value)}; "
        f"{where} (tolerance {results.number(1.0 + tolerance)}, p={p:.2g})"
    )
    return results.MetricResult(
        metric=series.metric, check="drift", verdict=verdict, reason=reason, stable=stable, canary=canary,
        ratio=ratio, e_value=math.exp(log_e), p_value=p, alpha=alpha, window=data.window,
    )


def _largest_gap(stable: FloatArray, canary: FloatArray, bounds: FloatArray) -> tuple[str, float | None]:
    """Where the two histograms differ most, as the ratio of shares on a boundary's rarer side.

    _largest_gap([50, 50, 0], [30, 70, 0], [1, 2, inf]) -> ("largest gap above le 1: ...", 1.4)
    """
    if bounds.size < 2 or stable.sum() <= 0.0 or canary.sum() <= 0.0:
        return "no comparison yet", None
    above_s = buckets.tail_shares(stable)
    above_c = buckets.tail_shares(canary)
    pooled_above = buckets.tail_shares(stable + canary)
    upper = ~(pooled_above > 0.5)
    share_s = np.where(upper, above_s, 1.0 - above_s)
    share_c = np.where(upper, above_c, 1.0 - above_c)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.abs(np.log(share_c / share_s))
    gap = np.where(np.isfinite(gap), gap, -1.0)
    j = int(np.argmax(gap))
    side = "above" if upper[j] else "at or below"
    ratio = float(share_c[j] / share_s[j]) if share_s[j] > 0.0 else math.inf
    text = (
        f"largest gap {side} le {results.number(float(bounds[j]))}: canary {share_c[j]:.1%} vs stable "
        f"{share_s[j]:.1%}"
    )
    return text, ratio
