"""Anytime-valid evidence: the e-process maths behind every judge.

The operator looks at the data every tick, and may look for as long as a rollout lasts. A
fixed-sample test read at every tick fails far more often than its alpha (repeated Mann-Whitney
or z-tests on growing data reach 20-70 % false alarms). So every test here is an *e-process*: a
nonnegative supermartingale E_t under the null hypothesis, started at 1. By Ville's inequality
P(sup_t E_t >= 1/alpha) <= alpha, so "reject when the running maximum of E reaches 1/alpha" holds
its false-rejection rate under continuous monitoring, optional stopping and optional
continuation, and p_t = min(1, 1 / max_{s<=t} E_s) is an anytime-valid p-value.

TWO-TRACK COMPARISON (Lindon & Malek, NeurIPS 2022, conditioned on the total):
in interval i let n_c, n_s be the requests (or observations) of each track, r = n_c / n_s, and
x, y the *events* of each track (errors, or observations beyond a bucket boundary). If events
arrive at rate lambda_i per request on stable and rho * lambda_i on canary, then given the total
m = x + y, x ~ Binomial(m, q(rho)) with q(rho) = rho r / (1 + rho r). Anything shared by both
tracks in the interval (diurnal load, a slow dependency, Prometheus' scrape jitter) is in
lambda_i and cancels; only rho, the canary's rate ratio, is left. The log-likelihood ratio of an
alternative rho_1 against the null rho_0 is

    x log(rho_1 / rho_0) - m [log(1 + rho_1 r) - log(1 + rho_0 r)].

The tolerance is a composite null: H0: rho <= theta_0 with theta_0 = 1 + tolerance. For an
alternative rho_1 > theta_0 the ratio increases with x and the binomial is stochastically
increasing in rho (monotone likelihood ratio), so every factor has conditional mean <= 1 for
every rho <= theta_0: the product is a supermartingale over the whole null, even when rho and
the traffic share change from interval to interval (weights move between steps).

Exactness: for Poisson-thinned events the binomial is exact. For per-request Bernoulli events
(a request errs or not), given the margins of the interval's 2x2 table the canary count is
hypergeometric when the tracks are equal; by Hoeffding (1963) sampling without replacement is
dominated in convex order by sampling with replacement, and the ratio is convex in x, so each
factor still has mean <= 1 at rho = 1 and below (A/A). Between 1 and theta_0 the binomial is an
approximation that is good when events are a small share of requests; the A/A benchmark and the
boundary-null test in tests/ check the realised rate.

The alternatives are a discrete mixture: rho_1 = theta_0 * exp(offset) for the offsets in
`OFFSETS`, weighted by `OFFSET_WEIGHTS`. A mixture of e-processes is an e-process whatever its
weights; against a single alternative it costs log(1 / weight) nats, and it needs no guess of the
effect size. The offsets span 1.1x to 12x beyond theta_0. The weights lean on 1.5x to 2.7x: the
time to detect is (log(1/alpha) + log(1/weight)) / information rate, and the rate grows about
with the square of the offset, so the smallest alternatives rarely finish within a rollout and
the largest finish within a few events even at a small weight (bench: 2x errors at 100 req/s are
caught 20 s sooner than with equal weights, at the same false-rollback rate). Offsets with a negative sign
test the other direction (H0: rho >= theta_0), which gives the upper confidence bound and the
"surely no worse" evidence.

ONE-TRACK RATES (SLO gates): x events out of n trials per interval, H0: p_i <= p_0 in every
interval; alternatives on the logit scale, logit p_1 = logit p_0 + offset. The same monotone
likelihood ratio argument makes the mixture a supermartingale for every p_i <= p_0, and the
statistic only needs the cumulative sums.

CONFIDENCE SEQUENCES come from inverting the tests on a grid: a grid value theta is excluded
once its e-process has reached 1/alpha at any look (the running intersection). The lower bound is
the top of the run of excluded grid values that starts at the bottom of the grid, so it is wrong
only if the first grid value at or above the truth was wrongly excluded: coverage 1 - alpha per
side, with no union bound over the grid.

Everything here is vectorised over leading axes (runs, components), with intervals on the last
axis (or the second to last where a component axis follows), so the benchmark runs the very
same arithmetic over thousands of simulated rollouts.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

FloatArray = NDArray[np.float64]

#: Log-ratio offsets of the alternatives beyond the null (1.1x to 12x beyond theta_0).
OFFSETS: tuple[float, ...] = (0.1, 0.16, 0.25, 0.4, 0.63, 1.0, 1.6, 2.5)

#: Prior weight of each offset (normalised in `offset_log_weights`): most on 1.5x to 2.7x.
OFFSET_WEIGHTS: tuple[float, ...] = (1.0, 2.0, 4.0, 6.0, 6.0, 4.0, 2.0, 1.0)

#: Grid of ratios for confidence sequences: 1/64 to 64 in steps of 2^(1/16) (about 4.4 %).
RATIO_GRID: FloatArray = np.exp2(np.arange(-96, 97) / 16.0)

#: Grid of rates for one-track confidence sequences, evenly spaced in logit from 1e-6 to 1 - 1e-6.
RATE_GRID: FloatArray = special.expit(np.linspace(-13.8, 13.8, 277))

#: Largest log e-value kept; beyond it the evidence is overwhelming and exp() would overflow.
LOG_E_CAP = 700.0


def logsumexp(values: FloatArray, axis: int) -> FloatArray:
    """log(sum(exp(values))) along `axis`, without overflow (scipy's is several times slower here).

    logsumexp([0.0, 0.0], -1) -> log 2; logsumexp([1000.0, 0.0], -1) -> 1000.0
    """
    top = np.max(values, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    result: FloatArray = np.log(np.sum(np.exp(values - top), axis=axis)) + np.squeeze(top, axis=axis)
    return result


def threshold(alpha: float) -> float:
    """The log e-value at which a test at level alpha rejects: log(1/alpha).

    threshold(0.01) -> 4.605; threshold(0.05) -> 2.996; threshold(1.0) -> 0.0
    """
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    return -math.log(alpha)


def p_value(log_e_max: float) -> float:
    """The anytime-valid p-value from the running maximum of the log e-value.

    p_value(0.0) -> 1.0; p_value(math.log(20)) -> 0.05; p_value(-3.0) -> 1.0
    """
    return float(min(1.0, math.exp(-min(log_e_max, LOG_E_CAP))))


def signed_offsets(upward: bool) -> FloatArray:
    """The mixture's log-ratio offsets, positive to test "above the null", negative for "below"."""
    offsets = np.asarray(OFFSETS, dtype=np.float64)
    return offsets if upward else -offsets


def offset_log_weights(components: int) -> FloatArray:
    """Log mixture weights for `components` alternatives, summing to 1.

    A multiple of len(OFFSETS) is read as groups of the offsets (boundaries, directions), each
    group with an equal share split by `OFFSET_WEIGHTS`; any other count gets equal weights.

    offset_log_weights(1) -> [0.0]; exp(offset_log_weights(16)).sum() -> 1.0
    """
    per_offset = np.asarray(OFFSET_WEIGHTS, dtype=np.float64)
    if components % per_offset.size:
        return np.full(components, -math.log(components))
    groups = components // per_offset.size
    result: FloatArray = np.tile(np.log(per_offset / per_offset.sum()), groups) - math.log(groups)
    return result


def share_log_lr(
    events: ArrayLike, total: ArrayLike, exposure: ArrayLike, theta0: ArrayLike, offsets: ArrayLike
) -> FloatArray:
    """Per-interval log-likelihood ratios of rho_1 = theta0 * exp(offset) against theta0.

    `events` (canary), `total` (both tracks) and `exposure` (canary/stable requests) have shape
    (..., T); `theta0` broadcasts against them; the result has shape (..., T, K) for K offsets.
    An interval without information has total 0 (and any finite exposure): its ratio is 0.

    share_log_lr(1, 1, 1.0, 1.0, [log 2]) -> [[0.2877]]   (log 2 - log 1.5: one canary event)
    share_log_lr(0, 1, 1.0, 1.0, [log 2]) -> [[-0.4055]]  (the event went to stable)
    share_log_lr(0, 0, 1.0, 1.0, [log 2]) -> [[0.0]]
    """
    x = np.asarray(events, dtype=np.float64)[..., None]
    m = np.asarray(total, dtype=np.float64)[..., None]
    r = np.asarray(exposure, dtype=np.float64)[..., None]
    t0 = np.asarray(theta0, dtype=np.float64)
    if t0.ndim:
        t0 = t0[..., None]
    off = np.asarray(offsets, dtype=np.float64)
    t1 = t0 * np.exp(off)
    result: FloatArray = x * off - m * (np.log1p(t1 * r) - np.log1p(t0 * r))
    return result


def rate_log_lr(events: ArrayLike, trials: ArrayLike, p0: float, offsets: ArrayLike) -> FloatArray:
    """Log-likelihood ratios of logit p_1 = logit p0 + offset against p0, for x events in n trials.

    Shapes: events and trials (..., T) -> (..., T, K). Cumulative sums of events and trials give
    the cumulative ratios directly, as the statistic only depends on the totals.

    rate_log_lr(1, 1, 0.5, [log 3]) -> [[0.4055]]   (p_1 = 0.75: log(0.75/0.5))
    rate_log_lr(0, 1, 0.5, [log 3]) -> [[-0.6931]]  (log(0.25/0.5))
    """
    x = np.asarray(events, dtype=np.float64)[..., None]
    n = np.asarray(trials, dtype=np.float64)[..., None]
    off = np.asarray(offsets, dtype=np.float64)
    logit0 = float(special.logit(p0))
    log_p0, log_q0 = -np.logaddexp(0.0, -logit0), -np.logaddexp(0.0, logit0)
    log_p1, log_q1 = -np.logaddexp(0.0, -(logit0 + off)), -np.logaddexp(0.0, logit0 + off)
    result: FloatArray = x * (log_p1 - log_p0) + (n - x) * (log_q1 - log_q0)
    return result


def log_mixture_path(log_lr: FloatArray, log_weights: FloatArray | None = None) -> FloatArray:
    """The log of a mixture e-process at every interval, from per-interval log ratios (..., T, K).

    The k-th component is exp(cumulative sum of its ratios); components are averaged with
    `log_weights` (default `offset_log_weights(K)`). Returns shape (..., T).

    log_mixture_path([[0.0], [log 2]]) -> [0.0, 0.6931]          (one component: 1, then 2)
    log_mixture_path([[log 3, log 1]]) -> [log 2]                 (mean of 3 and 1)
    """
    cumulative = np.cumsum(log_lr, axis=-2)
    k = log_lr.shape[-1]
    weights = offset_log_weights(k) if log_weights is None else log_weights
    return np.minimum(logsumexp(cumulative + weights, axis=-1), LOG_E_CAP)


def running_max(path: FloatArray) -> FloatArray:
    """The running maximum along the last axis: the evidence a test has seen so far.

    running_max([0.0, 2.0, 1.0, 3.0]) -> [0.0, 2.0, 2.0, 3.0]
    """
    result: FloatArray = np.maximum.accumulate(path, axis=-1)
    return result


def first_crossing(path: FloatArray, level: float) -> NDArray[np.int64]:
    """Index of the first interval whose log e-value reaches `level`, or -1 where none does.

    first_crossing([0.0, 5.0, 1.0], 4.6) -> 1; first_crossing([0.0, 1.0], 4.6) -> -1
    """
    hit = path >= level
    index: NDArray[np.int64] = np.where(hit.any(axis=-1), hit.argmax(axis=-1), -1).astype(np.int64)
    return index


def ratio_estimate(events: ArrayLike, total: ArrayLike, exposure: ArrayLike) -> FloatArray:
    """Conditional maximum-likelihood estimate of the rate ratio rho over intervals (last axis).

    It solves sum_i m_i q_i(rho) = sum_i x_i, which weighs each interval by its own traffic
    share, so a share that moves between steps does not bias it (a ratio of pooled rates would).
    Returns 0 when the canary has no events, inf when stable has none, nan with no events at all.

    ratio_estimate([2], [3], [1.0]) -> 2.0; ratio_estimate([1, 1], [2, 3], [1.0, 0.5]) -> 1.366
    ratio_estimate([0], [5], [1.0]) -> 0.0
    """
    x = np.asarray(events, dtype=np.float64)
    m = np.asarray(total, dtype=np.float64)
    r = np.asarray(exposure, dtype=np.float64)
    x_sum, m_sum = x.sum(axis=-1), m.sum(axis=-1)
    lo = np.full(x_sum.shape, -25.0)
    hi = np.full(x_sum.shape, 25.0)
    for _ in range(60):  # bisection on log rho: the expected count is increasing in rho
        mid = 0.5 * (lo + hi)
        rho = np.exp(mid)[..., None]
        expected = (m * rho * r / (1.0 + rho * r)).sum(axis=-1)
        low = expected < x_sum
        lo = np.where(low, mid, lo)
        hi = np.where(low, hi, mid)
    estimate = np.exp(0.5 * (lo + hi))
    estimate = np.where(x_sum <= 0.0, 0.0, estimate)
    estimate = np.where(x_sum >= m_sum, np.inf, estimate)
    result: FloatArray = np.where(m_sum <= 0.0, np.nan, estimate)
    return result


def _excluded(log_e_max: FloatArray, alpha: float) -> NDArray[np.bool_]:
    return np.asarray(log_e_max >= threshold(alpha), dtype=np.bool_)


def _bounds_from_exclusions(
    grid: FloatArray, below: NDArray[np.bool_], above: NDArray[np.bool_], top: float
) -> tuple[float, float]:
    """Lower bound from the run of exclusions at the bottom, upper bound from the run at the top."""
    n_low = int(np.argmin(below)) if not below.all() else below.size
    n_high = int(np.argmin(above[::-1])) if not above.all() else above.size
    lower = float(grid[n_low - 1]) if n_low > 0 else 0.0
    upper = float(grid[grid.size - n_high]) if n_high > 0 else top
    return lower, max(lower, upper)


def ratio_bounds(
    events: ArrayLike, total: ArrayLike, exposure: ArrayLike, alpha: float, grid: FloatArray = RATIO_GRID,
    dispersion: float = 1.0,
) -> tuple[float, float]:
    """A (1 - 2 alpha) confidence sequence for the rate ratio, at the last interval of one series.

    Each side holds its alpha under continuous monitoring; values outside the grid report as
    0 and inf. `dispersion` tempers the evidence as the judges do for bursty events.
    ratio_bounds([0]*9, [0]*9, [1.0]*9, 0.05) -> (0.0, inf) (no events, no bound)
    """
    x = np.asarray(events, dtype=np.float64)[:, None]
    m = np.asarray(total, dtype=np.float64)[:, None]
    r = np.asarray(exposure, dtype=np.float64)[:, None]
    if x.shape[0] == 0:
        return 0.0, math.inf
    theta = grid[None, :]
    up = share_log_lr(x, m, r, theta, signed_offsets(True)) / dispersion  # (T, G, K)
    down = share_log_lr(x, m, r, theta, signed_offsets(False)) / dispersion
    up_max = log_mixture_path(np.moveaxis(up, 0, -2)).max(axis=-1)  # (G,)
    down_max = log_mixture_path(np.moveaxis(down, 0, -2)).max(axis=-1)
    return _bounds_from_exclusions(grid, _excluded(up_max, alpha), _excluded(down_max, alpha), math.inf)


def rate_log_e(events: ArrayLike, trials: ArrayLike, p0: float, upward: bool,
               dispersion: ArrayLike = 1.0) -> FloatArray:
    """The log e-process path testing a one-track rate against p0 (H0: p <= p0 when upward).

    `events` and `trials` are per-interval increments on the last axis; `dispersion` (>= 1, per
    interval or one number, predictable) tempers each interval's evidence for bursty events.
    rate_log_e([0]*3, [10]*3, 0.5, True) -> decreasing path below 0 (no events, H0 p <= 0.5 holds)
    """
    x = np.asarray(events, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    phi = np.asarray(dispersion, dtype=np.float64)
    return log_mixture_path(rate_log_lr(x, n, p0, signed_offsets(upward)) / (phi[..., None] if phi.ndim else phi))


def rate_bounds(
    events: ArrayLike, trials: ArrayLike, alpha: float, grid: FloatArray = RATE_GRID
) -> tuple[float, float]:
    """A (1 - 2 alpha) confidence sequence for a one-track rate, at the last interval of one series.

    rate_bounds([0], [0], 0.05) -> (0.0, 1.0) (no trials, no bound)
    """
    x = np.cumsum(np.asarray(events, dtype=np.float64))[:, None]
    n = np.cumsum(np.asarray(trials, dtype=np.float64))[:, None]
    if x.shape[0] == 0:
        return 0.0, 1.0
    logit_grid = special.logit(grid)[None, :, None]
    up_off = signed_offsets(True)[None, None, :]
    # Cumulative statistic, so the cumulative ratio at each look is a closed form: no cumsum needed.
    log_p0, log_q0 = -np.logaddexp(0.0, -logit_grid), -np.logaddexp(0.0, logit_grid)

    def path(off: FloatArray) -> FloatArray:
        log_p1, log_q1 = -np.logaddexp(0.0, -(logit_grid + off)), -np.logaddexp(0.0, logit_grid + off)
        log_lr = x[..., None] * (log_p1 - log_p0) + (n - x)[..., None] * (log_q1 - log_q0)  # (T, G, K)
        mixed = logsumexp(log_lr + offset_log_weights(off.shape[-1]), axis=-1)
        result: FloatArray = mixed.max(axis=0)
        return result

    below = _excluded(path(up_off), alpha)
    above = _excluded(path(-up_off), alpha)
    return _bounds_from_exclusions(grid, below, above, 1.0)
