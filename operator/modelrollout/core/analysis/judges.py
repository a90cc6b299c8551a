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

import dataclasses
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
    robust,
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
            found += slo.rate(series, check.slo, alpha=alpha, config=config, window_closed=closed,
                              dispersion=_dispersion(series))
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
    """Is the canary's event rate within `comparison`'s tolerance of stable's, beyond pod spread?

    e.g. stable 10 errors in 1000 requests per interval, canary 3 in 100, for 20 intervals, at
    tolerance 0.1 and alpha 0.01 -> FAIL, ratio 3.0, CS about [2.3, 3.9].
    """
    if series.error is not None:
        return results.error(series.metric, "compare", f"cannot read {series.metric}: {series.error}")
    data = quality.counts(series)
    stable_pods, canary_pods = count_pods(series, data)
    stable = _track(data.stable_requests, data.stable_events)
    canary = _track(data.canary_requests, data.canary_events)
    return _compare_shares(
        _Shares(series.metric, "compare", stable_pods, canary_pods, stable, canary, data.window),
        theta0=comparison.null_ratio, upward=comparison.upward,
        alpha=alpha, config=config, window_closed=window_closed,
        subject=f"canary rate {results.number(canary.value)} vs stable {results.number(stable.value)}",
    )


def _dispersion(series: samples.CountSamples) -> FloatArray | None:
    """Per-interval predictable dispersion of a count series, for the one-track SLO gates."""
    if series.error is not None:
        return None
    data = quality.counts(series)
    stable_pods, canary_pods = count_pods(series, data)
    return robust.dispersion(stable_pods, canary_pods)


def compare_goal(
    series: samples.CountSamples,
    minimum_effect: float,
    *,
    alpha: float,
    config: settings.AnalysisSettings = settings.DEFAULT,
    window_closed: bool = False,
) -> results.MetricResult:
    """An A/B test's goal: has the challenger's rate of good outcomes (conversions per request) risen
    by more than `minimum_effect` over the champion's?

    The mirror of `compare_counts`' non-inferiority test: PASS (a win) when the evidence excludes
    "at most 1 + minimum_effect times the champion's rate", FAIL (a loss) when it excludes "at least
    1 + minimum_effect", INCONCLUSIVE (undecided) otherwise, also when the window closes: a test that
    has not shown a win never promotes. Both tests are anytime-valid at `alpha`, tempered for
    bursts and widened for pod spread like every comparison.

    e.g. champion 40 conversions in 1000 requests per interval, challenger 60 in 1000, for 30
    intervals, minimum effect 0.02 -> PASS (ratio 1.5, CS about [1.3, 1.7]).
    """
    if series.error is not None:
        return results.error(series.metric, "goal", f"cannot read {series.metric}: {series.error}")
    if minimum_effect < 0.0:
        raise ValueError(f"minimum_effect must not be negative, got {minimum_effect}")
    data = quality.counts(series)
    stable_pods, canary_pods = count_pods(series, data)
    stable = _track(data.stable_requests, data.stable_events)
    canary = _track(data.canary_requests, data.canary_events)
    target = 1.0 + minimum_effect
    win = robust.compare(stable_pods, canary_pods, target, True, alpha)
    loss = robust.compare(stable_pods, canary_pods, target, False, alpha)
    x = canary_pods.total_events
    n_c, n_s = canary_pods.total_requests, stable_pods.total_requests
    informative = (n_c > 0.0) & (n_s > 0.0)
    events = np.where(informative, x, 0.0)
    total = np.where(informative, x + stable_pods.total_events, 0.0)
    exposure = np.where(informative, n_c / np.where(informative, n_s, 1.0), 1.0)
    ratio = float(sequential.ratio_estimate(events, total, exposure))
    lo, hi = sequential.ratio_bounds(events, total, exposure, alpha, dispersion=win.dispersion)
    level = sequential.threshold(alpha)
    missing = quality.shortfall(stable.requests, canary.requests, stable.events + canary.events, config)
    if missing is not None:
        verdict, why = Verdict.INCONCLUSIVE, f"not enough data: {missing}"
    # Each outcome needs both the per-pod test and the shown interval to exclude the other: the
    # interval pools the pods, so near the boundary the two can disagree, and a win must be one the
    # status can show (a CS above 1 + minimumEffect).
    elif win.log_e_decisive >= level and lo > target:
        verdict, why = Verdict.PASS, "the challenger wins"
    elif loss.log_e_decisive >= level and hi < target:
        verdict, why = Verdict.FAIL, "the challenger cannot win"
    else:
        verdict, why = Verdict.INCONCLUSIVE, "undecided" if window_closed else "collecting evidence"
    confidence = decisions.confidence(alpha)
    allowances = robust.describe(win)
    reason = (
        f"{why}: challenger {results.number(canary.value)} vs champion {results.number(stable.value)} (ratio "
        f"{results.number(ratio)}, {confidence:.1%} CS [{results.number(lo)}, {results.number(hi)}], a win needs "
        f"more than x{results.number(target)}{'; ' + allowances if allowances else ''})"
    )
    return results.MetricResult(
        metric=series.metric, check="goal", verdict=verdict, reason=reason, stable=stable, canary=canary,
        ratio=ratio, interval=(lo, hi), confidence=confidence, e_value=math.exp(win.log_e_decisive),
        p_value=sequential.p_value(win.log_e_decisive), alpha=alpha, window=data.window,
        dispersion=win.dispersion, pod_spread=win.spread,
    )


