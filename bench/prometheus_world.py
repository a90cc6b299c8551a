"""A simulated world of pods and a Prometheus scraping them: the data the operator really reads.

`rollout_simulation` hands the judges per-track counts per interval, as if Prometheus returned
the truth. Here every pod keeps its own counters, as a model server with a Prometheus client
does, and a simulated Prometheus scrapes them; `promql` then reads the scraped samples the two
ways the operator can. The nuisances, each a setting that is off in the ideal world:

- **Pods.** A rollout of `replicas` (10) pods: the stable keeps all of them (a weighting
  provider with room to surge) and the canary gets `replicas.pods_for_weight` pods per step, as
  the operator sizes them (1, 2, 3, 4, 5 pods at 10-50 %), each born at its step's start with
  counters at zero. Traffic is split evenly over a track's pods.
- **Pod spread** (`pod_sd`): each pod's error rate is the version's times a lognormal factor
  exp(u), u ~ N(0, pod_sd^2), fixed for the pod's life. With one canary pod the canary's rate
  is that pod's, however much traffic it serves.
- **Error bursts** (`burst_mean`): errors come in clusters of 1 to 2 m - 1 (uniform, mean m) on
  one pod: one bad batch, one retried request. The mean error rate stays the same.
- **Traffic** (`ramp`, `burst_every_s`): shared by both tracks, the load moves linearly by up to
  `ramp` over the rollout and bursts to `burst_factor` times for `burst_s` seconds.
- **Latency**: lognormal (median 50 ms) plus an optional slow mode (`slow_share`) just under a
  bucket bound, binned into `buckets` (Prometheus' Go or Python defaults, or finer layouts).
- **Scrapes** (`Scraping`): each target (pod) is scraped every `scrape_s` at its own phase (as
  Prometheus spreads targets), with a small jitter per scrape; a scrape fails with probability
  `miss`, and Prometheus then writes stale markers for the target's series.

Series follow the Python client: `model_requests_total{code}` has one child per status code
(200, 500, 503), created at its first request, so an error series is born at the pod's first
error; the latency histogram has no labels and exists from the pod's start, at zero. Stable pods
have served for hours before the rollout, so their counters start large.

Events inside a scrape interval are Poisson around the pod's expected traffic (the integral of
the shared load times the pod's share), so counts are exact integers and the sum of a pod's
increments is its counter: the truth every read path is measured against.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from numpy.typing import NDArray
from scipy import special

from modelrollout.core import replicas as replica_sizing

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Prometheus' Go client `DefBuckets`.
GO_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf)
#: The Python client's default histogram buckets.
PYTHON_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, math.inf)
#: A finer layout: powers of 2^(1/4) from 1 ms to about 11 s (what native histograms' schema 2 gives).
FINE_BUCKETS: tuple[float, ...] = (*(round(0.001 * 2.0 ** (i / 4.0), 6) for i in range(54)), math.inf)

#: Status codes a pod answers with: one counter child each.
OK_CODE, ERROR_CODES = "200", ("500", "503")
CODES = (OK_CODE, *ERROR_CODES)


@dataclasses.dataclass(frozen=True)
class Scraping:
    """How Prometheus scrapes the pods, and the step the operator queries at."""

    scrape_s: float = 15.0
    step_s: float = 30.0
    """The range query's step: one judged interval (`increase(x[step])` reads a window of it)."""
    jitter_s: float = 0.0
    """Standard deviation of each scrape's delay around its target's schedule."""
    miss: float = 0.0
    """Probability that a scrape fails (stale markers for the target's series)."""
    lookback_s: float = 300.0
    left_open: bool = True
    """Prometheus 3 range selectors exclude the range's start; 2.x include it."""

    def describe(self) -> str:
        extra = (f", jitter {self.jitter_s:g} s" if self.jitter_s else "") + (
            f", {self.miss:.0%} missed" if self.miss else "")
        return f"step {self.step_s:g} s / scrape {self.scrape_s:g} s{extra}"


@dataclasses.dataclass(frozen=True)
class World:
    """The fixed assumptions of one set of simulated rollouts; every nuisance off by default."""

    weights: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)
    step_s: float = 300.0
    replicas: int = 10
    base_error: float = 0.01
    burst_mean: float = 1.0
    """Mean size of an error cluster (sizes uniform on 1..2m-1); 1 is independent errors."""
    pod_sd: float = 0.0
    ramp: float = 0.0
    """Traffic moves linearly from 1 - ramp to 1 + ramp over the rollout (or back; random per run)."""
    burst_every_s: float = math.inf
    burst_factor: float = 3.0
    burst_s: float = 30.0
    latency_median: float = 0.05
    latency_sigma: float = 0.5
    slow_share: float = 0.0
    """Share of requests in a slow mode just under `slow_bound` (uniform over its last 4 %)."""
    slow_bound: float = 0.25
    buckets: tuple[float, ...] = ()
    """Latency bucket bounds ending in +Inf; () simulates no histogram (count metrics only)."""
    scraping: Scraping = Scraping()

    @property
    def duration_s(self) -> float:
        return len(self.weights) * self.step_s

    def canary_pods(self, weight: float) -> int:
        return replica_sizing.pods_for_weight(self.replicas, round(100 * weight))

    @property
    def pods(self) -> int:
        return self.replicas + max(self.canary_pods(w) for w in self.weights)


