"""The judges the Prometheus bench runs, each behind one interface: `Judge(reading, test) -> Verdicts`.

A judge reads one read path's numbers for many rollouts and says, per rollout, at which interval
it would first have answered FAIL, and where its data-quality gate was met. Swapping the judge
under test is one entry in `JUDGES`:

- `robust`: the core's judge (`judges.judge()`): the conditional binomial tempered by a
  predictable dispersion and widened for pod spread, both learnt from the stable pods, with the
  veto of the allowances all data show; tails on whole bucket edges. Vectorised with the core's
  own `robust.first_failure` on the same per-pod arrays `judges.count_pods` and
  `judges.histogram_pods` build; `cross_check` replays single rollouts through `judges.judge()`
  tick by tick to prove it.
- `binomial`: the judge before issue 10 (the plain conditional binomial on track totals), for
  count tests only: its arithmetic is three calls of `sequential`, kept here to show the before
  and after side by side (its interpolated tail test left the core with it).
- `wald(rho1)`: an SPRT that knows the effect (rho1 against theta0), run on the same counts:
  the information bound no valid test can beat by much (Wald's).
- The anchors' rules (`baselines`) do not judge a read path: they query `rate()` over their own
  1-minute windows, so they run on `minute_batch`, per-minute `increase()` of both tracks, and
  rule on the error rate alone (their latency and score checks never fire here).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from bench import baseline_judges as baselines
from bench import prometheus_world as pw
from bench import readings
from bench import rollout_simulation as sim
from modelrollout.api import verdicts as api_verdicts
from modelrollout.core.analysis import checks, judges, robust, samples, sequential, settings

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]


@dataclasses.dataclass(frozen=True)
class Test:
    """One comparison a rollout runs, at its share of the rollout's alpha (three tests, as the bench's)."""

    metric: str
    comparison: checks.Comparison
    quantile: float | None = None
    config: settings.AnalysisSettings = settings.DEFAULT

    @property
    def alpha(self) -> float:
        return self.config.alpha / 3.0

    @property
    def check(self) -> checks.MetricCheck:
        return checks.MetricCheck(self.metric, compare=self.comparison, quantile=self.quantile)

    @property
    def counts(self) -> bool:
        return self.quantile is None


ERRORS = Test("error-rate", checks.Comparison(tolerance=0.10))
P99 = Test("p99-latency", checks.Comparison(tolerance=0.10), quantile=0.99)


@dataclasses.dataclass(frozen=True)
class Verdicts:
    """Per rollout (R,): the first interval answered FAIL (-1: none); per interval (R, T): gate met."""

    first_fail: IntArray
    ready: BoolArray


Judge = Callable[[readings.Reading, Test], Verdicts]


def clean_counts(reading: readings.Reading) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, BoolArray]:
    """`quality.counts` over runs: intervals with nan, negatives or more events than requests zeroed.

    Returns stable requests and events, canary requests and events (R, T), and the kept intervals.
    """
    raw = np.stack([reading.stable_requests, reading.stable_events, reading.canary_requests, reading.canary_events])
    with np.errstate(invalid="ignore"):
        valid = np.asarray(np.isfinite(raw).all(axis=0) & (raw >= 0.0).all(axis=0) & (raw[1] <= raw[0])
                           & (raw[3] <= raw[2]), dtype=np.bool_)
    clean = np.where(valid, raw, 0.0)
    return clean[0], clean[1], clean[2], clean[3], valid


def clean_histograms(reading: readings.Reading) -> tuple[FloatArray, FloatArray, BoolArray]:
    """`quality.histograms` over runs: intervals with a nan or negative bucket in either track zeroed."""
    stable, canary = reading.stable_latency, reading.canary_latency
    with np.errstate(invalid="ignore"):
        valid = np.asarray((np.isfinite(stable) & np.isfinite(canary) & (stable >= 0.0) & (canary >= 0.0)).all(
            axis=-1), dtype=np.bool_)
    return np.where(valid[..., None], stable, 0.0), np.where(valid[..., None], canary, 0.0), valid


def _gate(n_c: FloatArray, n_s: FloatArray, events: FloatArray, config: settings.AnalysisSettings) -> BoolArray:
    """`quality.shortfall` at every interval: both tracks' requests and all events so far."""
    ready: BoolArray = ((np.cumsum(n_s, axis=-1) >= config.min_requests)
                        & (np.cumsum(n_c, axis=-1) >= config.min_requests)
                        & (np.cumsum(events, axis=-1) >= config.min_events))
    return ready