def count_pods(series: samples.CountSamples, data: quality.Counts) -> tuple[robust.Pods, robust.Pods]:
    """Per-pod counts of each track (each track one pod when the source cannot tell pods apart), with
    the intervals the quality gate dropped zeroed for every pod."""
    if not series.pods:
        return (robust.single_pod(data.stable_requests, data.stable_events),
                robust.single_pod(data.canary_requests, data.canary_events))
    tracks = []
    for canary in (False, True):
        chosen = [pod for pod in series.pods if pod.canary is canary] or [
            samples.PodCounts("", canary, (0.0,) * len(series.intervals), (0.0,) * len(series.intervals))]
        n = np.array([pod.requests for pod in chosen], dtype=np.float64).reshape(len(chosen), -1)
        x = np.array([pod.events for pod in chosen], dtype=np.float64).reshape(len(chosen), -1)
        usable = data.valid[None, :] & np.isfinite(n) & np.isfinite(x) & (n >= 0.0) & (x >= 0.0)
        tracks.append(robust.Pods(np.where(usable, n, 0.0), np.where(usable, np.minimum(x, n), 0.0)))
    return tracks[0], tracks[1]


def tail_events(
    stable: FloatArray, canary: FloatArray, bounds: FloatArray, quantile: float, comparison: checks.Comparison,
    per_pod: bool = False,
) -> TailEvents:
    """The tail test's counts on (..., T, K) histograms, or (..., P, T, K) ones with `per_pod`.

    The boundary b of each interval is chosen from stable's data before it, and so is the next
    bound beyond it (the quantile may move a bucket or the regression may show further out): two
    candidates, with a leading axis of 2 on every count. The canary's events are its observations
    beyond a candidate (above it for lower-is-better); stable's are its observations beyond the
    edges `buckets.edges_for` picks: b- for the FAIL test, b+ for the PASS test, so that "the
    canary's quantile at most null_ratio times stable's" is tested at ratio 1 on whole buckets.
    Intervals without a boundary have no events.
    """
    upper = comparison.upward
    tail = 1.0 - quantile if upper else quantile
    primary = buckets.predictable_boundaries(stable.sum(axis=-3) if per_pod else stable, tail, upper,
                                             BOUNDARY_OBSERVATIONS / tail)
    further = primary + 1 if upper else primary - 1
    finite = len(bounds) - 1
    further = np.where((primary >= 0) & (further >= 0) & (further < finite), further, -1)
    boundary = np.stack([primary, further])
    fail_edge, pass_edge = buckets.edges_for(bounds, boundary, comparison.null_ratio, upper)
    has = boundary >= 0

    def beyond(counts: FloatArray, edge: IntArray) -> FloatArray:
        where, at = (has[..., None, :], edge[..., None, :]) if per_pod else (has, edge)
        shape = (2, *counts.shape[:-1])
        found: FloatArray = np.where(where, buckets.counts_beyond_edge(
            np.broadcast_to(counts, (2, *counts.shape)), np.broadcast_to(at, shape), upper), 0.0)
        return found

    return TailEvents(boundary=boundary, canary=beyond(canary, boundary), stable_fail=beyond(stable, fail_edge),
                      stable_pass=beyond(stable, pass_edge), fail_edge=fail_edge, pass_edge=pass_edge)