@dataclasses.dataclass(frozen=True)
class Scenario:
    """What is wrong with the canary: its error rate and its latencies, as factors."""

    name: str
    error_factor: float = 1.0
    latency_factor: float = 1.0


@dataclasses.dataclass(frozen=True)
class Scrapes:
    """Every scrape attempt of every pod in `runs` rollouts: R runs, P pods, S attempts.

    Values are the counters as exposed at the attempt, nan where the series did not exist (the
    pod was not born, or a code had no request yet). `ok` is False for a failed scrape.
    """

    times: FloatArray
    """(R, P, S) scrape timestamps, increasing along S."""
    ok: BoolArray
    """(R, P, S) the scrape succeeded (and the target existed)."""
    codes: FloatArray
    """(R, P, S, C) `model_requests_total{code}` for the codes in `CODES`."""
    buckets: FloatArray
    """(R, P, S, K) cumulative `model_request_duration_seconds_bucket{le}`; K = 0 without a histogram."""
    canary: BoolArray
    """(P,) which pods run the canary."""
    born: FloatArray
    """(P,) when each pod started serving (-inf for stable pods)."""
    bounds: tuple[float, ...]


def pod_shares(world: World, grid: FloatArray) -> FloatArray:
    """Each pod's share of the total traffic at each grid time: (P, G); canary pods after stable ones."""
    weight = np.zeros(grid.shape)
    for index, w in enumerate(world.weights):
        weight = np.where(grid >= index * world.step_s, w, weight)
    canary_pods = np.zeros(grid.shape, dtype=np.int64)
    for index, w in enumerate(world.weights):
        canary_pods = np.where(grid >= index * world.step_s, world.canary_pods(w), canary_pods)
    shares = np.zeros((world.pods, grid.size))
    shares[: world.replicas] = (1.0 - weight) / world.replicas
    for pod in range(world.pods - world.replicas):
        alive = canary_pods > pod
        shares[world.replicas + pod] = np.where(alive, weight / np.maximum(canary_pods, 1), 0.0)
    return shares


def births(world: World) -> FloatArray:
    """When each pod began serving: stable pods long ago, canary pod i at the first step that needs it."""
    born = np.full(world.pods, -np.inf)
    for pod in range(world.pods - world.replicas):
        first = next(i for i, w in enumerate(world.weights) if world.canary_pods(w) > pod)
        born[world.replicas + pod] = first * world.step_s
    return born


def load(world: World, grid: FloatArray, runs: int, rng: np.random.Generator) -> FloatArray:
    """The shared load factor at each grid time: (R, G), mean about 1."""
    factor = np.ones((runs, grid.size))
    if world.ramp:
        start = rng.uniform(1.0 - world.ramp, 1.0 + world.ramp, (runs, 1))
        progress = np.clip(grid / world.duration_s, 0.0, 1.0)[None, :]
        factor = factor * (start + (2.0 - 2.0 * start) * progress)  # to 2 - start at the end
    if math.isfinite(world.burst_every_s):
        span = grid[-1] - grid[0]
        count = rng.poisson(span / world.burst_every_s, runs)
        for run in range(runs):
            for begin in rng.uniform(grid[0], grid[-1], count[run]):
                inside = (grid >= begin) & (grid < begin + world.burst_s)
                factor[run, inside] *= world.burst_factor
    return factor


def latency_probs(world: World, factor: float) -> FloatArray:
    """Bucket probabilities of the latency (lognormal plus the slow mode), all latencies x `factor`."""
    bounds = np.asarray(world.buckets[:-1])
    main = special.ndtr((np.log(bounds / factor) - math.log(world.latency_median)) / world.latency_sigma)
    low, high = 0.96 * world.slow_bound * factor, 0.996 * world.slow_bound * factor
    slow = np.clip((bounds - low) / (high - low), 0.0, 1.0)
    cdf = (1.0 - world.slow_share) * main + world.slow_share * slow
    return np.diff(np.concatenate([[0.0], cdf, [1.0]]))


def _at(cumulative: FloatArray, grid_start: float, times: FloatArray) -> FloatArray:
    """Linear interpolation of (R, P, G) cumulative values on a 1 s grid at (R, P, S) times."""
    position = np.clip(times - grid_start, 0.0, cumulative.shape[-1] - 1.000001)
    index = np.floor(position).astype(np.int64)
    frac = position - index
    low = np.take_along_axis(cumulative, index, axis=-1)
    high = np.take_along_axis(cumulative, index + 1, axis=-1)
    result: FloatArray = low + frac * (high - low)
    return result