def count_pods(reading: readings.Reading, valid: BoolArray) -> tuple[robust.Pods, robust.Pods] | None:
    """`judges.count_pods` over runs: per-pod (R, P, T), unseen or dropped intervals zeroed; None
    when the read path cannot tell pods apart."""
    pods = reading.pods
    if pods is None:
        return None
    usable = valid[:, None, :] & pods.seen
    n = np.where(usable, pods.requests, 0.0)
    x = np.where(usable, np.minimum(pods.events, pods.requests), 0.0)
    return robust.Pods(n[:, ~pods.canary], x[:, ~pods.canary]), robust.Pods(n[:, pods.canary], x[:, pods.canary])


def histogram_pods(reading: readings.Reading, stable: FloatArray, canary: FloatArray, valid: BoolArray
                   ) -> tuple[FloatArray, FloatArray]:
    """`judges.histogram_pods` over runs: (R, P, T, K) per track; each track one pod without pods."""
    pods = reading.pods
    if pods is None:
        return stable[:, None], canary[:, None]
    usable = (valid[:, None, :] & pods.seen)[..., None] & np.isfinite(pods.latency) & (pods.latency >= 0.0)
    counts = np.where(usable, pods.latency, 0.0)
    return counts[:, ~pods.canary], counts[:, pods.canary]


def robust_judge(reading: readings.Reading, test: Test) -> Verdicts:
    """The core's judge on main, with its own vectorised entry point (`robust.first_failure`)."""
    if test.counts:
        n_s, x_s, n_c, x_c, valid = clean_counts(reading)
        ready = _gate(n_c, n_s, x_c + x_s, test.config)
        pods = count_pods(reading, valid) or (robust.single_pod(n_s, x_s), robust.single_pod(n_c, x_c))
        first = robust.first_failure(*pods, test.comparison.null_ratio, test.comparison.upward, test.alpha,
                                     eligible=ready)
        return Verdicts(first, ready)
    stable, canary, valid = clean_histograms(reading)
    stable_pods, canary_pods = histogram_pods(reading, stable, canary, valid)
    found = judges.tail_events(stable_pods, canary_pods, np.asarray(reading.bounds), test.quantile or 0.0,
                               test.comparison, per_pod=True)
    has = (found.boundary >= 0)[:, :, None, :]  # (2, R, 1, T)
    n_c = np.where(has, canary_pods.sum(axis=-1), 0.0)  # (2, R, P, T)
    n_s = np.where(has, stable_pods.sum(axis=-1), 0.0)
    events = found.canary[0].sum(axis=1) + found.stable_fail[0].sum(axis=1)
    ready = _gate(n_c[0].sum(axis=1), n_s[0].sum(axis=1), events, test.config)
    first = robust.first_failure(robust.Pods(n_s, found.stable_fail), robust.Pods(n_c, found.canary), 1.0, True,
                                 test.alpha, eligible=ready, candidates=True)
    return Verdicts(first, ready)


def binomial(reading: readings.Reading, test: Test) -> Verdicts:
    """The judge before issue 10, for count tests: the plain conditional binomial on track totals."""
    if not test.counts:
        raise ValueError("the binomial judge's tail test (interpolated) is no longer in the core")
    n_s, x_s, n_c, x_c, _ = clean_counts(reading)
    ready = _gate(n_c, n_s, x_c + x_s, test.config)
    informative = (n_c > 0) & (n_s > 0)
    log_lr = sequential.share_log_lr(np.where(informative, x_c, 0.0), np.where(informative, x_c + x_s, 0.0),
                                     np.where(informative, n_c / np.where(n_s > 0, n_s, 1.0), 1.0),
                                     test.comparison.null_ratio, sequential.signed_offsets(test.comparison.upward))
    path = sequential.running_max(sequential.log_mixture_path(log_lr))
    first = sequential.first_crossing(np.where(ready, path, 0.0), sequential.threshold(test.alpha))
    return Verdicts(first, ready)


