"""What the metric adapter hands to the judges: per-interval numbers per track, nothing else.

The judges never see a Prometheus response. The adapter runs one range query per track and
metric from the moment the canary first received traffic in this rollout up to now, and fills
these immutable records. Three choices follow from that:

- **Per-interval series, not totals.** The canary's share of traffic changes over time (weights
  move between steps, the diurnal curve moves both tracks), and the comparison conditions on
  each interval's share; a total would mix the shares and bias the ratio.
- **Recomputed from scratch each tick.** Prometheus keeps the data, so the operator keeps no
  statistical state of its own: after a restart the next tick sees the same series and reaches
  the same verdict. Evidence therefore carries across steps of a rollout with no bookkeeping.
- **Exact increments, or missing.** The Prometheus adapter differences raw counters per pod
  (`counters`), so counts are integers; an interval a track has no data for is `nan`. The judges
  still drop an interval with a nan, a negative value or more events than requests (see
  `quality`): from another source, or from a bug, such data is not evidence.

Histograms carry *per-bucket* increments (not cumulative in `le`), because every test uses the
count in a bucket or beyond a boundary; `buckets_from_cumulative()` is the one conversion from
Prometheus' cumulative `le` counts.

A query that failed (Prometheus down, a bad template) is not data: the adapter sets `error`,
and the judges answer ERROR, never PASS or FAIL.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence


@dataclasses.dataclass(frozen=True)
class CountInterval:
    """One interval of a count metric: requests and events (errors, failed predictions) per track."""

    stable_requests: float
    stable_events: float
    canary_requests: float
    canary_events: float
    end: float = math.nan
    """Unix time of the interval's end, as Prometheus stamps it; only used to report the window."""


@dataclasses.dataclass(frozen=True)
class PodCounts:
    """One pod's share of a count metric: per-interval increments aligned with the samples' intervals.

    The pod, not the track, is the unit that varies (bursts come from one process, and pods of one
    version differ), so the robust judges read these when the adapter can give them. nan marks an
    interval the pod had no sample in; 0 an interval it served nothing in.
    """

    pod: str
    canary: bool
    requests: tuple[float, ...]
    events: tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class CountSamples:
    """A count metric since the analysis began, one record per interval, oldest first."""

    metric: str
    intervals: tuple[CountInterval, ...] = ()
    error: str | None = None
    """Why the series could not be read; set by the adapter, it makes the verdict ERROR."""
    pods: tuple[PodCounts, ...] = ()
    """The same data per pod (each pod's tuples as long as `intervals`), or () when the source
    cannot tell pods apart: the judges then treat each track as one pod."""

    def __post_init__(self) -> None:
        for pod in self.pods:
            if len(pod.requests) != len(self.intervals) or len(pod.events) != len(self.intervals):
                raise ValueError(f"{self.metric}: pod {pod.pod} does not have {len(self.intervals)} intervals")


@dataclasses.dataclass(frozen=True)
class HistogramInterval:
    """One interval of a histogram: per-bucket (non-cumulative) increments per track."""

    stable: tuple[float, ...]
    canary: tuple[float, ...]
    end: float = math.nan


@dataclasses.dataclass(frozen=True)
class PodBuckets:
    """One pod's histogram: per interval, per-bucket (non-cumulative) increments."""

    pod: str
    canary: bool
    buckets: tuple[tuple[float, ...], ...]


@dataclasses.dataclass(frozen=True)
class HistogramSamples:
    """A histogram metric since the analysis began, with the buckets' upper bounds shared by both tracks."""

    metric: str
    bounds: tuple[float, ...]
    """Bucket upper bounds (`le`), strictly increasing, the last one +Inf."""
    intervals: tuple[HistogramInterval, ...] = ()
    error: str | None = None
    pods: tuple[PodBuckets, ...] = ()
    """The same data per pod, or () when the source cannot tell pods apart."""

    def __post_init__(self) -> None:
        # A shape mismatch is a bug in the adapter, not a data-quality problem: say so loudly.
        if self.error is not None:
            return
        if not self.bounds or self.bounds[-1] != math.inf:
            raise ValueError(f"{self.metric}: the last bucket bound must be +Inf, got {self.bounds}")
        if any(low >= high for low, high in zip(self.bounds, self.bounds[1:], strict=False)):
            raise ValueError(f"{self.metric}: bucket bounds must increase strictly, got {self.bounds}")
        for index, interval in enumerate(self.intervals):
            if len(interval.stable) != len(self.bounds) or len(interval.canary) != len(self.bounds):
                raise ValueError(f"{self.metric}: interval {index} does not have {len(self.bounds)} buckets")
        for pod in self.pods:
            if len(pod.buckets) != len(self.intervals) or any(len(b) != len(self.bounds) for b in pod.buckets):
                raise ValueError(f"{self.metric}: pod {pod.pod} does not have {len(self.intervals)} intervals "
                                 f"of {len(self.bounds)} buckets")


def increments(values: Sequence[float]) -> tuple[float, ...]:
    """Per-interval increments of a counter from its values at successive scrapes.

    A drop is a counter reset (the process restarted): the increment is the new value, as in
    Prometheus' `increase()`. A missing value (nan) gives nan for the intervals on both sides.

    increments([3, 5, 9]) -> (2.0, 4.0); increments([3, 5, 1]) -> (2.0, 1.0)
    increments([3, nan, 9]) -> (nan, nan)
    """
    result: list[float] = []
    for before, after in itertools.pairwise(values):
        if math.isnan(before) or math.isnan(after):
            result.append(math.nan)
        else:
            result.append(float(after - before) if after >= before else float(after))
    return tuple(result)


def buckets_from_cumulative(cumulative: Sequence[float]) -> tuple[float, ...]:
    """Per-bucket counts from Prometheus' cumulative `le` counts (same order as the bounds).

    A negative difference (buckets scraped a moment apart) is kept: the judges drop the interval.

    buckets_from_cumulative([2, 5, 5, 9]) -> (2.0, 3.0, 0.0, 4.0)
    buckets_from_cumulative([]) -> ()
    """
    result: list[float] = []
    previous = 0.0
    for value in cumulative:
        result.append(float(value) - previous)
        previous = float(value)
    return tuple(result)
