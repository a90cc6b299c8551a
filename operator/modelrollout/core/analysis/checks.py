"""What to check on one metric: the user's `slo` and `compare`, as plain values the judges read.

The handler maps each `spec.analysis.metrics[]` entry to a `MetricCheck`. The kind of test
follows from the samples the adapter returns: count samples are judged as an event *rate*
(errors per request); histogram samples with a `quantile` are judged at that quantile (p99
latency); histogram samples without one are judged as a whole *distribution* (prediction-score
or input-feature drift).

Tolerance is relative and one-sided, in the bad direction: with `lower-is-better` and tolerance
0.10 the canary fails only when the evidence excludes "at most 1.10 times stable"; with
`higher-is-better` only when it excludes "at least 0.90 times stable". For a quantile the ratio
is taken on the share of observations beyond stable's quantile bucket boundary (histogram
buckets are too coarse to resolve a 10 % move of the quantile's value, but the share beyond a
fixed boundary moves several-fold: a +25 % shift of a lognormal latency doubles or triples the
share above stable's p99 boundary). For a distribution it is taken, at every bucket boundary,
on the share of observations on the boundary's rarer side, in both directions.
"""

from __future__ import annotations

import dataclasses
import enum


class Direction(str, enum.Enum):
    LOWER_IS_BETTER = "lower-is-better"
    HIGHER_IS_BETTER = "higher-is-better"


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Canary against stable: which way is worse, and by how much the canary may be worse."""

    direction: Direction = Direction.LOWER_IS_BETTER
    tolerance: float = 0.10
    """Relative margin the canary may be worse by before it fails; 0 means "no worse at all"."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.tolerance < 1.0:
            raise ValueError(f"tolerance must be in [0, 1), got {self.tolerance}")

    @property
    def null_ratio(self) -> float:
        """The worst ratio (canary / stable) still tolerated: 1 + tol, or 1 - tol if higher is better.

        Comparison(tolerance=0.1).null_ratio -> 1.1
        Comparison(Direction.HIGHER_IS_BETTER, 0.1).null_ratio -> 0.9
        """
        if self.direction is Direction.LOWER_IS_BETTER:
            return 1.0 + self.tolerance
        return 1.0 - self.tolerance

    @property
    def upward(self) -> bool:
        """True when a larger canary rate (or tail share) is the bad direction."""
        return self.direction is Direction.LOWER_IS_BETTER


@dataclasses.dataclass(frozen=True)
class Slo:
    """Absolute bounds on the canary alone: a rate (errors per request) or a quantile's value."""

    max: float | None = None
    min: float | None = None

    def __post_init__(self) -> None:
        if self.max is None and self.min is None:
            raise ValueError("an slo needs max, min or both")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"slo min {self.min} is above max {self.max}")


@dataclasses.dataclass(frozen=True)
class MetricCheck:
    """One metric of `spec.analysis.metrics`: its name, its SLO and its comparison."""

    name: str
    slo: Slo | None = None
    compare: Comparison | None = None
    quantile: float | None = None
    """For histograms: judge at this quantile (0.99 for p99); None judges the whole distribution."""

    def __post_init__(self) -> None:
        if self.quantile is not None and not 0.0 < self.quantile < 1.0:
            raise ValueError(f"{self.name}: quantile must be in (0, 1), got {self.quantile}")

    @property
    def tests(self) -> int:
        """How many tests can fail on this metric: each shares the rollout's alpha (an SLO with both
        bounds counts twice).

        MetricCheck("e", slo=Slo(max=0.01), compare=Comparison()).tests -> 2
        MetricCheck("e").tests -> 0
        """
        slo_tests = 0 if self.slo is None else (self.slo.max is not None) + (self.slo.min is not None)
        return slo_tests + (self.compare is not None)
