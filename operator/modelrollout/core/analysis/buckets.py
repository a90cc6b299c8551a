"""Histogram bucket arithmetic: quantiles from buckets and the boundary a tail test counts beyond.

Prometheus histograms are binned counts, so a latency (or score) regression is judged on counts
beyond a bucket boundary rather than on a quantile's interpolated value: buckets are often a
factor 2 apart, too coarse to resolve a 25 % move of p99, while the share of requests beyond a
fixed boundary moves several-fold.

A TOLERANCE ON THE VALUE, NOT ON THE SHARE. "p99 may be 10 % slower" says that the canary's
share above a boundary b may be as large as stable's share above b / 1.1. The canary's count
above b is exact (b is a bucket bound); stable's count above b / 1.1 falls inside a bucket and
is interpolated linearly there, as `histogram_quantile` does (`counts_beyond_value`). In the tail
the density falls across a bucket, so the linear share is *larger* than the true one: stable's
count is overstated, which only makes the canary look better. The share itself would be the
wrong scale: a 2 % move of p99 moves the share above it by 10 % or more, which pods of one
version differ by from minute to minute.

CHOOSING THE BOUNDARY WITHOUT BREAKING VALIDITY. The boundary should sit at stable's quantile,
which is only known from the data. Choosing it from the data being tested would let the test
peek. Instead the boundary of interval i is chosen from stable's data *before* interval i (a
predictable choice): every factor of the e-process is then a valid likelihood ratio given the
past, whatever boundary the past selected, and the product stays a supermartingale. Until stable
has enough observations (`min_observations`) no boundary is chosen and the interval is skipped.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def histogram_quantile(q: float, bounds: ArrayLike, counts: ArrayLike) -> float:
    """The q-quantile from per-bucket counts, with Prometheus' `histogram_quantile` rules.

    Linear interpolation inside the bucket; the first bucket starts at 0 (if its bound is
    positive); a quantile in the +Inf bucket is the largest finite bound; no counts give nan.

    histogram_quantile(0.5, [1, 2, inf], [10, 10, 0]) -> 1.0
    histogram_quantile(0.75, [1, 2, inf], [10, 10, 0]) -> 1.5
    histogram_quantile(0.99, [1, 2, inf], [10, 10, 5]) -> 2.0
    """
    le = np.asarray(bounds, dtype=np.float64)
    c = np.cumsum(np.asarray(counts, dtype=np.float64))
    total = float(c[-1]) if c.size else 0.0
    if total <= 0.0:
        return float("nan")
    rank = q * total
    b = int(np.searchsorted(c, rank, side="left"))
    b = min(b, le.size - 1)
    if np.isinf(le[b]):
        return float(le[-2]) if le.size > 1 else float("nan")
    start = 0.0 if b == 0 else float(le[b - 1])
    if b == 0 and le[0] <= 0.0:
        return float(le[0])
    below = 0.0 if b == 0 else float(c[b - 1])
    inside = float(c[b]) - below
    if inside <= 0.0:
        return float(le[b])
    return start + (float(le[b]) - start) * (rank - below) / inside


def tail_shares(counts: ArrayLike) -> FloatArray:
    """Share of observations above each finite bound, per row: shape (..., K) -> (..., K - 1).

    tail_shares([1, 2, 1]) -> [0.75, 0.25]
    """
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum(axis=-1, keepdims=True)
    above = total - np.cumsum(c, axis=-1)[..., :-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        result: FloatArray = np.where(total > 0.0, above / total, np.nan)
    return result


def predictable_boundaries(
    stable: ArrayLike, tail_mass: float, upper: bool, min_observations: float
) -> IntArray:
    """For each interval, the edge of the bucket holding stable's quantile, as seen *before* it.

    `stable` is per-interval, per-bucket counts (..., T, K). For an upper tail (`upper`) the
    chosen boundary index j is the first bound with stable's past share above it at most
    `tail_mass` (the upper edge of the p99 bucket, say); for a lower tail, the last bound with
    the share at or below it at most `tail_mass`. The tail test compares beyond that edge and
    beyond the edge scaled back by the tolerance, which then falls in or near the quantile's own
    bucket, where the tail thins out and interpolation is close. -1 where stable had fewer than
    `min_observations` before the interval (or no bound qualifies).

    predictable_boundaries([[90, 9, 1], [90, 9, 1]], 0.1, True, 50) -> [-1, 0]
    """
    s = np.asarray(stable, dtype=np.float64)
    past = np.cumsum(s, axis=-2) - s  # exclusive: data strictly before each interval
    total = past.sum(axis=-1)
    shares = tail_shares(past)
    if upper:
        fits = shares <= tail_mass  # nan (no data) never fits
        index = np.argmax(fits, axis=-1)
    else:
        fits = (1.0 - shares) <= tail_mass
        index = fits.shape[-1] - 1 - np.argmax(fits[..., ::-1], axis=-1)
    usable = (total >= min_observations) & fits.any(axis=-1)
    result: IntArray = np.where(usable, index, -1).astype(np.int64)
    return result


def counts_beyond(counts: ArrayLike, boundary: ArrayLike, upper: bool) -> FloatArray:
    """Per-interval counts beyond each interval's boundary: above it if `upper`, else at or below.

    `counts` (..., T, K), `boundary` (..., T) of indices into the finite bounds; -1 gives 0.

    counts_beyond([[5, 3, 2]], [0], True) -> [5.0]; counts_beyond([[5, 3, 2]], [1], False) -> [8.0]
    """
    c = np.asarray(counts, dtype=np.float64)
    b = np.asarray(boundary, dtype=np.int64)
    at_or_below = np.cumsum(c, axis=-1)
    picked = np.take_along_axis(at_or_below, np.maximum(b, 0)[..., None], axis=-1)[..., 0]
    value = c.sum(axis=-1) - picked if upper else picked
    result: FloatArray = np.where(b >= 0, value, 0.0)
    return result


def counts_beyond_value(counts: ArrayLike, bounds: ArrayLike, value: ArrayLike, upper: bool) -> FloatArray:
    """Per-interval counts above `value` (`upper`) or at or below it, linear inside its bucket.

    `counts` (..., T, K) with `bounds` (K,) ending in +Inf; `value` broadcasts against (..., T).
    The first bucket starts at 0 when its bound is positive, as in `histogram_quantile`. A value
    whose bucket has no finite width (the +Inf bucket, or a first bound <= 0) counts the whole
    bucket on the asked side: the larger count, the safe side for the stable track it is used for.

    counts_beyond_value([[10, 10, 0]], [1, 2, inf], [1.5], True) -> [5.0]
    counts_beyond_value([[10, 10, 0]], [1, 2, inf], [0.5], False) -> [5.0]
    """
    c = np.asarray(counts, dtype=np.float64)
    le = np.asarray(bounds, dtype=np.float64)
    v = np.broadcast_to(np.asarray(value, dtype=np.float64), c.shape[:-1])
    lower = np.concatenate([[0.0 if le[0] > 0.0 else -np.inf], le[:-1]])
    k = np.minimum(np.searchsorted(le, v, side="left"), le.size - 1)  # lower[k] < v <= le[k]
    width = le[k] - lower[k]
    sized = np.isfinite(width) & (width > 0.0)
    safe_width = np.where(sized, width, 1.0)
    share_above = np.where(sized, np.clip((le[k] - v) / safe_width, 0.0, 1.0), 1.0)
    share_below = np.where(sized, np.clip((v - lower[k]) / safe_width, 0.0, 1.0), 1.0)
    cumulative = np.cumsum(c, axis=-1)
    inside = np.take_along_axis(c, k[..., None], axis=-1)[..., 0]
    up_to_bucket = np.take_along_axis(cumulative, k[..., None], axis=-1)[..., 0]
    if upper:
        result: FloatArray = cumulative[..., -1] - up_to_bucket + inside * share_above
    else:
        result = up_to_bucket - inside + inside * share_below
    return result