def wald(rho1: float) -> Judge:
    """An SPRT of rho1 against the test's theta0 that knows the effect: no mixture, no gate, no allowances."""
    def judge(reading: readings.Reading, test: Test) -> Verdicts:
        n_s, x_s, n_c, x_c, _ = clean_counts(reading)
        theta0 = test.comparison.null_ratio
        informative = (n_c > 0) & (n_s > 0)
        r = np.where(informative, n_c / np.where(n_s > 0, n_s, 1.0), 1.0)
        log_lr = sequential.share_log_lr(np.where(informative, x_c, 0.0), np.where(informative, x_c + x_s, 0.0),
                                         r, theta0, [math.log(rho1 / theta0)])[..., 0]
        first = sequential.first_crossing(np.cumsum(log_lr, axis=-1), sequential.threshold(test.alpha))
        return Verdicts(first, np.ones(log_lr.shape, dtype=np.bool_))
    return judge


#: The judges of the operator, by name: the one under test (the core's) first.
JUDGES: dict[str, Judge] = {"robust": robust_judge, "binomial": binomial}
UNDER_TEST = "robust"
COUNTS_ONLY = frozenset({"binomial"})


def rollout(verdicts: Verdicts, world: pw.World) -> tuple[FloatArray, BoolArray]:
    """Rollback time (s, nan when none) and whether the rollout was held, per run.

    As `sequential_judge.detect`: a step's window closes at its end, and a window that closes
    with the gate unmet ends INCONCLUSIVE, which holds the rollout (never a rollback).
    """
    step = world.scraping.step_s
    intervals = verdicts.ready.shape[1]
    per_step = round(world.step_s / step)
    closes = np.arange(1, len(world.weights) + 1) * per_step - 1
    unmet = ~verdicts.ready[:, closes]
    held_at = np.where(unmet.any(axis=1), closes[unmet.argmax(axis=1)], intervals)
    first = np.where(verdicts.first_fail >= 0, verdicts.first_fail, intervals)
    rolled = first <= np.minimum(held_at, intervals - 1)
    times = np.where(rolled, (first + 1) * step, np.nan)
    held: BoolArray = ~rolled & (held_at < intervals)
    return times, held


def _count_samples(reading: readings.Reading, run: int, end: int, test: Test) -> samples.CountSamples:
    intervals = tuple(
        samples.CountInterval(float(reading.stable_requests[run, t]), float(reading.stable_events[run, t]),
                              float(reading.canary_requests[run, t]), float(reading.canary_events[run, t]),
                              end=float(reading.ends[t]))
        for t in range(end))
    pods = reading.pods
    per_pod: tuple[samples.PodCounts, ...] = ()
    if pods is not None:
        def pod(values: FloatArray, p: int) -> tuple[float, ...]:
            pairs = zip(values[run, p, :end], pods.seen[run, p, :end], strict=True)
            return tuple(float(v) if seen else math.nan for v, seen in pairs)
        per_pod = tuple(samples.PodCounts(f"pod-{p}", bool(pods.canary[p]), pod(pods.requests, p), pod(pods.events, p))
                        for p in range(pods.canary.size))
    return samples.CountSamples(test.metric, intervals, pods=per_pod)


def _histogram_samples(reading: readings.Reading, run: int, end: int, test: Test) -> samples.HistogramSamples:
    intervals = tuple(
        samples.HistogramInterval(tuple(float(v) for v in reading.stable_latency[run, t]),
                                  tuple(float(v) for v in reading.canary_latency[run, t]), end=float(reading.ends[t]))
        for t in range(end))
    pods = reading.pods
    per_pod: tuple[samples.PodBuckets, ...] = ()
    if pods is not None:
        def pod(p: int) -> tuple[tuple[float, ...], ...]:
            return tuple(tuple(float(v) if pods.seen[run, p, t] else math.nan for v in pods.latency[run, p, t])
                         for t in range(end))
        per_pod = tuple(samples.PodBuckets(f"pod-{p}", bool(pods.canary[p]), pod(p)) for p in range(pods.canary.size))
    return samples.HistogramSamples(test.metric, reading.bounds, intervals, pods=per_pod)


