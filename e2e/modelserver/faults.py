"""The faults a model server can be told to have, read from its pod's environment.

Each e2e scenario makes a new version worse in one way (slower, failing, skewed, crashing)
by setting these variables in the ModelDeployment's pod template; the operator must then see
it in Prometheus and roll back. OUTCOME_RATE, read alongside, is not a fault but how often an
answered prediction converts, the business outcome an A/B test of a challenger compares. A
bad value stops the server at start, loudly, rather than running a scenario without it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

#: Spread of the added latency: lognormal with this sigma, so p99 is about 2.8x the mean.
LATENCY_SIGMA = 0.5


class FaultConfigError(ValueError):
    """A FAULT_* or OUTCOME_RATE variable that cannot be used; the message names it."""


@dataclass(frozen=True)
class Faults:
    """What to inject. The zero value injects nothing.

    - `error_rate`: share of predictions answered 500 (FAULT_ERROR_RATE, 0..1);
    - `error_burst`: mean length of a run of failures (FAULT_ERROR_BURST, >= 1, default 1: each
      request fails on its own); the share of failures stays `error_rate` (see `Failures`);
    - `latency_ms`: mean added latency, lognormal (FAULT_LATENCY_MS, >= 0);
    - `prediction_shift`: added to every logit (FAULT_PREDICTION_SHIFT, any float);
    - `crash_after_s`: exit non-zero this long after start (FAULT_CRASH=1, FAULT_CRASH_AFTER_S,
      default 1), or None;
    - `outcome_rate`: share of answered predictions that convert (OUTCOME_RATE, 0..1).
    """

    error_rate: float = 0.0
    error_burst: float = 1.0
    latency_ms: float = 0.0
    prediction_shift: float = 0.0
    crash_after_s: float | None = None
    outcome_rate: float = 0.0

    def added_latency_s(self, rng: random.Random) -> float:
        """One draw of the added latency in seconds, with mean `latency_ms` (0 if none)."""
        if self.latency_ms <= 0.0:
            return 0.0
        mu = math.log(self.latency_ms / 1000.0) - LATENCY_SIGMA**2 / 2.0
        return rng.lognormvariate(mu, LATENCY_SIGMA)

    def fails(self, rng: random.Random) -> bool:
        """Whether this request gets an injected 500, each request on its own (no bursts)."""
        return self.error_rate > 0.0 and rng.random() < self.error_rate

    def converts(self, rng: random.Random) -> bool:
        """Whether an answered prediction converts, each on its own."""
        return self.outcome_rate > 0.0 and rng.random() < self.outcome_rate


class Failures:
    """Which requests fail: on their own, or in bursts of about `error_burst` at the same rate.

    Real errors come in runs (one bad batch, a retried request, a GC pause), which makes error
    counts overdispersed: with bursts of exactly k the variance is k times a binomial's. A burst
    has floor(k) or ceil(k) requests (mean k) and starts at a request that is not in one with
    probability p = r / (r + k (1 - r)), so that failures are a share r of all requests: runs
    of (1 - p) / p good requests on average alternate with runs of k failures.
    """

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.left = 0
        """Failures still to come in the current burst."""

    def fails(self, rng: random.Random) -> bool:
        rate, burst = self.faults.error_rate, self.faults.error_burst
        if burst <= 1.0:
            return self.faults.fails(rng)
        if self.left > 0:
            self.left -= 1
            return True
        if rate <= 0.0 or rng.random() >= rate / (rate + burst * (1.0 - rate)):
            return False
        length = math.floor(burst) + (1 if rng.random() < burst - math.floor(burst) else 0)
        self.left = length - 1
        return True


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise FaultConfigError(f"{name}={raw!r}: not a number") from None
    if not (low <= value <= high) or math.isnan(value):
        raise FaultConfigError(f"{name}={raw!r}: must be within [{low}, {high}]")
    return value


def from_env(env: Mapping[str, str]) -> Faults:
    """Parses the FAULT_* variables and OUTCOME_RATE.

    >>> from_env({"FAULT_ERROR_RATE": "0.3"}).error_rate
    0.3
    >>> from_env({"FAULT_CRASH": "1"}).crash_after_s
    1.0
    >>> from_env({}) == Faults()
    True
    """
    crash = env.get("FAULT_CRASH", "").strip().lower()
    if crash not in ("", "0", "1", "true", "false"):
        raise FaultConfigError(f"FAULT_CRASH={crash!r}: use 1 or 0")
    crash_after: float | None = None
    if crash in ("1", "true"):
        crash_after = _number(env, "FAULT_CRASH_AFTER_S", 1.0, 0.0, 86400.0)
    return Faults(
        error_rate=_number(env, "FAULT_ERROR_RATE", 0.0, 0.0, 1.0),
        error_burst=_number(env, "FAULT_ERROR_BURST", 1.0, 1.0, 1000.0),
        latency_ms=_number(env, "FAULT_LATENCY_MS", 0.0, 0.0, 600_000.0),
        prediction_shift=_number(env, "FAULT_PREDICTION_SHIFT", 0.0, -100.0, 100.0),
        crash_after_s=crash_after,
        outcome_rate=_number(env, "OUTCOME_RATE", 0.0, 0.0, 1.0),
    )