class TailEvents:
    """Per-interval counts of the tail test, per candidate boundary (leading axis of 2): the canary's
    beyond b, stable's beyond b- and b+."""

    def __init__(self, boundary: IntArray, canary: FloatArray, stable_fail: FloatArray, stable_pass: FloatArray,
                 fail_edge: IntArray, pass_edge: IntArray) -> None:
        self.boundary, self.canary, self.stable_fail, self.stable_pass = boundary, canary, stable_fail, stable_pass
        self.fail_edge, self.pass_edge = fail_edge, pass_edge


def histogram_pods(series: samples.HistogramSamples, data: quality.Histograms) -> tuple[FloatArray, FloatArray]:
    """Per-pod bucket increments (P, T, K) of each track, dropped intervals zeroed; one pod per track
    when the source cannot tell pods apart."""
    if not series.pods:
        return data.stable[None], data.canary[None]
    shape = (len(series.intervals), len(series.bounds))
    tracks = []
    for canary in (False, True):
        chosen = [np.array(pod.buckets, dtype=np.float64).reshape(shape) for pod in series.pods if pod.canary is canary]
        counts = np.stack(chosen) if chosen else np.zeros((1, *shape))
        usable = data.valid[None, :, None] & np.isfinite(counts) & (counts >= 0.0)
        tracks.append(np.where(usable, counts, 0.0))
    return tracks[0], tracks[1]


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
    it is below. See `tail_events` for how the tolerance becomes counts on whole buckets, and
    `buckets.resolvable_tolerance` for what the buckets can tell.
    """
    if series.error is not None:
        return results.error(series.metric, "compare", f"cannot read {series.metric}: {series.error}")
    data = quality.histograms(series)
    upper = comparison.upward
    stable_pods, canary_pods = histogram_pods(series, data)
    found = tail_events(stable_pods, canary_pods, data.bounds, quantile, comparison, per_pod=True)
    has = found.boundary >= 0  # (2, T)
    n_c = np.where(has[:, None, :], canary_pods.sum(axis=-1), 0.0)  # (2, P, T)
    n_s = np.where(has[:, None, :], stable_pods.sum(axis=-1), 0.0)
    x_c, x_s = found.canary[0].sum(axis=0), found.stable_fail[0].sum(axis=0)
    stable = _track(n_s[0].sum(axis=0), x_s,
                    buckets.histogram_quantile(quantile, data.bounds, data.stable.sum(axis=0)))
    canary = _track(n_c[0].sum(axis=0), x_c,
                    buckets.histogram_quantile(quantile, data.bounds, data.canary.sum(axis=0)))
    name = f"p{_percent(quantile)}"
    chosen = np.flatnonzero(has[0])
    resolution = ""
    coarse = None
    if chosen.size:
        last = int(found.boundary[0, chosen[-1]])
        at = float(data.bounds[last])
        side = "above" if upper else "at or below"
        _, theta_fail = buckets.resolvable_tolerance(data.bounds, last, comparison.null_ratio, upper)
        fail_at = _edge_value(data.bounds, int(found.fail_edge[0, chosen[-1]]), upper)
        where = "; ".join(
            f"canary {_share(found.canary[j].sum(axis=0), n_c[j].sum(axis=0))} {side} "
            f"{results.number(float(data.bounds[int(found.boundary[j, chosen[-1]])]))} vs stable "
            f"{_share(found.stable_fail[j].sum(axis=0), n_s[j].sum(axis=0))} {side} "
            f"{_edge_value(data.bounds, int(found.fail_edge[j, chosen[-1]]), upper)}"
            for j in range(2) if found.boundary[j, chosen[-1]] >= 0)
        resolution = f"; the buckets resolve x{results.number(theta_fail)} here"
        if _too_coarse(theta_fail, comparison.null_ratio):
            coarse = (f"{name} tolerance {comparison.tolerance:.0%}: these buckets can only show a regression "
                      f"beyond x{results.number(theta_fail)} (edges {fail_at} and {results.number(at)})")
    else:
        where = "no boundary yet"
    result = _compare_shares(
        _Shares(series.metric, "compare", robust.Pods(n_s, found.stable_fail), robust.Pods(n_c, found.canary),
                stable, canary, data.window,
                pass_pods=(robust.Pods(n_s, found.stable_pass), robust.Pods(n_c, found.canary)), candidates=True),
        theta0=1.0, upward=True, alpha=alpha, config=config, window_closed=window_closed,
        ratio_of="ratio of those shares",
        subject=(f"canary {name} {results.number(canary.value)} vs stable {results.number(stable.value)}, "
                 f"tolerated x{results.number(comparison.null_ratio)}; {where}{resolution}"),
    )
    return dataclasses.replace(result, warning=coarse)


def _edge_value(bounds: FloatArray, edge: int, upper: bool) -> str:
    if 0 <= edge < bounds.size - 1:
        return results.number(float(bounds[edge]))
    return "0" if upper else "+Inf"


def _too_coarse(theta_fail: float, null_ratio: float) -> bool:
    """The buckets test a ratio more than 1.5 times beyond the tolerated one: a regression of the
    size asked about cannot fail this test."""
    return theta_fail > 1.5 * null_ratio if null_ratio >= 1.0 else theta_fail < null_ratio / 1.5


class _Shares:
    """Per-pod events and exposures of both tracks, with what to report about them.

    `pass_pods` gives the PASS test other stable events than the FAIL test (the tail test's b+)."""

    def __init__(
        self, metric: str, check: str, stable_pods: robust.Pods, canary_pods: robust.Pods,
        stable: results.Track, canary: results.Track, window: results.Window,
        pass_pods: tuple[robust.Pods, robust.Pods] | None = None, candidates: bool = False,
    ) -> None:
        self.metric, self.check, self.stable, self.canary, self.window = metric, check, stable, canary, window
        self.fail_pods = (stable_pods, canary_pods)
        self.pass_pods = pass_pods or self.fail_pods
        self.candidates = candidates
        """The pods' leading axis holds candidate event definitions (tail boundaries), averaged."""


def _compare_shares(
    shares: _Shares, *, theta0: float, upward: bool, alpha: float,
    config: settings.AnalysisSettings, window_closed: bool, subject: str, ratio_of: str = "ratio",
) -> results.MetricResult:
    """The comparison both count and tail tests share, from events split between the tracks."""
    missing = quality.shortfall(shares.stable.requests, shares.canary.requests,
                                shares.stable.events + shares.canary.events, config)
    stable_pods, canary_pods = shares.fail_pods
    fail = robust.compare(stable_pods, canary_pods, theta0, upward, alpha, candidates=shares.candidates)
    passing = robust.compare(*shares.pass_pods, theta0, not upward, alpha, candidates=shares.candidates)
    primary = (0,) if shares.candidates else ()  # the estimate and interval of the primary definition
    x = canary_pods.total_events[primary]
    n_c, n_s = canary_pods.total_requests[primary], stable_pods.total_requests[primary]
    informative = (n_c > 0.0) & (n_s > 0.0)
    events = np.where(informative, x, 0.0)
    total = np.where(informative, x + stable_pods.total_events[primary], 0.0)
    exposure = np.where(informative, n_c / np.where(informative, n_s, 1.0), 1.0)
    ratio = float(sequential.ratio_estimate(events, total, exposure))
    lo, hi = sequential.ratio_bounds(events, total, exposure, alpha, dispersion=fail.dispersion)
    widened = theta0 * fail.allowance if upward else theta0 / fail.allowance
    evidence = decisions.Evidence(
        log_e_fail=fail.log_e_decisive,
        log_e_pass=passing.log_e_decisive,
        estimate_ok=not math.isnan(ratio) and (ratio <= theta0 if upward else ratio >= theta0),
        shows_regression=(ratio > widened and lo > theta0) if upward else (ratio < widened and hi < theta0),
    )
    if missing is not None:
        verdict, why = Verdict.INCONCLUSIVE, f"not enough data: {missing}"
    else:
        verdict, why = decisions.decide(evidence, alpha=alpha, window_closed=window_closed, rule=config.compare_pass)
    if verdict is not Verdict.FAIL and fail.log_e >= sequential.threshold(alpha) > fail.log_e_now:
        why += " (the spread between stable pods explains the excess)"
    p = sequential.p_value(evidence.log_e_fail)
    level = decisions.confidence(alpha)
    allowances = robust.describe(fail)
    reason = (
        f"{why}: {subject} ({ratio_of} {results.number(ratio)}, {level:.1%} CS "
        f"[{results.number(lo)}, {results.number(hi)}], tolerance {results.number(theta0)}, p={p:.2g}"
        f"{'; ' + allowances if allowances else ''})"
    )
    return results.MetricResult(
        metric=shares.metric, check=shares.check, verdict=verdict, reason=reason,
        stable=shares.stable, canary=shares.canary, ratio=ratio, interval=(lo, hi), confidence=level,
        e_value=math.exp(evidence.log_e_fail), p_value=p, alpha=alpha, window=shares.window,
        dispersion=fail.dispersion, pod_spread=fail.spread,
    )


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
