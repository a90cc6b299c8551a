"""Our judge over thousands of simulated rollouts: the core's own arithmetic, vectorised over runs.

The core judges recompute each metric's e-process from scratch at every tick and read its
running maximum, so the tick at which a rollout would first have been rolled back is the first
interval where some metric's running maximum reached its level *and* the quality gate was met.
This module computes exactly that with the core's vectorised functions (`sequential`,
`buckets`, `drift`) over a batch of runs, and `cross_check()` replays single runs through the
core's public judges to prove the two agree.

Configuration (what a user would write for these three metrics): error rate compared with
tolerance 0.10; p99 latency compared with tolerance 0.05 (p99 may be 5 % slower); prediction
scores compared as a distribution with tolerance 0.10. alpha = 0.01 for
the rollout, split over the three tests. No SLO gates: the benchmark measures the comparison.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import NDArray

from bench import rollout_simulation as sim
from modelrollout.api import verdicts as api_verdicts
from modelrollout.core.analysis import (
    checks,
    drift,
    judges,
    robust,
    samples,
    sequential,
    settings,
)

FloatArray = NDArray[np.float64]


ERRORS = checks.Comparison(tolerance=0.10)  # the DESIGN example's error-rate tolerance
# p99 may be 5 % slower: the tolerance is on the value, so it must sit well below the +25 % to catch.
LATENCY = checks.Comparison(tolerance=0.05)


@dataclasses.dataclass(frozen=True)
class JudgeConfig:
    error: checks.Comparison = ERRORS
    latency: checks.Comparison = LATENCY
    quantile: float = 0.99
    drift_tolerance: float = 0.10
    config: settings.AnalysisSettings = settings.DEFAULT

    @property
    def alpha(self) -> float:
        return self.config.alpha / 3.0

    def describe(self) -> str:
        return (f"alpha {self.config.alpha:g}/3 per test; errors tol {self.error.tolerance:g}, "
                f"p99 tol {self.latency.tolerance:g}, score drift tol {self.drift_tolerance:g}")


def _share_failures(x_c: FloatArray, x_s: FloatArray, n_c: FloatArray, n_s: FloatArray, theta0: float,
                    judge: JudgeConfig, ok: NDArray[np.bool_], candidates: bool = False) -> NDArray[np.int64]:
    """The core's own first FAIL of a share comparison (each track one pod: this world has no pods)."""
    if candidates:
        n_c, n_s = np.broadcast_to(n_c, x_c.shape), np.broadcast_to(n_s, x_s.shape)
    return robust.first_failure(robust.single_pod(n_s, x_s), robust.single_pod(n_c, x_c), theta0, True,
                                judge.alpha, eligible=ok, candidates=candidates)


def gate(batch: sim.Batch, judge: JudgeConfig) -> NDArray[np.bool_]:
    """Where both tracks have the minimum requests (every request is also one histogram observation)."""
    minimum = judge.config.min_requests
    ok: NDArray[np.bool_] = (np.cumsum(batch.stable_requests, axis=1) >= minimum) & (
        np.cumsum(batch.canary_requests, axis=1) >= minimum)
    return ok


def first_failures(batch: sim.Batch, judge: JudgeConfig) -> dict[str, NDArray[np.int64]]:
    """Per metric, the first interval index at which the core judge would say FAIL (-1: never)."""
    level = sequential.threshold(judge.alpha)
    ok = gate(batch, judge)
    tails = judges.tail_events(batch.stable_latency, batch.canary_latency, np.asarray(sim.LATENCY_BOUNDS),
                               judge.quantile, judge.latency)
    n_c, n_s = batch.canary_latency.sum(axis=-1), batch.stable_latency.sum(axis=-1)
    drift_path = sequential.running_max(drift.log_e_path(batch.stable_score, batch.canary_score,
                                                         judge.drift_tolerance))
    return {
        "error": _share_failures(batch.canary_errors, batch.stable_errors, batch.canary_requests,
                                 batch.stable_requests, judge.error.null_ratio, judge, ok),
        "p99": _share_failures(tails.canary, tails.stable_fail, n_c, n_s, 1.0, judge, ok, candidates=True),
        "score": sequential.first_crossing(np.where(ok, drift_path, 0.0), level),
    }


def detect(batch: sim.Batch, world: sim.World, judge: JudgeConfig) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Rollback time (s, nan when none) and whether the rollout was held, per run.

    A step's window closes at its end; with the default pass rule a window ends INCONCLUSIVE only
    when the gate is not met, which holds the rollout (counted, never a rollback or promotion).
    """
    never = world.intervals  # an index past the last interval
    first = np.stack(list(first_failures(batch, judge).values()))
    first = np.where(first >= 0, first, never).min(axis=0)
    ok = gate(batch, judge)
    closes = np.arange(1, len(world.weights) + 1) * world.per_step - 1
    unmet = ~ok[:, closes]
    held_at = np.where(unmet.any(axis=1), closes[unmet.argmax(axis=1)], never)
    rolled = first <= np.minimum(held_at, never - 1)
    times = np.where(rolled, (first + 1) * world.scrape_s, np.nan)
    held: NDArray[np.bool_] = ~rolled & (held_at < world.intervals)
    return times, held


def _one_run(batch: sim.Batch, run: int, end: int) -> tuple[samples.CountSamples, samples.HistogramSamples,
                                                             samples.HistogramSamples]:
    def hist(stable: FloatArray, canary: FloatArray) -> tuple[samples.HistogramInterval, ...]:
        return tuple(samples.HistogramInterval(tuple(stable[run, t]), tuple(canary[run, t])) for t in range(end))
    counts = tuple(samples.CountInterval(batch.stable_requests[run, t], batch.stable_errors[run, t],
                                         batch.canary_requests[run, t], batch.canary_errors[run, t])
                   for t in range(end))
    return (samples.CountSamples("error-rate", counts),
            samples.HistogramSamples("latency", sim.LATENCY_BOUNDS, hist(batch.stable_latency, batch.canary_latency)),
            samples.HistogramSamples("score", sim.SCORE_BOUNDS, hist(batch.stable_score, batch.canary_score)))


def cross_check(batch: sim.Batch, judge: JudgeConfig, run: int = 0) -> None:
    """Replay one run through the core's public judges at its first failures; raise if they disagree."""
    first = first_failures(batch, judge)
    intervals = batch.stable_requests.shape[1]
    for name, index in first.items():
        at = int(index[run])
        looks = [intervals] if at < 0 else [at, at + 1]  # just before the failure, and at it
        for end in looks:
            counts, latency, score = _one_run(batch, run, end)
            if name == "error":
                result = judges.compare_counts(counts, judge.error, alpha=judge.alpha, config=judge.config)
            elif name == "p99":
                result = judges.compare_tail(latency, judge.latency, judge.quantile, alpha=judge.alpha,
                                             config=judge.config)
            else:
                result = drift.compare_distributions(score, judge.drift_tolerance, alpha=judge.alpha,
                                                     config=judge.config)
            expected = at >= 0 and end == at + 1
            if (result.verdict is api_verdicts.Verdict.FAIL) != expected:
                raise AssertionError(f"{name}: core says {result.verdict.value} after {end} intervals, "
                                     f"benchmark expected {'FAIL' if expected else 'no FAIL'}: {result.reason}")
