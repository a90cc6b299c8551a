"""Simulated canary rollouts for the decision-quality benchmark: what Prometheus would have recorded.

One simulated rollout is five steps of `step_s` seconds at canary weights 10/20/30/40/50 %, read
every `scrape_s` seconds (the look interval). Each interval records, per track, the request
count, the error count, a latency histogram and a prediction-score histogram, as the adapter
would hand them to the judges. "Rolled back before 50 % weight" means during the first four
steps.

The world, and why it looks like this:

- **Traffic** is Poisson around `rps` times a diurnal curve (sinusoid over 24 h with a random
  phase per rollout, amplitude `diurnal`) times a latent AR(1) burstiness factor; the canary's
  share is its weight.
- **Error probability** is `base_error` times a latent AR(1) log-normal factor *shared* by both
  tracks (load, a slow dependency), times a smaller AR(1) factor *per track* and a persistent
  per-track offset (pods differ a little, even when the code does not). A regression multiplies
  the canary's probability. The per-track terms are what an A/A test truly sees: a few percent.
- **Latency** is lognormal (median `latency_median`, log-sd `latency_sigma`) with the same kind
  of shared and per-track AR(1) terms on the log scale, binned into Prometheus buckets. A
  regression scales the canary's latencies (so p99 and p50 both move by the factor).
- **Prediction scores** are logit-normal with shared and per-track AR(1) terms on the logit,
  binned into ten buckets; a drift shifts the canary's logit mean.

AR(1) terms have coefficient `phi` per scrape (0.9 per 5 s: a correlation time of about 50 s),
so per-minute points of a track are correlated, as real series are. Nothing here is tuned to a
judge: the noise levels are stated once, and every judge reads the same simulated data.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from numpy.typing import NDArray
from scipy import special

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

LATENCY_BOUNDS: tuple[float, ...] = (
    0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, math.inf,
)
SCORE_BOUNDS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, math.inf)


@dataclasses.dataclass(frozen=True)
class World:
    """The fixed assumptions of every simulated rollout."""

    weights: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)
    step_s: float = 300.0
    scrape_s: float = 5.0
    diurnal: float = 0.5
    phi: float = 0.9
    traffic_sd: float = 0.1
    base_error: float = 0.01
    error_shared_sd: float = 0.2
    error_track_sd: float = 0.05
    error_offset_sd: float = 0.03
    latency_median: float = 0.05
    latency_sigma: float = 0.5
    latency_shared_sd: float = 0.1
    latency_track_sd: float = 0.02
    latency_offset_sd: float = 0.01
    score_mean: float = -1.0
    score_sd: float = 1.0
    score_shared_sd: float = 0.1
    score_track_sd: float = 0.02
    score_offset_sd: float = 0.01

    @property
    def intervals(self) -> int:
        return round(len(self.weights) * self.step_s / self.scrape_s)

    @property
    def per_step(self) -> int:
        return round(self.step_s / self.scrape_s)


@dataclasses.dataclass(frozen=True)
class Scenario:
    """What is wrong with the canary, if anything."""

    name: str
    error_factor: float = 1.0
    latency_factor: float = 1.0
    score_shift: float = 0.0

    @property
    def regression(self) -> bool:
        return self.error_factor != 1.0 or self.latency_factor != 1.0 or self.score_shift != 0.0


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("A/A"),
    Scenario("errors 1%->2%", error_factor=2.0),
    Scenario("errors 1%->10%", error_factor=10.0),
    Scenario("p99 +25%", latency_factor=1.25),
    Scenario("score shift", score_shift=0.2),
)


@dataclasses.dataclass(frozen=True)
class Batch:
    """Per-interval data of many rollouts: counts (R, T), histograms (R, T, K)."""

    stable_requests: FloatArray
    canary_requests: FloatArray
    stable_errors: FloatArray
    canary_errors: FloatArray
    stable_latency: FloatArray
    canary_latency: FloatArray
    stable_score: FloatArray
    canary_score: FloatArray


def ar1(rng: np.random.Generator, shape: tuple[int, int], phi: float, sd: float) -> FloatArray:
    """A stationary AR(1) series along the last axis with marginal standard deviation `sd`."""
    runs, steps = shape
    out = np.empty(shape)
    out[:, 0] = rng.normal(0.0, sd, runs)
    innovations = rng.normal(0.0, sd * math.sqrt(1.0 - phi * phi), shape)
    for t in range(1, steps):
        out[:, t] = phi * out[:, t - 1] + innovations[:, t]
    return out


def multinomial(rng: np.random.Generator, n: IntArray, probs: FloatArray) -> FloatArray:
    """Bucket counts for n observations with per-row bucket probabilities (..., K), by binomials."""
    counts = np.zeros(probs.shape)
    remaining = n.copy()
    left = np.ones(n.shape)
    for k in range(probs.shape[-1] - 1):
        p = np.clip(probs[..., k] / np.maximum(left, 1e-300), 0.0, 1.0)
        counts[..., k] = rng.binomial(remaining, p)
        remaining = remaining - counts[..., k].astype(np.int64)
        left = left - probs[..., k]
    counts[..., -1] = remaining
    return counts


def bucket_probs(cdf_at_bounds: FloatArray) -> FloatArray:
    """Per-bucket probabilities from the CDF at each finite bound (..., K-1) -> (..., K)."""
    padded = np.concatenate([np.zeros((*cdf_at_bounds.shape[:-1], 1)), cdf_at_bounds,
                             np.ones((*cdf_at_bounds.shape[:-1], 1))], axis=-1)
    return np.maximum(np.diff(padded, axis=-1), 0.0)


def latency_probs(world: World, log_shift: FloatArray) -> FloatArray:
    """Bucket probabilities of the lognormal latency, shifted on the log scale: (...) -> (..., K)."""
    edges = np.log(np.asarray(LATENCY_BOUNDS[:-1]))
    z = (edges - math.log(world.latency_median) - log_shift[..., None]) / world.latency_sigma
    return bucket_probs(special.ndtr(z))


def score_probs(world: World, logit_shift: FloatArray) -> FloatArray:
    """Bucket probabilities of the logit-normal score, shifted on the logit scale."""
    edges = special.logit(np.asarray(SCORE_BOUNDS[:-1]))
    z = (edges - world.score_mean - logit_shift[..., None]) / world.score_sd
    return bucket_probs(special.ndtr(z))


def _track_noise(
    rng: np.random.Generator, world: World, shape: tuple[int, int], sd: float, offset: float
) -> FloatArray:
    """One track's own AR(1) term plus its persistent offset (pods differ a little)."""
    return ar1(rng, shape, world.phi, sd) + rng.normal(0.0, offset, (shape[0], 1))


