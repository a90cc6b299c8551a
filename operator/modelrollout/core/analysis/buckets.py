"""Histogram bucket arithmetic: quantiles from buckets and the boundary a tail test counts beyond.

Prometheus histograms are binned counts, so a latency (or score) regression is judged on counts
beyond a bucket boundary rather than on a quantile's interpolated value: buckets are often a
factor 2 apart, too coarse to resolve a 25 % move of p99, while the share of requests beyond a
fixed boundary moves several-fold.

A TOLERANCE ON THE VALUE, TESTED ON WHOLE BUCKETS. "p99 may be 10 % slower" says that the
canary's share above a boundary b may be as large as stable's share above b / 1.1. Stable's count
above a value inside a bucket is not known: interpolating it assumes a flat density there, which
a slow mode just under an edge breaks (the interpolated share is then too small, and a canary
well within its tolerance is rolled back every time). So both counts are taken at bucket edges:
FAIL compares the canary above b with stable above b-, the largest edge at or below b / 1.1
(under the null the canary's share above b is at most stable's above b / 1.1, so at most its
share above b-: the comparison at ratio 1 is valid); PASS compares with stable above b+, the
smallest edge at or above b / 1.1. The test really asks about b / b- (FAIL) and b / b+ (PASS):
the tolerance the buckets can resolve (`resolvable_tolerance`), which can be much coarser than the
one asked for (Prometheus' default buckets a factor 2 apart resolve x2 only).

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


def edges_for(bounds: ArrayLike, boundary: ArrayLike, null_ratio: float, upper: bool) -> tuple[IntArray, IntArray]:
    """The stable edges the FAIL and PASS tests count beyond, for each boundary index (..., T).

    For an upper tail (null_ratio >= 1): FAIL at the largest finite edge <= b / null_ratio (-1: none,
    every observation counts as above), PASS at the smallest edge >= b / null_ratio. For a lower
    tail (null_ratio <= 1): FAIL at the smallest finite edge >= b / null_ratio (K - 1, the +Inf
    position, when none: every observation counts as at or below), PASS at the largest <= it.
    A boundary of -1 (none yet) gives -1 for both.

    edges_for([0.1, 0.2, 0.4, inf], [2], 1.1, True) -> ([1], [2])   (0.4 / 1.1 = 0.36: 0.2 and 0.4)
    edges_for([0.1, 0.2, 0.4, inf], [1], 2.0, True) -> ([0], [0])   (0.2 / 2 = 0.1 is an edge)
    """
    le = np.asarray(bounds, dtype=np.float64)
    finite = le[:-1]
    b = np.asarray(boundary, dtype=np.int64)
    target = finite[np.maximum(b, 0)] / null_ratio
    at_or_below = np.searchsorted(finite, target, side="right") - 1  # largest edge <= target, -1 if none
    at_or_above = np.searchsorted(finite, target, side="left")  # smallest edge >= target, len if none
    if upper:
        fail, passing = at_or_below, at_or_above
    else:
        fail, passing = at_or_above, at_or_below
    fail = np.where(b >= 0, fail, -1).astype(np.int64)
    passing = np.where(b >= 0, passing, -1).astype(np.int64)
    return fail, passing


def counts_beyond_edge(counts: ArrayLike, edge: ArrayLike, upper: bool) -> FloatArray:
    """Per-interval counts above each interval's edge (`upper`) or at or below it.

    `counts` (..., T, K) per bucket; `edge` (..., T) indexes the finite bounds, -1 standing for
    "below the first bound" (everything is above it, nothing at or below) and K - 1 for +Inf.

    counts_beyond_edge([[5, 3, 2]], [-1], True) -> [10.0]; counts_beyond_edge([[5, 3, 2]], [0], False) -> [5.0]
    """
    c = np.asarray(counts, dtype=np.float64)
    e = np.asarray(edge, dtype=np.int64)
    cumulative = np.concatenate([np.zeros((*c.shape[:-1], 1)), np.cumsum(c, axis=-1)], axis=-1)
    at_or_below = np.take_along_axis(cumulative, (e + 1)[..., None], axis=-1)[..., 0]
    result: FloatArray = c.sum(axis=-1) - at_or_below if upper else at_or_below
    return result


def resolvable_tolerance(bounds: ArrayLike, boundary: int, null_ratio: float, upper: bool) -> tuple[float, float]:
    """The ratios the edge tests really ask about at one boundary: (for PASS, for FAIL).

    A regression beyond the FAIL ratio can fail the test; one below the PASS ratio can pass it
    surely; in between the buckets cannot tell. For an upper tail they are b / b+ <= null_ratio and
    b / b- >= null_ratio (inf where no edge b- exists); for a lower tail the mirror.

    resolvable_tolerance([0.1, 0.2, 0.4, inf], 2, 1.1, True) -> (1.0, 2.0)
    """
    le = np.asarray(bounds, dtype=np.float64)
    fail, passing = edges_for(le, [boundary], null_ratio, upper)
    b = float(le[boundary])
    finite = le[:-1]

    def ratio(edge: int) -> float:
        if 0 <= edge < finite.size and finite[edge] > 0.0:
            return b / float(finite[edge])
        return float("inf") if upper else 0.0

    return ratio(int(passing[0])), ratio(int(fail[0]))
