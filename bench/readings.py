"""What the operator reads from the simulated Prometheus: per-interval numbers per track and per pod.

Two read paths over the same scrapes (`promql` does the arithmetic):

- `through_increase`: today's presets, `sum(increase(x[D]))` per track at step D. A track's
  requests are missing (nan) at a step where no series had two samples in its range; its
  events are 0 where requests were counted and no error series answered, as the adapter fills
  them. Counts are extrapolated, so fractional. No per-pod numbers.
- `exact`: `sum by (pod) (x)` at step D, differenced per pod with the counters rule. Every
  interval has a number (0 where nothing was seen), the counts are integers, and each pod's
  intervals sum to what its counters say.

Both start at the window start (the canary's first traffic, t = 0) and have intervals
(t_{i-1}, t_i] with t_i = i D: `increase()` reads each one, the exact path differences the
values at its ends (the one at 0 is the baseline).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import NDArray

from bench import prometheus_world as pw
from bench import promql

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

ERRORS = slice(1, len(pw.CODES))  # the 5xx codes among `CODES`


@dataclasses.dataclass(frozen=True)
class PodReading:
    """Per-pod increments (R, P, T): what `samples.CountSamples.pods` and `.PodBuckets` carry."""

    requests: FloatArray
    events: FloatArray
    latency: FloatArray
    """(R, P, T, K) per-bucket (not cumulative) increments; K = 0 without a histogram."""
    canary: BoolArray
    """(P,) which pods are the canary's."""
    seen: BoolArray
    """(R, P, T) the pod had a value at the interval's end (else its increment waits for the next one)."""
    baseline_lost: BoolArray
    """(R, P) a pod that was serving at the window's start had no value there (its last scrape
    failed): the counters rule then counts its whole counter, hours of traffic, as new."""


@dataclasses.dataclass(frozen=True)
class Reading:
    """One read path's answer for R rollouts: per track (R, T), histograms (R, T, K)."""

    path: str
    ends: FloatArray
    """(T,) the intervals' end times (s since the canary's first traffic)."""
    stable_requests: FloatArray
    stable_events: FloatArray
    canary_requests: FloatArray
    canary_events: FloatArray
    bounds: tuple[float, ...]
    stable_latency: FloatArray
    canary_latency: FloatArray
    pods: PodReading | None = None

    @property
    def step_s(self) -> float:
        return float(self.ends[0])


LEAD_STEPS = 4
"""Steps read before the window starts, as the operator does: a pod whose one scrape at the
window's start failed (stale markers, no value) still has a baseline from the lead-in, so hours of
its traffic are not counted as new in the first interval."""


def grid(world: pw.World) -> FloatArray:
    """The query times: the lead-in steps before 0, the window's start at 0, then one per step."""
    step = world.scraping.step_s
    return np.arange(-LEAD_STEPS, round(world.duration_s / step) + 1, dtype=np.float64) * step


def _per_bucket(cumulative: FloatArray) -> FloatArray:
    """`samples.buckets_from_cumulative` along the last axis (nan stays nan)."""
    result: FloatArray = np.diff(cumulative, axis=-1, prepend=0.0)
    return result


def through_increase(scrapes: pw.Scrapes, world: pw.World, window: float | None = None) -> Reading:
    """`sum(increase(x[window]))` per track at step `window` (default: the world's step)."""
    scraping = world.scraping
    step = scraping.step_s if window is None else window
    ends = np.arange(1, round(world.duration_s / step) + 1, dtype=np.float64) * step
    codes = promql.increase(scrapes.times, scrapes.ok, scrapes.codes, ends, step, scraping.left_open)

    def track(mask: BoolArray) -> tuple[FloatArray, FloatArray]:
        requests = promql.sum_present(codes[:, mask], axis=(1, 3))
        events = promql.sum_present(codes[:, mask][..., ERRORS], axis=(1, 3))
        return requests, np.where(np.isfinite(events), events, np.where(np.isfinite(requests), 0.0, np.nan))

    stable_n, stable_e = track(~scrapes.canary)
    canary_n, canary_e = track(scrapes.canary)
    if scrapes.bounds:
        buckets = promql.increase(scrapes.times, scrapes.ok, scrapes.buckets, ends, step, scraping.left_open)
        stable_h = _per_bucket(promql.sum_present(buckets[:, ~scrapes.canary], axis=1))
        canary_h = _per_bucket(promql.sum_present(buckets[:, scrapes.canary], axis=1))
    else:
        stable_h = canary_h = np.zeros((*stable_n.shape, 0))
    return Reading("increase()", ends, stable_n, stable_e, canary_n, canary_e, scrapes.bounds, stable_h, canary_h)


def pod_values(scrapes: pw.Scrapes, world: pw.World) -> tuple[FloatArray, FloatArray, FloatArray]:
    """`sum by (pod)` of requests, of errors and (by le) of the buckets at the query times."""
    at = grid(world)
    lookback = world.scraping.lookback_s
    codes = promql.instant(scrapes.times, scrapes.ok, scrapes.codes, at, lookback)
    requests = promql.sum_present(codes, axis=-1)
    errors = promql.sum_present(codes[..., ERRORS], axis=-1)
    buckets = promql.instant(scrapes.times, scrapes.ok, scrapes.buckets, at, lookback)
    return requests, errors, buckets


def exact(scrapes: pw.Scrapes, world: pw.World) -> Reading:
    """`sum by (pod) (x)` at the world's step, differenced per pod: exact integer counts."""
    requests, errors, buckets = pod_values(scrapes, world)
    # The lead-in's increments only establish baselines: the window starts after them.
    pod_requests = promql.increments(requests)[..., LEAD_STEPS:]
    pod_events = promql.increments(errors)[..., LEAD_STEPS:]
    pod_latency = _per_bucket(promql.bucket_increments(buckets)[..., LEAD_STEPS:, :]) if scrapes.bounds \
        else np.zeros((*pod_requests.shape, 0))
    requests = requests[..., LEAD_STEPS:]
    canary = scrapes.canary
    return Reading(
        "exact", grid(world)[LEAD_STEPS + 1:],
        pod_requests[:, ~canary].sum(axis=1), pod_events[:, ~canary].sum(axis=1),
        pod_requests[:, canary].sum(axis=1), pod_events[:, canary].sum(axis=1),
        scrapes.bounds, pod_latency[:, ~canary].sum(axis=1), pod_latency[:, canary].sum(axis=1),
        PodReading(pod_requests, pod_events, pod_latency, canary, np.isfinite(requests[..., 1:]),
                   (scrapes.born[None, :] < 0.0) & ~np.isfinite(requests[..., 0])),
    )
