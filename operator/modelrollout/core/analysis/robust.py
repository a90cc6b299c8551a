"""What the stable pods say about the data: burstiness and pod spread, learnt as the rollout goes.

The conditional-binomial comparison (`sequential.share_log_lr`) assumes that, given an
interval's total, each event picks a track independently in proportion to its traffic. Real
model servers break that in two ways, and both turn into false rollbacks:

- **Bursts.** One retried request, one broken batch or one GC pause gives several errors at once
  on one pod. Events then come in clusters of size K, the canary's count varies `phi =
  E[K^2]/E[K]` times more than the binomial says, and a likelihood ratio counts each cluster K
  times over. The remedy is Wedderburn's quasi-likelihood: divide each interval's log ratio by
  `phi_i >= 1`. If `phi_i` is *predictable* (computed from earlier intervals only), the tempered
  product stays a supermartingale when clusters are no larger than `phi_i` (Jensen: x -> x^(K/phi)
  is concave for K <= phi), and to second order for random cluster sizes with that Pearson
  dispersion (Grünwald & van Ommen 2017 call this the safe, tempered likelihood).
- **Pods differ.** A pod's error rate is the version's times a pod factor (placement, cache,
  hardware). With one canary pod the comparison is right about that pod and wrong about the
  version. The null becomes "the new version's pods are no worse than the stable pods, beyond the
  spread between stable pods, plus the tolerance": the tolerated ratio is widened by `kappa_i =
  exp(z * tau_i * sqrt(1/n_canary_pods + 1/n_stable_pods))`, a prediction bound for a fresh
  draw of pods, where `tau_i` is the spread of stable pods' log rates (DerSimonian & Laird 1986).

Both are estimated from the stable pods, which are a free A/A test that runs during every
rollout: stable against stable cannot differ by version.

- `phi_i` pools prequential Pearson residuals: each stable pod against the rest of stable, and the
  canary against stable, each residual computed with the share estimated *before* its interval
  (so a pod's or the canary's own persistent level is not mistaken for noise; a pod's ratio is
  shrunk towards 1 while it has few events, and the canary's counts only once its level is
  settled), and corrected for the noise of that estimate. Until `prior_weight` residuals exist a burst
  of `prior_dispersion` is assumed (one early interval could carry a whole burst); after that
  the estimate is used only where it is significantly above 1 (`dispersion_gate`, with the
  variance small counts really have): on independent counts the test then pays almost nothing.
- `tau_i` is DerSimonian-Laird's moment estimate over stable pods' log rate ratios against the
  rest of stable, taken only where Cochran's Q says the pods differ (`spread_gate`); with fewer
  than `min_pods` stable pods it cannot be estimated and a declared spread is used.
- A FAIL also needs the evidence recomputed with the allowances all the data show *now* applied
  to every interval (a looser `decision_spread_gate` for the spread). That check is not
  predictable, so it carries no guarantee of its own; it only vetoes, which removes rejections
  and so keeps the predictable test's guarantee, and it catches pods that differ, or bursts
  that began, before the predictable estimates could see them.

Everything is vectorised: per-pod arrays (..., P, T), results (..., T), so the benchmark runs the
core's own arithmetic over thousands of rollouts.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from numpy.typing import NDArray
from scipy import special, stats

from modelrollout.core.analysis import sequential

FloatArray = NDArray[np.float64]

#: Pseudo-count added to event totals before taking logs and ratios: no pod is ever "0 errors, so
#: infinitely better" on its first minutes of data.
HALF = 0.5

VARIANCE_ROOM = 1.25
"""How much more than the binomial formula the residuals' sum may vary without counting as bursts:
estimated shares make them vary more (about 17 % in the benchmark's world)."""

CANARY_SETTLED = 4.0
"""The canary's residuals count once the past holds four times the interval's events: before that, a
real difference in level (the regression itself) would read as dispersion and temper its own signal."""

POD_SHRINK = 10.0
"""Pseudo-events that shrink a stable pod's ratio to the rest towards 1: one or two events per pod
in the first intervals would otherwise swing it, and the residuals after it, several-fold."""


@dataclasses.dataclass(frozen=True)
class Pods:
    """One track's per-pod counts, arrays of shape (..., P, T): requests and events per interval.

    A pod that did not exist in an interval has 0 requests there. nan is not allowed (the quality
    gate zeroes unusable intervals first).
    """

    requests: FloatArray
    events: FloatArray

    @property
    def total_requests(self) -> FloatArray:
        result: FloatArray = self.requests.sum(axis=-2)
        return result

    @property
    def total_events(self) -> FloatArray:
        result: FloatArray = self.events.sum(axis=-2)
        return result

    @property
    def present(self) -> FloatArray:
        """Pods serving in each interval: (..., T)."""
        result: FloatArray = (self.requests > 0.0).sum(axis=-2).astype(np.float64)
        return result


@dataclasses.dataclass(frozen=True)
class Knobs:
    """How the calibration learns; the defaults are what the benchmark measured."""

    prior_dispersion: float = 3.0
    """Dispersion assumed before the data can tell: a burst of three counts once."""
    prior_weight: float = 10.0
    """Residuals needed before the data replace the prior: one interval with 9 stable pods and
    some traffic, several at a few requests per second."""
    dispersion_gate: float = 0.01
    """Dispersion is used only when the residuals reject "no bursts" at this level."""
    decision_dispersion_gate: float = 0.01
    """The same for the dispersion all data show at a FAIL (the veto)."""
    spread_gate: float = 0.01
    """Pod spread widens the predictable test only when Cochran's Q rejects "pods alike" at this level."""
    decision_spread_gate: float = 0.1
    """At a FAIL, the spread seen in all data so far must also leave the evidence standing; it is
    taken when Q rejects at this (looser) level: a veto only removes rejections, so it costs no
    validity, and a looser gate catches pods that differ before the predictable test can see it."""
    min_pods: int = 3
    """Stable pods needed to estimate their spread."""
    declared_spread: float = 0.0
    """Spread (sd of log rates) assumed when too few stable pods to estimate it."""


DEFAULT_KNOBS = Knobs()


def _exclusive_cumsum(values: FloatArray) -> FloatArray:
    """Sums over the intervals strictly before each one (last axis): shifted, not subtracted, so
    interval i's own value cannot leak into its sum even by rounding."""
    total = np.cumsum(values, axis=-1)
    result: FloatArray = np.concatenate([np.zeros((*values.shape[:-1], 1)), total[..., :-1]], axis=-1)
    return result


def _share(ratio: FloatArray, exposure: FloatArray) -> FloatArray:
    result: FloatArray = ratio * exposure / (1.0 + ratio * exposure)
    return result


def _residuals(x: FloatArray, m: FloatArray, exposure: FloatArray, valid: NDArray[np.bool_],
               x_before: FloatArray, rate_x: FloatArray, y_before: FloatArray, rate_y: FloatArray,
               m_before: FloatArray, settled: float = 0.0, shrink: float = 0.0
               ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Prequential Pearson residuals of a binomial share: the residual, 1.0 where it counts, and its
    variance under independent events (2 + (1 - 6 q (1 - q)) / (m q (1 - q)): small counts are skewed).

    The share in interval i is predicted from the pooled rates before it: ratio (x+1/2)/Nx over
    (y+1/2)/Ny; the residual is divided by 1 + m_i / M_<i, the inflation its estimation noise adds.
    With `settled` > 0 a residual counts only once the past holds `settled` times the interval's
    events: until then a real difference in level would read as noise.
    """
    seen = (m_before > 0.0) & (rate_x > 0.0) & (rate_y > 0.0)
    valid = valid & (m_before >= settled * m) if settled else valid
    with np.errstate(divide="ignore", invalid="ignore"):
        # The ratio is shrunk towards "alike" by `shrink` pseudo-events, so the first intervals' few
        # events do not swing it (an unshrunk ratio of 1 or 2 events per pod makes the residuals of
        # the next intervals several times too large); with no events at all it is 1.
        expected = rate_x * (y_before + HALF) / rate_y
        ratio = np.where(seen, (x_before + shrink) / (expected + shrink), 1.0)
        q = _share(ratio, exposure)
        binomial = m * q * (1.0 - q)
        # The estimate's own noise inflates the residual by about (m_i / M_<i) w^2, where w = E / (E +
        # shrink) is the weight the data have in it (E: the events expected of x so far).
        weight = expected / (expected + shrink)
        noise = np.where(seen, m / m_before * weight**2, 0.0)
        residual = (x - m * q) ** 2 / (binomial * (1.0 + noise))
        variance = np.maximum(2.0 + (1.0 - 6.0 * q * (1.0 - q)) / binomial, 0.0)  # >= 0 for counts below 1 too
    usable = valid & (m > 0.0) & np.isfinite(residual) & (binomial > 0.0)
    return np.where(usable, residual, 0.0), usable.astype(np.float64), np.where(usable, variance, 0.0)


def _stable_against_rest(stable: Pods) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Each stable pod against the rest of stable, per pod (..., P, T): its requests and events, and
    the rest's, where both served (zero elsewhere, so such intervals count for neither)."""
    n, y = stable.requests, stable.events
    n_rest, y_rest = n.sum(axis=-2, keepdims=True) - n, y.sum(axis=-2, keepdims=True) - y
    alive = (n > 0.0) & (n_rest > 0.0)
    return (np.where(alive, n, 0.0), np.where(alive, y, 0.0), np.where(alive, n_rest, 0.0),
            np.where(alive, y_rest, 0.0))


def dispersion(stable: Pods, canary: Pods, knobs: Knobs = DEFAULT_KNOBS) -> FloatArray:
    """phi_i for every interval: (..., T), >= 1, from intervals before i only."""
    own_n, own_y, n_rest, y_rest = _stable_against_rest(stable)
    alive = n_rest > 0.0
    exposure = np.where(alive, own_n / np.where(alive, n_rest, 1.0), 0.0)
    stable_res, stable_used, stable_var = _residuals(
        own_y, own_y + y_rest, exposure, alive,
        _exclusive_cumsum(own_y), _exclusive_cumsum(own_n), _exclusive_cumsum(y_rest), _exclusive_cumsum(n_rest),
        _exclusive_cumsum(own_y + y_rest), shrink=POD_SHRINK)
    n_c, x_c = canary.total_requests, canary.total_events
    n_s, x_s = stable.total_requests, stable.total_events
    both = (n_c > 0.0) & (n_s > 0.0)
    n_c, x_c = np.where(both, n_c, 0.0), np.where(both, x_c, 0.0)
    n_s, x_s = np.where(both, n_s, 0.0), np.where(both, x_s, 0.0)
    canary_res, canary_used, canary_var = _residuals(
        x_c, x_c + x_s, n_c / np.where(both, n_s, 1.0), both,
        _exclusive_cumsum(x_c), _exclusive_cumsum(n_c), _exclusive_cumsum(x_s), _exclusive_cumsum(n_s),
        _exclusive_cumsum(x_c + x_s), settled=CANARY_SETTLED)
    # Pooled over stable pods, then over the intervals before each one.
    sum_res = _exclusive_cumsum(stable_res.sum(axis=-2) + canary_res)
    count = _exclusive_cumsum(stable_used.sum(axis=-2) + canary_used)
    # The spread of the residuals' sum under independent events: the binomial formula, with room for
    # the shares being estimated (the benchmark's residuals vary about 17 % more than it says).
    variance = VARIANCE_ROOM * _exclusive_cumsum(stable_var.sum(axis=-2) + canary_var)
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = np.where(count > 0.0, sum_res / count, 1.0)
    # "No bursts" is rejected when the residuals' sum is beyond what independent events give, with
    # the variance small counts really have (a chi-square quantile would reject far too often).
    z = float(special.ndtri(1.0 - knobs.dispersion_gate))
    bursty = sum_res > count + z * np.sqrt(variance)
    # Until there are `prior_weight` residuals, one interval could carry a whole burst: assume one.
    early = count < knobs.prior_weight
    estimate = np.where(early, np.maximum(estimate, knobs.prior_dispersion), estimate)
    bursty = bursty | early
    result: FloatArray = np.where(bursty, np.maximum(estimate, 1.0), 1.0)
    return result


def spread(stable: Pods, phi: FloatArray, knobs: Knobs = DEFAULT_KNOBS) -> FloatArray:
    """tau_i for every interval: (..., T), the spread of stable pods' log rate ratios beyond chance."""
    own_n, own_y, rest_n, rest_y = (_exclusive_cumsum(a) for a in _stable_against_rest(stable))
    known = (own_n > 0.0) & (rest_n > 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log((own_y + HALF) / own_n) - np.log((rest_y + HALF) / rest_n)
        variance = phi[..., None, :] * (1.0 / (own_y + HALF) + 1.0 / (rest_y + HALF))
    weight = np.where(known, 1.0 / variance, 0.0)
    log_ratio = np.where(known, log_ratio, 0.0)
    pods = known.sum(axis=-2).astype(np.float64)
    total = weight.sum(axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = (weight * log_ratio).sum(axis=-2) / total
        q = (weight * (log_ratio - mean[..., None, :]) ** 2).sum(axis=-2)
        scale = total - (weight**2).sum(axis=-2) / total
        tau2 = np.maximum(0.0, (q - (pods - 1.0)) / scale)
    enough = pods >= knobs.min_pods
    critical = np.where(enough, stats.chi2.ppf(1.0 - knobs.spread_gate, np.maximum(pods - 1.0, 1.0)), np.inf)
    differ = enough & (q > critical) & np.isfinite(tau2)
    result: FloatArray = np.where(differ, np.sqrt(np.where(differ, tau2, 0.0)),
                                  np.where(enough, 0.0, knobs.declared_spread))
    return result


def allowance(tau: FloatArray, stable: Pods, canary: Pods, alpha: float) -> FloatArray:
    """kappa_i = exp(z * tau_i * sqrt(1/n_c + 1/n_s)): a one-sided (1 - alpha) prediction bound for the
    log ratio of this interval's canary pods against its stable pods when pods differ by tau."""
    z = float(special.ndtri(1.0 - alpha))
    n_c = np.maximum(canary.present, 1.0)
    n_s = np.maximum(stable.present, 1.0)
    result: FloatArray = np.exp(z * tau * np.sqrt(1.0 / n_c + 1.0 / n_s))
    return result


@dataclasses.dataclass(frozen=True)
class Compared:
    """One comparison of the canary's share of events with the tolerated ratio, at the last interval."""

    log_e: float
    """Running maximum of the log e-process with predictable allowances: the guarantee."""
    log_e_now: float
    """The same evidence with the allowances all data show now, on every interval: a veto."""
    dispersion: float
    spread: float
    allowance: float
    """The allowances all data show now."""

    @property
    def log_e_decisive(self) -> float:
        """What a decision reads: both must reach the level (the veto can only remove a rejection)."""
        return min(self.log_e, self.log_e_now)


def _shares(stable: Pods, canary: Pods) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per-interval canary events x, events of both m and exposure r = n_c / n_s: (..., T) each."""
    n_c, n_s = canary.total_requests, stable.total_requests
    informative = (n_c > 0.0) & (n_s > 0.0)
    x = np.where(informative, canary.total_events, 0.0)
    m = np.where(informative, canary.total_events + stable.total_events, 0.0)
    r = np.where(informative, n_c / np.where(informative, n_s, 1.0), 1.0)
    return x, m, r


def _padded(pods: Pods) -> Pods:
    """One empty interval appended: calibrating it gives the allowances of all data so far."""
    zeros = np.zeros((*pods.requests.shape[:-1], 1))
    return Pods(np.concatenate([pods.requests, zeros], axis=-1), np.concatenate([pods.events, zeros], axis=-1))


def _null(theta0: float, widen: FloatArray, upward: bool) -> FloatArray:
    """The tolerated ratio, widened in the null's favour: up for an upward test, down otherwise."""
    result: FloatArray = theta0 * widen if upward else theta0 / widen
    return result


def _log_lr(x: FloatArray, m: FloatArray, r: FloatArray, null: FloatArray, phi: FloatArray,
            upward: bool) -> FloatArray:
    """Tempered per-interval log ratios of the mixture's alternatives: (..., T, K)."""
    result: FloatArray = sequential.share_log_lr(x, m, r, null, sequential.signed_offsets(upward)) / phi[..., None]
    return result


def _mixture(log_lr: FloatArray, candidates: bool) -> FloatArray:
    """The mixture e-process path (..., T); with `candidates`, the leading axis holds alternative
    event definitions (tail boundaries), all averaged in one mixture: valid whichever carries the signal."""
    if candidates:
        moved = np.moveaxis(log_lr, 0, -2)  # (..., T, J, K)
        log_lr = moved.reshape(*moved.shape[:-2], moved.shape[-2] * moved.shape[-1])
    return sequential.log_mixture_path(log_lr)


def _geometry(stable: Pods, canary: Pods) -> FloatArray:
    """sqrt(1/n_c + 1/n_s) per interval, for pods present: how much a pod draw moves the ratio."""
    result: FloatArray = np.sqrt(1.0 / np.maximum(canary.present, 1.0) + 1.0 / np.maximum(stable.present, 1.0))
    return result


def _decision_dispersion(stable: Pods, canary: Pods, phi: FloatArray, knobs: Knobs) -> FloatArray:
    """The dispersion with the decision's gate (the same array when the gates agree)."""
    if knobs.decision_dispersion_gate == knobs.dispersion_gate:
        return phi
    return dispersion(stable, canary, dataclasses.replace(knobs, dispersion_gate=knobs.decision_dispersion_gate))


def compare(stable: Pods, canary: Pods, theta0: float, upward: bool, alpha: float,
            knobs: Knobs = DEFAULT_KNOBS, candidates: bool = False) -> Compared:
    """Evidence against "the canary's event ratio is within theta0" (upward: H0 rho <= theta0;
    otherwise H0 rho >= theta0), tempered for bursts and widened for pod spread.

    With `candidates`, the Pods' leading axis holds alternative event definitions of one test (the
    tail test's boundaries), each calibrated on its own, all averaged into one e-process."""
    x, m, r = _shares(stable, canary)
    intervals = x.shape[-1]
    if intervals == 0:
        return Compared(0.0, 0.0, 1.0, 0.0, 1.0)
    padded_stable, padded_canary = _padded(stable), _padded(canary)
    phi = dispersion(padded_stable, padded_canary, knobs)
    tau = spread(padded_stable, phi, knobs)
    kappa = allowance(tau[..., :intervals], stable, canary, alpha)
    predictable = _mixture(_log_lr(x, m, r, _null(theta0, kappa, upward), phi[..., :intervals], upward), candidates)
    z = float(special.ndtri(1.0 - alpha))
    phi_all = _decision_dispersion(padded_stable, padded_canary, phi, knobs)
    tau_now = spread(padded_stable, phi_all, dataclasses.replace(knobs, spread_gate=knobs.decision_spread_gate))
    kappa_now = np.exp(z * tau_now[..., -1:] * _geometry(stable, canary))
    phi_now = phi_all[..., -1:]
    now = _mixture(_log_lr(x, m, r, _null(theta0, kappa_now, upward), np.broadcast_to(phi_now, x.shape), upward),
                   candidates)
    first = (0,) if candidates else ()  # report the primary event definition's allowances
    return Compared(
        log_e=max(0.0, float(np.max(predictable))),
        log_e_now=max(0.0, float(np.max(now))),
        dispersion=float(phi_now[first].max()),
        spread=float(tau_now[first][..., -1].max()),
        allowance=float(kappa_now[first][..., -1].max()),
    )


def first_failure(stable: Pods, canary: Pods, theta0: float, upward: bool, alpha: float,
                  knobs: Knobs = DEFAULT_KNOBS, eligible: NDArray[np.bool_] | None = None,
                  candidates: bool = False) -> NDArray[np.int64]:
    """For a batch of rollouts, the first interval at which `compare` would decide FAIL had it been
    asked then, or -1: what the benchmark measures, with the very same arithmetic.

    Pods are (..., P, T) with the batch on the leading axes (after the candidates' axis with
    `candidates`); `eligible` (batch..., T) marks the intervals a decision may be taken at (the
    quality gate met)."""
    x, m, r = _shares(stable, canary)
    intervals = x.shape[-1]
    padded_stable, padded_canary = _padded(stable), _padded(canary)
    phi = dispersion(padded_stable, padded_canary, knobs)
    tau = spread(padded_stable, phi, knobs)
    kappa = allowance(tau[..., :intervals], stable, canary, alpha)
    level = sequential.threshold(alpha)
    crossed = sequential.running_max(_mixture(
        _log_lr(x, m, r, _null(theta0, kappa, upward), phi[..., :intervals], upward), candidates)) >= level
    if eligible is not None:
        crossed = crossed & np.broadcast_to(eligible, crossed.shape)
    phi_all = _decision_dispersion(padded_stable, padded_canary, phi, knobs)
    tau_now = spread(padded_stable, phi_all, dataclasses.replace(knobs, spread_gate=knobs.decision_spread_gate))
    geometry = _geometry(stable, canary)
    z = float(special.ndtri(1.0 - alpha))
    batch = crossed.shape[:-1]
    lead = 1 if candidates else 0

    def flat(a: FloatArray) -> FloatArray:  # (J?, batch..., T) -> (J?, N, T)
        result: FloatArray = a.reshape(*a.shape[:lead], -1, a.shape[-1])
        return result

    x2, m2, r2, geometry2, phi2, tau2 = (flat(a) for a in (x, m, r, geometry, phi_all, tau_now))
    crossed2 = crossed.reshape(-1, intervals)
    first = np.full(crossed2.shape[0], -1, dtype=np.int64)
    for t in range(intervals):
        asked = np.flatnonzero(crossed2[:, t] & (first < 0))
        if asked.size == 0:
            continue
        kappa_now = np.exp(z * tau2[..., asked, t + 1][..., None] * geometry2[..., asked, : t + 1])
        phi_now = np.broadcast_to(phi2[..., asked, t + 1][..., None], kappa_now.shape)
        now = _mixture(_log_lr(x2[..., asked, : t + 1], m2[..., asked, : t + 1], r2[..., asked, : t + 1],
                               _null(theta0, kappa_now, upward), phi_now, upward), candidates)
        first[asked[now.max(axis=-1) >= level]] = t
    return first.reshape(batch)


def single_pod(requests: object, events: object) -> Pods:
    """A track whose pods cannot be told apart, as one pod: (..., T) -> (..., 1, T)."""
    n = np.asarray(requests, dtype=np.float64)[..., None, :]
    x = np.asarray(events, dtype=np.float64)[..., None, :]
    return Pods(n, x)


def describe(compared: Compared) -> str:
    """The allowances in words, for a reason string ("" when there are none)."""
    parts = []
    if compared.dispersion > 1.0:
        parts.append(f"events come in bursts: evidence divided by {compared.dispersion:.2g}")
    if compared.spread > 0.0:
        parts.append(f"stable pods differ by {math.expm1(compared.spread):.0%}: tolerance widened "
                     f"x{compared.allowance:.3g}")
    return "; ".join(parts)
