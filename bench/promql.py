"""The two ways the operator reads counters from Prometheus, computed as Prometheus computes them.

Vectorised over runs, pods and series, from the scrape attempts of `prometheus_world`:

- `increase()`, today's path: `sum(increase(x[D]))` as a range query with step D. Each series'
  increase over the range (t - D, t] is `extrapolatedRate` (promql/functions.go): the last
  sample minus the first, plus the value before every drop (a reset), times
  (sampled + d_start + d_end) / sampled, where a gap to the range's edge counts whole when it is
  under 1.1 times the mean spacing of the samples and as half a spacing otherwise, and d_start
  stops at the counter's extrapolated zero point. A series needs two samples in the range, and
  range selectors skip stale markers. Prometheus 3's ranges are left-open (2.x: closed).
- `instant()`, the exact path: a range query of `sum by (pod) (x)` returns at each step the
  latest sample at or before it, within the 5 min lookback, and nothing once that sample is a
  stale marker (a failed scrape writes them). `increments()` and `bucket_increments()` turn those
  values into per-interval increments with the rule of `core/analysis/counters.py`, which
  `cross_check()` replays on a few pods to prove the two agree.

Shapes: attempts are (R, P, S), series values (R, P, S, C); query times are (J,).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from modelrollout.core.analysis import counters

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]

#: `extrapolatedRate`: an edge gap up to this many mean spacings is extrapolated all the way.
EXTRAPOLATION_THRESHOLD = 1.1


def _last_valid(valid: BoolArray, axis: int) -> IntArray:
    """Index of the last True at or before each position along `axis`, -1 where none."""
    shape = [1] * valid.ndim
    shape[axis] = valid.shape[axis]
    index = np.arange(valid.shape[axis]).reshape(shape)
    result: IntArray = np.maximum.accumulate(np.where(valid, index, -1), axis=axis)
    return result


def _next_valid(valid: BoolArray, axis: int) -> IntArray:
    """Index of the first True at or after each position along `axis`, the axis length where none."""
    size = valid.shape[axis]
    flipped = np.flip(valid, axis=axis)
    last = _last_valid(flipped, axis)
    result: IntArray = np.where(last >= 0, size - 1 - last, size)
    return np.flip(result, axis=axis)


def _gather(values: FloatArray, index: IntArray) -> FloatArray:
    """values (R, P, S[, C]) at per-query indices (R, P, J, C) along S; nan where out of range."""
    size = values.shape[2]
    safe = np.clip(index, 0, size - 1)
    source = values if values.ndim == index.ndim else values[..., None]
    picked = np.take_along_axis(source, safe, axis=2)
    result: FloatArray = np.where((index >= 0) & (index < size), picked, np.nan)
    return result


def increase(
    times: FloatArray, ok: BoolArray, values: FloatArray, ends: FloatArray, window: float, left_open: bool = True,
) -> FloatArray:
    """`increase(x[window])` of every series at each of `ends`: (R, P, J, C), nan where under two samples."""
    valid = ok[..., None] & np.isfinite(values)  # (R, P, S, C): range selectors skip stale markers
    if (valid == valid[..., :1]).all():
        valid = valid[..., :1]  # one target's series share their samples (a histogram's buckets): index once
    starts = ends - window
    edge = times[..., None] <= starts if left_open else times[..., None] < starts  # (R, P, S, J)
    low = edge.sum(axis=2)[..., None]  # first attempt inside the range, (R, P, J, 1)
    high = (times[..., None] <= ends).sum(axis=2)[..., None] - 1
    first = np.take_along_axis(_next_valid(valid, 2), np.minimum(low, values.shape[2] - 1), axis=2)
    first = np.where(low < values.shape[2], first, values.shape[2])
    last = np.take_along_axis(_last_valid(valid, 2), np.maximum(high, 0), axis=2)
    last = np.where(high >= 0, last, -1)
    usable = (last > first) & (first < values.shape[2])  # two samples or more in the range

    counted = np.cumsum(valid, axis=2)
    samples = _gather(counted.astype(np.float64), last) - _gather(counted.astype(np.float64), first) + 1.0
    v_first, v_last = _gather(values, first), _gather(values, last)
    t_first = _gather(times, first)
    t_last = _gather(times, last)

    # A drop between two consecutive samples is a reset: add the value before it.
    result = v_last - v_first
    seen = np.where(valid, values, -np.inf)
    if (seen[:, :, 1:] < np.maximum.accumulate(seen, axis=2)[:, :, :-1]).any():  # any drop at all?
        filled = _gather(values, _last_valid(valid, 2))  # latest valid value at or before each attempt
        before = np.concatenate([np.full_like(filled[:, :, :1], np.nan), filled[:, :, :-1]], axis=2)
        with np.errstate(invalid="ignore"):
            drops = np.where(valid & (values < before), before, 0.0)
        resets = np.cumsum(drops, axis=2)
        result = result + _gather(resets, last) - _gather(resets, first)

    sampled = t_last - t_first
    with np.errstate(invalid="ignore", divide="ignore"):
        spacing = sampled / (samples - 1.0)
        threshold = EXTRAPOLATION_THRESHOLD * spacing
        to_start = t_first - starts[None, None, :, None]
        to_start = np.where(to_start >= threshold, spacing / 2.0, to_start)
        to_zero = np.where((result > 0.0) & (v_first >= 0.0), sampled * v_first / result, to_start)
        to_start = np.minimum(to_start, to_zero)
        to_end = ends[None, None, :, None] - t_last
        to_end = np.where(to_end >= threshold, spacing / 2.0, to_end)
        extrapolated = result * (sampled + to_start + to_end) / sampled
    out: FloatArray = np.where(usable, extrapolated, np.nan)
    return out


def instant(times: FloatArray, ok: BoolArray, values: FloatArray, at: FloatArray, lookback: float) -> FloatArray:
    """Each series' value in an instant query at each of `at`: (R, P, J, C), nan where it has none.

    The latest attempt at or before the time decides: a failed scrape left stale markers, a series
    not yet born has no sample, and a sample older than the lookback is not returned.
    """
    latest = (times[..., None] <= at).sum(axis=2) - 1  # (R, P, J)
    picked_time = _gather(times, latest[..., None])[..., 0]
    fresh = (latest >= 0) & (picked_time > at - lookback)
    succeeded = _gather(ok.astype(np.float64), latest[..., None])[..., 0] > 0.5
    value = _gather(values, np.broadcast_to(latest[..., None], (*latest.shape, values.shape[-1])))
    result: FloatArray = np.where((fresh & succeeded)[..., None], value, np.nan)
    return result


def sum_present(values: FloatArray, axis: int | tuple[int, ...]) -> FloatArray:
    """PromQL's `sum`: the sum of the series present, and no value (nan) where none is."""
    present = np.isfinite(values).any(axis=axis)
    result: FloatArray = np.where(present, np.nansum(values, axis=axis), np.nan)
    return result