def cross_check(reading: readings.Reading, test: Test, verdicts: Verdicts, run: int) -> None:
    """Replay one rollout through the public `judges.judge()` at every tick; raise where it disagrees.

    FAIL first at the interval the vectorised judge found; INCONCLUSIVE wherever its gate was unmet.
    Ticks after the first FAIL are not asked: the rollout is rolled back there, and the veto (the
    allowances all data show at the tick) may turn a later tick's answer back to INCONCLUSIVE.
    """
    at = int(verdicts.first_fail[run])
    for end in range(1, (at + 1 if at >= 0 else reading.ends.size) + 1):
        series: samples.CountSamples | samples.HistogramSamples = (
            _count_samples(reading, run, end, test) if test.counts else _histogram_samples(reading, run, end, test))
        (result,) = judges.judge(series, test.check, alpha=test.alpha, config=test.config)
        failed = result.verdict is api_verdicts.Verdict.FAIL
        if failed != (0 <= at < end):
            raise AssertionError(f"{test.metric} on {reading.path}, run {run}: core says {result.verdict.value} "
                                 f"after {end} intervals, the bench's first FAIL is {at}: {result.reason}")
        if not failed and not verdicts.ready[run, end - 1] and result.verdict is not api_verdicts.Verdict.INCONCLUSIVE:
            raise AssertionError(f"{test.metric} on {reading.path}, run {run}: core says {result.verdict.value} "
                                 f"after {end} intervals where the bench's gate is unmet: {result.reason}")


# The anchors' rules ------------------------------------------------------------------------------

BASELINE_WORLD = sim.World(scrape_s=60.0)
"""The baselines' own clock: one point per minute (`rate(x[1m])`)."""


def minute_batch(scrapes: pw.Scrapes, world: pw.World) -> sim.Batch:
    """Per-minute `increase()` of both tracks, in the shape the baselines read (no latency or score)."""
    minute = readings.through_increase(scrapes, world, window=60.0)
    inert = np.zeros((*minute.canary_requests.shape, len(sim.LATENCY_BOUNDS)))
    inert[..., 0] = 1.0  # a latency and a score that are always in range: only the error rate can fail
    score = np.zeros((*minute.canary_requests.shape, len(sim.SCORE_BOUNDS)))
    score[..., 0] = 1.0
    return sim.Batch(minute.stable_requests, minute.canary_requests, minute.stable_events, minute.canary_events,
                     inert, inert, score, score)


def limits(error_max: float) -> baselines.Thresholds:
    return baselines.Thresholds(error_max, math.inf, -math.inf, math.inf)


def calibrated(healthy: sim.Batch) -> tuple[baselines.Thresholds, baselines.Thresholds]:
    """The 99th percentile of the healthy canary's error rate per 1-minute and per 5-minute window."""
    one = baselines.measurements(healthy, 1)["error"]
    five = baselines.measurements(healthy, 5)["error"]
    return limits(float(np.nanpercentile(one, 99))), limits(float(np.nanpercentile(five, 99)))


def baseline_rules(mid: float, cal_1m: baselines.Thresholds, cal_5m: baselines.Thresholds
                   ) -> dict[str, tuple[str, Callable[[sim.Batch], FloatArray]]]:
    """Every baseline rule with its description: rollback time (s, nan when none) from a minute batch."""
    world = BASELINE_WORLD
    found: dict[str, tuple[str, Callable[[sim.Batch], FloatArray]]] = {}
    for tag, one, five in (("mid", limits(mid), limits(mid)), ("cal", cal_1m, cal_5m)):
        found[f"flagger-{tag}"] = (f"1m checks, threshold 5, error > {one.error_max:.2%}",
                                   functools.partial(baselines.flagger, world=world, limits=one))
        found[f"argo1m-{tag}"] = (f"interval 1m, failureLimit 3, error > {one.error_max:.2%}",
                                  functools.partial(baselines.argo, world=world, limits=one, interval_s=60.0))
        found[f"argo5m-{tag}"] = (f"interval 5m, failureLimit 3, error > {five.error_max:.2%}",
                                  functools.partial(baselines.argo, world=world, limits=five, interval_s=300.0))
    found["kayenta"] = ("Mann-Whitney 98%, tol 0.25|HL|, 1m points, judged every 5m",
                        functools.partial(baselines.kayenta, world=world))
    return found
