"""Absolute gates on the canary alone: `slo: {max, min}` on an event rate or a quantile.

A gate that compares a noisy point value with a bound fires on noise at low traffic ("one
transient 5xx = a huge %"), so each gate is an anytime-valid test of the canary's true value:

- FAIL only when the confidence sequence lies entirely beyond the bound (a `max: 0.01` error-rate
  SLO fails when the lower confidence bound exceeds 1 %);
- PASS surely when it lies entirely within; otherwise the pass rule decides when the window
  closes (`settings.slo_pass`, by default the point estimate must be within the bound).

Rates (errors per request) use the one-track e-process of `sequential` on the canary's counts;
it holds alpha whenever the canary's rate is within the bound in every interval, however the
rate moves with load. A quantile bound becomes a rate bound on the share beyond it: "p99 <= 0.5 s"
is "at most 1 % of requests slower than 0.5 s". Buckets only count at their bounds, so the FAIL
test counts beyond the first bound at or above the SLO value and the PASS test beyond the last
bound at or below it: both conservative, and said in the reason. The confidence sequence for the
quantile has bucket resolution: it is the pair of bucket bounds the quantile is known to lie
between.

`value()` is the plain point gate for values that have no counts (a gauge): it needs only the
minimum samples and carries no statistical guarantee.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from modelrollout.api import verdicts as api_verdicts
from modelrollout.core.analysis import buckets, checks, decisions, quality, results, samples, sequential, settings

FloatArray = NDArray[np.float64]
Verdict = api_verdicts.Verdict

#: Rates are clamped into this range: a bound of exactly 0 or 1 has no likelihood ratio.
RATE_FLOOR = 1e-9


def _limits(bound: checks.Slo) -> list[tuple[str, float]]:
    found = [("slo-max", bound.max)] if bound.max is not None else []
    return found + ([("slo-min", bound.min)] if bound.min is not None else [])


def _judged(evidence: decisions.Evidence, missing: str | None, alpha: float,
            config: settings.AnalysisSettings, window_closed: bool) -> tuple[Verdict, str]:
    if missing is not None:
        return Verdict.INCONCLUSIVE, f"not enough data: {missing}"
    return decisions.decide(evidence, alpha=alpha, window_closed=window_closed, rule=config.slo_pass)


def rate(
    series: samples.CountSamples,
    bound: checks.Slo,
    *,
    alpha: float,
    config: settings.AnalysisSettings = settings.DEFAULT,
    window_closed: bool = False,
    dispersion: FloatArray | None = None,
) -> tuple[results.MetricResult, ...]:
    """The canary's event rate against `bound`: one result per bound (max, min).

    `dispersion` (per interval, predictable, >= 1) tempers the evidence when errors come in bursts
    (`robust.dispersion`); the same Jensen argument as for the comparison keeps the test valid.

    e.g. canary 30 errors in 1000 requests against max 0.01, alpha 0.01 -> FAIL (CS about
    [0.017, 0.05]); 3 errors in 100 -> INCONCLUSIVE mid-window (CS [0.003, 0.12] holds 0.01).
    """
    if series.error is not None:
        return tuple(results.error(series.metric, check, f"cannot read {series.metric}: {series.error}")
                     for check, _ in _limits(bound))
    data = quality.counts(series)
    x, n = data.canary_events, data.canary_requests
    total = float(n.sum())
    value = float(x.sum()) / total if total > 0.0 else math.nan
    lo, hi = sequential.rate_bounds(x, n, alpha)
    missing = quality.shortfall(math.inf, total, math.inf, config)
    found = []
    for check, limit in _limits(bound):
        p0 = min(max(limit, RATE_FLOOR), 1.0 - RATE_FLOOR)
        upper_limit = check == "slo-max"
        phi = np.ones_like(x) if dispersion is None else dispersion
        log_fail = _log_e_max(x, n, p0, upper_limit, phi)
        evidence = decisions.Evidence(
            log_e_fail=log_fail,
            log_e_pass=_log_e_max(x, n, p0, not upper_limit, phi),
            estimate_ok=not math.isnan(value) and (value <= limit if upper_limit else value >= limit),
        )
        verdict, why = _judged(evidence, missing, alpha, config, window_closed)
        p = sequential.p_value(log_fail)
        reason = (
            f"{why}: canary rate {results.number(value)} ({decisions.confidence(alpha):.1%} CS "
            f"[{results.number(lo)}, {results.number(hi)}]) against {check[4:]} {results.number(limit)} "
            f"(p={p:.2g})"
        )
        found.append(results.MetricResult(
            metric=series.metric, check=check, verdict=verdict, reason=reason,
            canary=results.Track(total, float(x.sum()), value), interval=(lo, hi),
            confidence=decisions.confidence(alpha), e_value=math.exp(log_fail), p_value=p, alpha=alpha,
            window=data.window,
        ))
    return tuple(found)


def _log_e_max(events: FloatArray, trials: FloatArray, p0: float, upward: bool, dispersion: FloatArray) -> float:
    if events.shape[-1] == 0:
        return 0.0
    return max(0.0, float(sequential.rate_log_e(events, trials, p0, upward, dispersion).max()))


def quantile(
    series: samples.HistogramSamples,
    bound: checks.Slo,
    q: float,
    *,
    alpha: float,
    config: settings.AnalysisSettings = settings.DEFAULT,
    window_closed: bool = False,
) -> tuple[results.MetricResult, ...]:
    """The canary's q-quantile against `bound`, from its histogram: one result per bound.

    e.g. p99 against max 0.5 with buckets [0.1, 0.25, 0.5, 1, inf]: FAIL needs evidence that more
    than 1 % of requests are slower than 0.5 s; PASS surely needs evidence that fewer than 1 % are.
    """
    if series.error is not None:
        return tuple(results.error(series.metric, check, f"cannot read {series.metric}: {series.error}")
                     for check, _ in _limits(bound))
    data = quality.histograms(series)
    finite = data.bounds[:-1]
    n = data.canary.sum(axis=-1)
    above = (n[:, None] - np.cumsum(data.canary, axis=-1)[:, :-1]).T  # (J, T)
    # Per boundary j: evidence that the quantile is above bounds[j], and that it is at or below.
    beyond = _per_bound(above, n, 1.0 - q, upward=True)
    within = _per_bound(above, n, 1.0 - q, upward=False)
    level = sequential.threshold(alpha)
    lo, hi = _quantile_bounds(finite, beyond >= level, within >= level)
    value = buckets.histogram_quantile(q, data.bounds, data.canary.sum(axis=0))
    missing = quality.shortfall(math.inf, float(n.sum()), math.inf, config)
    found = []
    for check, limit in _limits(bound):
        fail_j, pass_j = _bound_indices(finite, limit, check == "slo-max")
        fail_e = beyond if check == "slo-max" else within
        pass_e = within if check == "slo-max" else beyond
        evidence = decisions.Evidence(
            log_e_fail=float(fail_e[fail_j]) if fail_j is not None else 0.0,
            log_e_pass=float(pass_e[pass_j]) if pass_j is not None else 0.0,
            estimate_ok=not math.isnan(value) and (value <= limit if check == "slo-max" else value >= limit),
        )
        verdict, why = _judged(evidence, missing, alpha, config, window_closed)
        tested = "no bucket bound beyond it" if fail_j is None else f"counted at le {results.number(finite[fail_j])}"
        found.append(_quantile_result(
            series.metric, check, limit, verdict, f"{why}: canary p{q * 100:.10g}", tested,
            results.Track(float(n.sum()), 0.0, value), (lo, hi), evidence.log_e_fail, alpha, data.window,
        ))
    return tuple(found)


def _quantile_result(
    metric: str, check: str, limit: float, verdict: Verdict, head: str, tested: str, canary: results.Track,
    interval: tuple[float, float], log_e_fail: float, alpha: float, window: results.Window,
) -> results.MetricResult:
    p = sequential.p_value(log_e_fail)
    reason = (
        f"{head} {results.number(canary.value)} ({decisions.confidence(alpha):.1%} CS "
        f"[{results.number(interval[0])}, {results.number(interval[1])}]) against {check[4:]} "
        f"{results.number(limit)}, {tested} (p={p:.2g})"
    )
    return results.MetricResult(
        metric=metric, check=check, verdict=verdict, reason=reason, canary=canary, interval=interval,
        confidence=decisions.confidence(alpha), e_value=math.exp(log_e_fail), p_value=p, alpha=alpha,
        window=window,
    )


def _per_bound(above: FloatArray, trials: FloatArray, p0: float, upward: bool) -> FloatArray:
    """Running-maximum log e-value per bucket bound: (J, T) counts above each bound -> (J,)."""
    if above.shape[-1] == 0:
        return np.zeros(above.shape[0])
    path = sequential.rate_log_e(above, trials, min(max(p0, RATE_FLOOR), 1.0 - RATE_FLOOR), upward)
    result: FloatArray = np.maximum(path.max(axis=-1), 0.0)
    return result


def _quantile_bounds(
    finite: FloatArray, above: NDArray[np.bool_], at_or_below: NDArray[np.bool_]
) -> tuple[float, float]:
    """The bucket bounds the quantile is known to lie between (0 and inf when unknown).

    _quantile_bounds([1, 2, 3], [True, False, False], [False, False, True]) -> (1.0, 3.0)
    """
    n_low = int(np.argmin(above)) if not above.all() else above.size
    n_high = int(np.argmin(at_or_below[::-1])) if not at_or_below.all() else at_or_below.size
    lower = float(finite[n_low - 1]) if n_low > 0 else 0.0
    upper = float(finite[finite.size - n_high]) if n_high > 0 else math.inf
    return lower, max(lower, upper)


def _bound_indices(finite: FloatArray, limit: float, is_max: bool) -> tuple[int | None, int | None]:
    """Which bucket bounds the FAIL and the PASS tests count at, conservatively, or None.

    For a max: FAIL at the first bound >= limit, PASS at the last bound <= limit. For a min:
    FAIL at the last bound < limit, PASS at the first bound >= limit.
    _bound_indices([0.1, 0.5, 1.0], 0.3, True) -> (1, 0)
    _bound_indices([0.1, 0.5, 1.0], 0.3, False) -> (0, 1)
    """
    at_or_above = np.flatnonzero(finite >= limit)
    first_up = int(at_or_above[0]) if at_or_above.size else None
    if is_max:
        at_or_below = np.flatnonzero(finite <= limit)
        return first_up, (int(at_or_below[-1]) if at_or_below.size else None)
    below = np.flatnonzero(finite < limit)
    return (int(below[-1]) if below.size else None), first_up


def value(
    metric: str,
    measured: float,
    observations: float,
    bound: checks.Slo,
    *,
    config: settings.AnalysisSettings = settings.DEFAULT,
) -> tuple[results.MetricResult, ...]:
    """A point gate on a value without counts: INCONCLUSIVE below the minimum samples or on nan.

    value("gpu-mem", 0.7, 500, Slo(max=0.9)) -> PASS; value("gpu-mem", nan, 500, ...) -> INCONCLUSIVE
    """
    found = []
    for check, limit in _limits(bound):
        missing = quality.shortfall(math.inf, observations, math.inf, config)
        if missing is None and math.isnan(measured):
            missing = "no value"
        if missing is not None:
            verdict, why = Verdict.INCONCLUSIVE, f"not enough data: {missing}"
        elif measured > limit if check == "slo-max" else measured < limit:
            verdict, why = Verdict.FAIL, "beyond the bound"
        else:
            verdict, why = Verdict.PASS, "within the bound"
        reason = f"{why}: canary {results.number(measured)} against {check[4:]} {results.number(limit)} (point value)"
        found.append(results.MetricResult(metric=metric, check=check, verdict=verdict, reason=reason,
                                          canary=results.Track(observations, 0.0, measured)))
    return tuple(found)