def increments(values: FloatArray) -> FloatArray:
    """`counters.counter_increments` along the last axis: (..., J) values -> (..., J - 1) increments.

    values[..., 0] is the baseline; nan is "no value at this step".
    """
    present = np.isfinite(values)
    seen = _last_valid(present, -1)[..., :-1]  # last value at or before the step before
    previous = np.take_along_axis(values, np.maximum(seen, 0), axis=-1)
    current = values[..., 1:]
    with np.errstate(invalid="ignore"):
        step = np.where(current >= previous, current - previous, current)
    step = np.where(seen >= 0, step, current)  # a series new in the window counts from zero
    result: FloatArray = np.where(present[..., 1:], step, 0.0)
    return result


def bucket_increments(values: FloatArray) -> FloatArray:
    """`counters.bucket_increments` for (..., J, K) cumulative buckets: a drop in any bucket resets all."""
    present = np.isfinite(values)
    seen = _last_valid(present, -2)[..., :-1, :]
    previous = np.take_along_axis(values, np.maximum(seen, 0), axis=-2)
    current = values[..., 1:, :]
    has_previous = seen >= 0
    with np.errstate(invalid="ignore"):
        dropped = (present[..., 1:, :] & has_previous & (current < previous)).any(axis=-1, keepdims=True)
    step = np.where(dropped | ~has_previous, current, current - previous)
    result: FloatArray = np.where(present[..., 1:, :], step, 0.0)
    return result


def cross_check(values: FloatArray, buckets: FloatArray, at: FloatArray, picks: int,
                rng: np.random.Generator) -> None:
    """Replay `picks` random (run, pod) series through `counters`; raise if the vectorised rule differs.

    `values` (R, P, J) are per-pod sums at the query times `at`, `buckets` (R, P, J, K).
    """
    runs, pods = values.shape[:2]
    steps = [float(t) for t in at]
    fast = increments(values)
    fast_buckets = bucket_increments(buckets) if buckets.shape[-1] else None
    for _ in range(picks):
        run, pod = int(rng.integers(runs)), int(rng.integers(pods))
        series = {steps[j]: float(v) for j, v in enumerate(values[run, pod]) if np.isfinite(v)}
        slow = counters.counter_increments(series, steps)
        if not np.array_equal(np.asarray(slow), fast[run, pod]):
            raise AssertionError(f"counter increments differ at run {run}, pod {pod}: {slow} vs {fast[run, pod]}")
        if fast_buckets is None:
            continue
        by_le = {float(k): {steps[j]: float(v) for j, v in enumerate(buckets[run, pod, :, k]) if np.isfinite(v)}
                 for k in range(buckets.shape[-1])}
        slow_buckets = counters.bucket_increments(by_le, steps)
        if not np.array_equal(np.asarray(slow_buckets).reshape(-1, buckets.shape[-1]), fast_buckets[run, pod]):
            raise AssertionError(f"bucket increments differ at run {run}, pod {pod}")
