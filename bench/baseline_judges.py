"""The anchors' decision rules, as documented, run on the same simulated rollouts as our judge.

- **Flagger**: every `interval` (1 min) each metric is queried over the last minute; a value out
  of its `thresholdRange` (or no value) is a failed check, at most one per tick; failed checks
  are cumulative over the rollout and roll back at `threshold` (5, the docs' example).
- **Argo Rollouts**: a background AnalysisRun measures each metric every `interval` over a
  window of the same length; a metric fails once its failed measurements exceed `failureLimit`
  (3, the docs' example), and a failed metric aborts the rollout. Two variants: the docs'
  example `interval: 5m`, and a 1-minute variant a team wanting speed would write.
- **Kayenta**: one point per minute per track and metric; at every judgement (each step's end,
  every 5 min) a Mann-Whitney test with a 98 % Hodges-Lehmann interval on the growing window
  from the start; a metric is High when the interval's lower end exceeds 0.25 |HL| (Low
  mirrored); with three metrics one High/Low gives a score of 67 < 75 (marginal), which ends the
  run. The interval uses the normal approximation of R's `wilcox.test` (no tie correction).

Thresholds for Flagger and Argo, two ways a sensible user sets them, both reported:

- *midpoint* (`thresholds()`): halfway between the healthy value and the regressed one, as
  Prometheus would report them; the most favourable single fixed threshold for catching these
  regressions (errors: 1.5 % for a healthy 1 % and a regressed 2 %), whatever the noise.
- *calibrated* (`calibrated()`): from watching the healthy service at the same traffic, the 99th
  percentile of each metric's measurement over the query window (0.5th-99.5th for the score's
  two-sided range), as an alert would be set from a dashboard: quiet by construction.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from numpy.typing import NDArray
from scipy import special

from bench import rollout_simulation as sim

FloatArray = NDArray[np.float64]


@dataclasses.dataclass(frozen=True)
class Thresholds:
    error_max: float
    p99_max: float
    score_low: float
    score_high: float

    def describe(self) -> str:
        return (f"error>{self.error_max:.2%}, p99>{self.p99_max * 1000:.0f}ms, "
                f"score p50 outside [{self.score_low:.3f}, {self.score_high:.3f}]")


def prom_quantile(q: float, bounds: tuple[float, ...], counts: FloatArray) -> FloatArray:
    """Prometheus' histogram_quantile over the last axis, vectorised; nan where there is no count."""
    le = np.asarray(bounds)
    cumulative = np.cumsum(counts, axis=-1)
    total = cumulative[..., -1]
    rank = q * total
    b = np.minimum((cumulative < rank[..., None]).sum(axis=-1), le.size - 1)
    upper = le[b]
    lower = np.where(b > 0, le[np.maximum(b - 1, 0)], 0.0)
    below = np.where(b > 0, np.take_along_axis(cumulative, np.maximum(b - 1, 0)[..., None], -1)[..., 0], 0.0)
    inside = np.take_along_axis(counts, b[..., None], -1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        value = lower + (upper - lower) * (rank - below) / inside
    value = np.where(np.isinf(upper), le[-2], value)
    value = np.where(inside > 0, value, upper)
    result: FloatArray = np.where(total > 0, value, np.nan)
    return result


def thresholds(world: sim.World) -> Thresholds:
    """Halfway between the healthy and the regressed values, as Prometheus would report them."""
    zero = np.zeros(1)
    healthy = prom_quantile(0.99, sim.LATENCY_BOUNDS, sim.latency_probs(world, zero))[0]
    slow = prom_quantile(0.99, sim.LATENCY_BOUNDS, sim.latency_probs(world, zero + math.log(1.25)))[0]
    median = prom_quantile(0.5, sim.SCORE_BOUNDS, sim.score_probs(world, zero))[0]
    shifted = prom_quantile(0.5, sim.SCORE_BOUNDS, sim.score_probs(world, zero + 0.2))[0]
    half = abs(shifted - median) / 2.0
    return Thresholds(1.5 * world.base_error, (healthy + slow) / 2.0, median - half, median + half)


def calibrated(world: sim.World, rps: float, width: int, rng: np.random.Generator, runs: int = 200) -> Thresholds:
    """Thresholds at the healthy canary's 99th percentile per query window of `width` intervals."""
    values = measurements(sim.simulate(world, sim.SCENARIOS[0], rps, runs, rng), width)
    low, high = np.nanpercentile(values["score"], [0.5, 99.5])
    return Thresholds(float(np.nanpercentile(values["error"], 99)), float(np.nanpercentile(values["p99"], 99)),
                      float(low), float(high))


def window_sums(values: FloatArray, width: int) -> FloatArray:
    """Sum consecutive groups of `width` intervals along axis 1: (R, T, ...) -> (R, T // width, ...)."""
    runs, steps = values.shape[:2]
    grouped = values[:, : steps - steps % width].reshape(runs, steps // width, width, *values.shape[2:])
    result: FloatArray = grouped.sum(axis=2)
    return result


def measurements(batch: sim.Batch, width: int) -> dict[str, FloatArray]:
    """The canary's value of each metric per window of `width` intervals, as a PromQL query reads it."""
    requests = window_sums(batch.canary_requests, width)
    with np.errstate(invalid="ignore", divide="ignore"):
        errors = window_sums(batch.canary_errors, width) / requests
    return {
        "error": np.where(requests > 0, errors, np.nan),
        "p99": prom_quantile(0.99, sim.LATENCY_BOUNDS, window_sums(batch.canary_latency, width)),
        "score": prom_quantile(0.5, sim.SCORE_BOUNDS, window_sums(batch.canary_score, width)),
    }


def failed(values: dict[str, FloatArray], limits: Thresholds) -> dict[str, NDArray[np.bool_]]:
    """Per metric and window: out of range, or no value (nan), which Flagger and Argo both fail."""
    with np.errstate(invalid="ignore"):
        return {
            "error": ~(values["error"] <= limits.error_max),
            "p99": ~(values["p99"] <= limits.p99_max),
            "score": ~((values["score"] >= limits.score_low) & (values["score"] <= limits.score_high)),
        }


def _first_time(hit: NDArray[np.bool_], seconds_per_window: float) -> FloatArray:
    """Seconds from the start to the end of the first window where `hit`, nan where never."""
    index = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
    return np.where(index >= 0, (index + 1) * seconds_per_window, np.nan)


def flagger(batch: sim.Batch, world: sim.World, limits: Thresholds, threshold: int = 5) -> FloatArray:
    """Time of rollback (s) per run under Flagger's rule, nan when promoted."""
    width = round(60.0 / world.scrape_s)
    bad = failed(measurements(batch, width), limits)
    checks = bad["error"] | bad["p99"] | bad["score"]  # one failed check per tick at most
    return _first_time(np.cumsum(checks, axis=1) >= threshold, 60.0)


def argo(
    batch: sim.Batch, world: sim.World, limits: Thresholds, interval_s: float, failure_limit: int = 3
) -> FloatArray:
    """Time of abort (s) per run under Argo's failureLimit rule, nan when promoted."""
    width = round(interval_s / world.scrape_s)
    bad = failed(measurements(batch, width), limits)
    aborted = np.zeros_like(bad["error"])
    for metric in bad.values():
        aborted |= np.cumsum(metric, axis=1) > failure_limit
    return _first_time(aborted, interval_s)


def mann_whitney_ci(
    canary: FloatArray, control: FloatArray, confidence: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Hodges-Lehmann shift and its normal-approximation interval, per run: (R, n), (R, m) -> (R,) x 3."""
    n, m = canary.shape[1], control.shape[1]
    diffs = np.sort((canary[:, :, None] - control[:, None, :]).reshape(canary.shape[0], -1), axis=1)
    estimate = np.median(diffs, axis=1)
    z = special.ndtri(0.5 + confidence / 2.0)
    k = math.floor(n * m / 2.0 - z * math.sqrt(n * m * (n + m + 1) / 12.0))
    if k < 0:
        return estimate, np.full_like(estimate, -np.inf), np.full_like(estimate, np.inf)
    return estimate, diffs[:, k], diffs[:, n * m - 1 - k]


def kayenta(batch: sim.Batch, world: sim.World, judge_every_s: float = 300.0) -> FloatArray:
    """Time of the first failing interim judgement (s) per run, nan when the run passes."""
    width = round(60.0 / world.scrape_s)
    canary = measurements(batch, width)
    control = measurements(dataclasses.replace(
        batch, canary_requests=batch.stable_requests, canary_errors=batch.stable_errors,
        canary_latency=batch.stable_latency, canary_score=batch.stable_score), width)
    minutes = canary["error"].shape[1]
    every = round(judge_every_s / 60.0)
    result = np.full(canary["error"].shape[0], np.nan)
    for k in range(every, minutes + 1, every):
        fail = np.zeros(result.shape, dtype=bool)
        for metric, either in (("error", False), ("p99", False), ("score", True)):
            hl, lower, upper = mann_whitney_ci(canary[metric][:, :k], control[metric][:, :k], 0.98)
            bound = 0.25 * np.abs(hl)
            fail |= lower > bound
            if either:
                fail |= upper < -bound
        result = np.where(np.isnan(result) & fail, k * 60.0, result)
    return result
