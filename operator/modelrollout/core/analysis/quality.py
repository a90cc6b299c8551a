"""The data-quality gate: which intervals a test may use, and whether there is enough of them.

It runs before any statistic, and it can only ever say ERROR or INCONCLUSIVE, never FAIL: bad
data is not evidence of a regression, and missing data is not evidence of health.

- An interval with a nan, a negative increment (a counter reset the adapter could not repair),
  or more events than requests is dropped *whole*, for both tracks, because the comparison
  conditions on each interval's share of traffic and needs both sides of it.
- An interval where one track had no requests carries no comparison (all its events come from
  one side) and is skipped by the arithmetic itself.
- Too few requests on either track, or too few events overall (settings `min_requests`,
  `min_events`), gives INCONCLUSIVE.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import NDArray

from modelrollout.core.analysis import results, samples, settings

FloatArray = NDArray[np.float64]


@dataclasses.dataclass(frozen=True)
class Counts:
    """A count series with unusable intervals zeroed: arrays of shape (T,)."""

    stable_requests: FloatArray
    stable_events: FloatArray
    canary_requests: FloatArray
    canary_events: FloatArray
    window: results.Window
    valid: NDArray[np.bool_]
    """Which intervals are kept (T,): per-pod data must drop the same ones."""


@dataclasses.dataclass(frozen=True)
class Histograms:
    """A histogram series with unusable intervals zeroed: arrays of shape (T, K)."""

    bounds: FloatArray
    stable: FloatArray
    canary: FloatArray
    window: results.Window
    valid: NDArray[np.bool_]


def _window(valid: NDArray[np.bool_], ends: FloatArray) -> results.Window:
    used = ends[valid]
    finite = used[np.isfinite(used)]
    return results.Window(
        intervals=int(valid.sum()),
        dropped=int((~valid).sum()),
        start=float(finite[0]) if finite.size else float("nan"),
        end=float(finite[-1]) if finite.size else float("nan"),
    )


def counts(series: samples.CountSamples) -> Counts:
    """Clean a count series: drop intervals with nan, negative values or more events than requests.

    counts(intervals [(100, 1, 10, 0), (nan, 1, 10, 0)]) -> one interval used, one dropped
    """
    raw = np.array(
        [(i.stable_requests, i.stable_events, i.canary_requests, i.canary_events) for i in series.intervals],
        dtype=np.float64,
    ).reshape(-1, 4)
    ends = np.array([i.end for i in series.intervals], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        valid = (
            np.isfinite(raw).all(axis=1)
            & (raw >= 0.0).all(axis=1)
            & (raw[:, 1] <= raw[:, 0])
            & (raw[:, 3] <= raw[:, 2])
        )
    clean = np.where(valid[:, None], raw, 0.0)
    return Counts(clean[:, 0], clean[:, 1], clean[:, 2], clean[:, 3], _window(valid, ends), valid)


def histograms(series: samples.HistogramSamples) -> Histograms:
    """Clean a histogram series: drop intervals where either track has a nan or negative bucket."""
    k = len(series.bounds)
    stable = np.array([i.stable for i in series.intervals], dtype=np.float64).reshape(-1, k)
    canary = np.array([i.canary for i in series.intervals], dtype=np.float64).reshape(-1, k)
    ends = np.array([i.end for i in series.intervals], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        usable = np.isfinite(stable) & np.isfinite(canary) & (stable >= 0.0) & (canary >= 0.0)
    valid: NDArray[np.bool_] = np.asarray(usable.all(axis=1), dtype=np.bool_)
    return Histograms(
        bounds=np.asarray(series.bounds, dtype=np.float64),
        stable=np.where(valid[:, None], stable, 0.0),
        canary=np.where(valid[:, None], canary, 0.0),
        window=_window(valid, ends),
        valid=valid,
    )


def shortfall(
    stable_requests: float, canary_requests: float, events: float, config: settings.AnalysisSettings
) -> str | None:
    """Why there is not enough data for a verdict yet, or None when there is.

    shortfall(500, 40, 3, DEFAULT) -> "canary has 40 requests, needs 100"
    shortfall(500, 400, 3, DEFAULT) -> None
    """
    for track, requests in (("stable", stable_requests), ("canary", canary_requests)):
        if requests < config.min_requests:
            return f"{track} has {requests:.0f} requests, needs {config.min_requests:.0f}"
    if events < config.min_events:
        return f"{events:.0f} events in both tracks, needs {config.min_events:.0f}"
    return None