def _errors(rng: np.random.Generator, expected: FloatArray, burst_mean: float) -> FloatArray:
    """Error counts in clusters of 1..2m-1 (uniform), with mean `expected` errors: same shape."""
    largest = max(1, round(2 * burst_mean - 1))
    clusters = expected / ((largest + 1) / 2.0) / largest  # Poisson clusters of each size
    total = np.zeros(expected.shape)
    for size in range(1, largest + 1):
        total += size * rng.poisson(clusters)
    return total


def _multinomial(rng: np.random.Generator, n: FloatArray, probs: FloatArray) -> FloatArray:
    """Bucket counts of n observations: (...) with per-pod probs broadcast as (..., K)."""
    counts = np.zeros((*n.shape, probs.shape[-1]))
    remaining = n.astype(np.int64)
    left = np.ones(probs.shape[:-1])
    for k in range(probs.shape[-1] - 1):
        p = np.clip(probs[..., k] / np.maximum(left, 1e-300), 0.0, 1.0)
        drawn = rng.binomial(remaining, np.broadcast_to(p, remaining.shape))
        counts[..., k] = drawn
        remaining = remaining - drawn
        left = left - probs[..., k]
    counts[..., -1] = remaining
    return counts


LEAD_STEPS = 4
"""Steps the operator reads before a window starts (`readings.LEAD_STEPS`): the world is scraped from before them."""


def simulate(world: World, scenario: Scenario, rps: float, runs: int, rng: np.random.Generator) -> Scrapes:
    """`runs` rollouts of `scenario` at `rps` requests per second in all, scraped as `world.scraping` says."""
    scraping = world.scraping
    first = -((1 + LEAD_STEPS) * scraping.step_s + 3.0 * scraping.scrape_s)
    attempts = math.ceil((world.duration_s - first) / scraping.scrape_s) + 2
    grid = np.arange(math.floor(first) - 2.0, world.duration_s + 2.0 * scraping.scrape_s + 3.0)
    pods = world.pods
    canary = np.arange(pods) >= world.replicas
    born = births(world)

    phase = rng.uniform(0.0, scraping.scrape_s, (runs, pods, 1))
    steps = first + np.arange(attempts)[None, None, :] * scraping.scrape_s
    jitter = np.clip(rng.normal(0.0, scraping.jitter_s, (runs, pods, attempts)), -0.25 * scraping.scrape_s,
                     0.25 * scraping.scrape_s) if scraping.jitter_s else 0.0
    times = steps + phase + jitter
    alive = times >= born[None, :, None]
    ok = alive & (rng.random(times.shape) >= scraping.miss)

    rate = rps * load(world, grid, runs, rng)[:, None, :] * pod_shares(world, grid)[None, :, :]
    cumulative = np.cumsum(rate, axis=-1)  # 1 s grid: requests expected since the grid's start
    expected = np.diff(_at(cumulative, grid[0], times), axis=-1, prepend=0.0)
    expected = np.where(alive, np.maximum(expected, 0.0), 0.0)

    pod_error = world.base_error * np.exp(rng.normal(0.0, world.pod_sd, (runs, pods, 1))) if world.pod_sd \
        else np.full((runs, pods, 1), world.base_error)
    pod_error = np.minimum(np.where(canary[None, :, None], pod_error * scenario.error_factor, pod_error), 0.5)
    fresh = np.empty((*times.shape, len(CODES)))
    fresh[..., 0] = rng.poisson(expected * (1.0 - pod_error))
    for c in range(1, len(CODES)):
        fresh[..., c] = _errors(rng, expected * pod_error / len(ERROR_CODES), world.burst_mean)

    # Stable pods have served for hours: their counters start large (canary pods start at zero).
    uptime = rng.uniform(3600.0, 48 * 3600.0, (runs, pods))
    prior = np.where(canary[None, :], 0.0, rps / world.replicas * uptime)
    fresh[:, :, 0, 0] += rng.poisson(prior * (1.0 - world.base_error))
    for c in range(1, len(CODES)):
        fresh[:, :, 0, c] += rng.poisson(prior * world.base_error / len(ERROR_CODES))
    # (their histograms too: `served` below includes these requests)
    codes = np.cumsum(fresh, axis=2)
    codes = np.where(alive[..., None] & (codes > 0.0), codes, np.nan)  # a child exists from its first count

    bounds = world.buckets
    if bounds:
        served = fresh.sum(axis=-1)
        probs = np.stack([latency_probs(world, 1.0), latency_probs(world, scenario.latency_factor)])
        per_pod = probs[canary.astype(np.int64)]  # (P, K)
        observed = _multinomial(rng, served, np.broadcast_to(per_pod[None, :, None, :], (*served.shape,
                                                                                           len(bounds))))
        buckets = np.cumsum(np.cumsum(observed, axis=2), axis=-1)
        buckets = np.where(alive[..., None], buckets, np.nan)
    else:
        buckets = np.zeros((*times.shape, 0))
    return Scrapes(times=times, ok=ok, codes=codes, buckets=buckets, canary=canary, born=born, bounds=bounds)
