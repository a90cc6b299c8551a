"""The result of one test on one metric: a verdict and the evidence behind it.

Every judge returns a `MetricResult`. The status mapper writes `result.to_status()` into
`status.analysis[]` as it is (a JSON-serialisable dict with camelCase keys) and uses `reason` for
the Event. The dataclass keeps full precision for the core; `to_status()` rounds for people and
turns non-finite numbers into None, since JSON has no inf or nan.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from modelrollout.api import verdicts as api_verdicts


@dataclasses.dataclass(frozen=True)
class Track:
    """What one track contributed: requests (or observations), events, and its point value."""

    requests: float = 0.0
    events: float = 0.0
    value: float = math.nan
    """The metric's value on this track: an event rate, or a quantile from the buckets."""


@dataclasses.dataclass(frozen=True)
class Window:
    """Which intervals the test used."""

    intervals: int = 0
    dropped: int = 0
    """Intervals left out: missing (nan), negative (counter reset) or inconsistent increments."""
    start: float = math.nan
    end: float = math.nan


@dataclasses.dataclass(frozen=True)
class MetricResult:
    """One test's verdict on one metric, with its evidence."""

    metric: str
    check: str
    """Which test: "compare", "slo-max", "slo-min" or "drift"."""
    verdict: api_verdicts.Verdict
    reason: str
    stable: Track = Track()
    canary: Track = Track()
    ratio: float | None = None
    """Estimated canary/stable rate ratio (or tail-share ratio); None where it does not apply."""
    interval: tuple[float, float] | None = None
    """Anytime-valid confidence sequence for `ratio` (compare) or the canary's value (SLO)."""
    confidence: float | None = None
    """Coverage of `interval`, e.g. 0.99 for a 99 % confidence sequence."""
    e_value: float | None = None
    """Largest e-value seen so far against the null "no regression"; its inverse is `p_value`."""
    p_value: float | None = None
    """Anytime-valid p-value of the regression test: it may be read at every tick."""
    alpha: float | None = None
    """The level this test was run at (its share of the rollout's alpha)."""
    window: Window = Window()
    dispersion: float | None = None
    """How many times more the counts vary than independent events would (bursts); 1 for none."""
    pod_spread: float | None = None
    """Spread of stable pods' log rates beyond chance, which widens the tolerance."""
    warning: str | None = None
    """Something the user should fix although the test runs (buckets too coarse for the tolerance)."""

    @property
    def samples(self) -> int:
        """Requests or observations of both tracks that the test used."""
        return round(self.stable.requests + self.canary.requests)

    def to_status(self) -> dict[str, Any]:
        """The entry for `status.analysis[]`: JSON-serialisable, camelCase, rounded for reading.

        e.g. {"metric": "error-rate", "check": "compare", "verdict": "Pass", "stable": 0.004,
        "canary": 0.005, "ratio": 1.25, "interval": [0.61, 2.4], "eValue": 0.31, "pValue": 1.0,
        "samples": 18320, "window": {...}, "reason": "..."}
        """
        return {
            "metric": self.metric,
            "check": self.check,
            "verdict": self.verdict.value,
            "stable": _rounded(self.stable.value),
            "canary": _rounded(self.canary.value),
            "ratio": _rounded(self.ratio),
            "interval": None if self.interval is None else [_rounded(v) for v in self.interval],
            "confidence": _rounded(self.confidence),
            "eValue": _rounded(self.e_value),
            "pValue": _rounded(self.p_value),
            "samples": self.samples,
            "events": {"stable": _rounded(self.stable.events), "canary": _rounded(self.canary.events)},
            "window": {
                "intervals": self.window.intervals,
                "dropped": self.window.dropped,
                "start": _rounded(self.window.start, digits=12),
                "end": _rounded(self.window.end, digits=12),
            },
            "dispersion": _rounded(self.dispersion),
            "podSpread": _rounded(self.pod_spread),
            "warning": self.warning,
            "reason": self.reason,
        }


def _rounded(value: float | None, digits: int = 4) -> float | None:
    """Round to `digits` significant digits; non-finite and None become None (JSON has neither).

    _rounded(0.0123456) -> 0.01235; _rounded(math.inf) -> None; _rounded(0.0) -> 0.0
    """
    if value is None or not math.isfinite(value):
        return None
    if value == 0.0:
        return 0.0
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def number(value: float | None) -> str:
    """A number for a reason string: 3 significant digits, "inf" and "n/a" spelled out.

    number(0.031234) -> "0.0312"; number(3.1) -> "3.1"; number(None) -> "n/a"
    """
    if value is None or math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf"
    return f"{value:.3g}"


def error(metric: str, check: str, reason: str) -> MetricResult:
    """The result for a metric that could not be read or judged: ERROR, never PASS or FAIL."""
    return MetricResult(metric=metric, check=check, verdict=api_verdicts.Verdict.ERROR, reason=reason)