def simulate(world: World, scenario: Scenario, rps: float, runs: int, rng: np.random.Generator) -> Batch:
    """`runs` complete rollouts of `scenario` at `rps` total requests per second."""
    shape = (runs, world.intervals)
    t = (np.arange(world.intervals) + 1) * world.scrape_s
    phase = rng.uniform(0.0, 86400.0, (runs, 1))
    diurnal = 1.0 + world.diurnal * np.sin(2.0 * math.pi * (t[None, :] + phase) / 86400.0)
    rate = rps * diurnal * np.exp(ar1(rng, shape, world.phi, world.traffic_sd)) * world.scrape_s
    weight = np.repeat(np.asarray(world.weights), world.per_step)[None, :]
    canary_n = rng.poisson(rate * weight)
    stable_n = rng.poisson(rate * (1.0 - weight))

    shared = ar1(rng, shape, world.phi, world.error_shared_sd)
    def own(sd: float, offset: float) -> FloatArray:
        return _track_noise(rng, world, shape, sd, offset)

    p_stable = world.base_error * np.exp(shared + own(world.error_track_sd, world.error_offset_sd))
    p_canary = world.base_error * scenario.error_factor * np.exp(
        shared + own(world.error_track_sd, world.error_offset_sd))
    stable_errors = rng.binomial(stable_n, np.clip(p_stable, 0.0, 1.0))
    canary_errors = rng.binomial(canary_n, np.clip(p_canary, 0.0, 1.0))

    shared = ar1(rng, shape, world.phi, world.latency_shared_sd)
    lat_s = latency_probs(world, shared + own(world.latency_track_sd, world.latency_offset_sd))
    lat_c = latency_probs(world, shared + math.log(scenario.latency_factor)
                          + own(world.latency_track_sd, world.latency_offset_sd))
    shared = ar1(rng, shape, world.phi, world.score_shared_sd)
    score_s = score_probs(world, shared + own(world.score_track_sd, world.score_offset_sd))
    score_c = score_probs(world, shared + scenario.score_shift + own(world.score_track_sd, world.score_offset_sd))
    return Batch(
        stable_requests=stable_n.astype(np.float64),
        canary_requests=canary_n.astype(np.float64),
        stable_errors=stable_errors.astype(np.float64),
        canary_errors=canary_errors.astype(np.float64),
        stable_latency=multinomial(rng, stable_n, lat_s),
        canary_latency=multinomial(rng, canary_n, lat_c),
        stable_score=multinomial(rng, stable_n, score_s),
        canary_score=multinomial(rng, canary_n, score_c),
    )
