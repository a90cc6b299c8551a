"""From cached per-pod increments to the samples the judges read, per pod and per track.

A pod is there for an interval from the first step its counter was seen at (from the start when
it was there at the baseline) to the last; outside that its numbers are nan, inside they are
exact increments (0 when it served nothing). A track's total in an interval is the sum over its
pods that were there, and nan when none was: the judges drop an interval that one track has no
data for.

Counts: a pod's events are 0 where its requests were counted and no events series exists (an
error series only appears with the first error). When the events query does not keep pods apart
(a custom query without `pod`), only track totals are given, and `pods` is empty.

Histograms: the bounds are those every pod of both tracks has, +Inf included. Cumulative counts
at a subset of a histogram's bounds are the cumulative counts of a coarser histogram, so a
version that adds or drops buckets is still compared, on the buckets both have.

Staleness, per the last interval each track's pods were seen in:
- no pod of either track seen for STALE_STEPS steps before the last closed interval: the series
  ended (Prometheus stopped scraping them, or they were deleted), and the data left is not
  judged;
- the candidate's pods last seen STALE_STEPS steps or more before stable's: its pods are no longer
  scraped, and judging what they left would pass a version nobody sees. (Stable's may end: at
  weight 100 with no room to spare its last pod goes.)
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence

from modelrollout import errors
from modelrollout.adapters.metrics import caching
from modelrollout.core.analysis import samples

STALE_STEPS = 3
"""Steps without any sample before a series counts as ended (a scrape or two may lag; three
missed steps in a row mean its pods are gone)."""


def _alive(view: caching.View, unit: caching.UnitView) -> list[bool]:
    return [unit.first <= i <= unit.last for i in range(view.intervals)]


def _total(columns: Sequence[Sequence[float]], size: int) -> list[float]:
    """Per interval, the sum of the values that are there; nan where none is."""
    out = []
    for i in range(size):
        present = [c[i] for c in columns if not math.isnan(c[i])]
        out.append(math.fsum(present) if present else math.nan)
    return out


def _ends(view: caching.View) -> list[float]:
    return [view.start + (i + 1) * view.step for i in range(view.intervals)]


def check_fresh(query: str, view: caching.View, candidate_revision: str, candidate_track: str) -> None:
    """Raises MetricUnavailable when the data ended (see the module's docstring)."""
    last: dict[bool, int] = {}
    for (revision, _), unit in view.units.items():
        candidate = revision == candidate_revision
        last[candidate] = max(last.get(candidate, -1), unit.last)
    if not last or view.intervals == 0:
        return
    newest = max(last.values())
    if view.intervals - 1 - newest >= STALE_STEPS:
        raise errors.MetricUnavailable(
            f"query {query!r}: no sample of either revision since {_clock(view, newest)}, "
            f"{(view.intervals - 1 - newest) * view.step:.0f} s before the last closed interval (stale: is "
            "Prometheus still scraping these pods?)")
    if True in last and False in last and last[False] - last[True] >= STALE_STEPS:
        raise errors.MetricUnavailable(
            f"query {query!r}: the {candidate_track} series stopped at {_clock(view, last[True])}, "
            f"{(last[False] - last[True]) * view.step:.0f} s before stable's (stale: are its pods still scraped?)")


def _clock(view: caching.View, index: int) -> str:
    at = view.start + (index + 1) * view.step
    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%H:%M:%SZ")


def counts(metric: str, exposure: caching.View, events: caching.View, candidate_revision: str) -> samples.CountSamples:
    """Per-pod and per-track counts of one metric over the closed intervals both views cover."""
    size = min(exposure.intervals, events.intervals)
    per_pod = all(key in exposure.units for key in events.units) and any(pod for _, pod in exposure.units)
    pods: list[samples.PodCounts] = []
    columns: dict[bool, tuple[list[list[float]], list[list[float]]]] = {True: ([], []), False: ([], [])}
    for key, unit in sorted(exposure.units.items()):
        alive = _alive(exposure, unit)[:size]
        requests = unit.increments.get(caching.COUNT, ())
        bad = events.units.get(key)
        bad_counts = bad.increments.get(caching.COUNT, ()) if bad is not None else ()
        n = [requests[i] if alive[i] and i < len(requests) else math.nan for i in range(size)]
        x = [(bad_counts[i] if i < len(bad_counts) else 0.0) if alive[i] else math.nan for i in range(size)]
        candidate = key[0] == candidate_revision
        columns[candidate][0].append(n)
        columns[candidate][1].append(x)
        pods.append(samples.PodCounts(key[1], candidate, tuple(n), tuple(x)))
    if not per_pod:  # events without pods: only track totals can be told
        for candidate in (True, False):
            columns[candidate][1].clear()
        for key, unit in events.units.items():
            alive = _alive(events, unit)[:size]
            found = unit.increments.get(caching.COUNT, ())
            columns[key[0] == candidate_revision][1].append(
                [found[i] if alive[i] and i < len(found) else math.nan for i in range(size)])
    stable_n, stable_x = (_total(c, size) for c in columns[False])
    canary_n, canary_x = (_total(c, size) for c in columns[True])
    intervals = tuple(
        samples.CountInterval(
            stable_requests=stable_n[i], stable_events=_events(stable_x[i], stable_n[i]),
            canary_requests=canary_n[i], canary_events=_events(canary_x[i], canary_n[i]), end=end)
        for i, end in enumerate(_ends(exposure)[:size]))
    return samples.CountSamples(metric, intervals, pods=tuple(pods) if per_pod else ())


def _events(events: float, requests: float) -> float:
    """A track's events where its requests were counted: 0 when no pod had an events series."""
    if math.isnan(requests):
        return math.nan
    return 0.0 if math.isnan(events) else events


def histogram(metric: str, view: caching.View, candidate_revision: str) -> samples.HistogramSamples:
    """Per-pod and per-track bucket increments (not cumulative) on the bounds every pod has."""
    if not view.units:
        return samples.HistogramSamples(metric, (math.inf,))
    common = set.intersection(*(set(unit.increments) for unit in view.units.values()))
    bounds = tuple(sorted(common))
    if math.inf not in common:
        every = sorted({le for unit in view.units.values() for le in unit.increments})
        return samples.HistogramSamples(metric, (math.inf,), error=(
            f"histogram {metric}: no +Inf bucket common to every pod (bounds seen: {every[:20]})"))
    size = view.intervals
    pods: list[samples.PodBuckets] = []
    tracks: dict[bool, list[list[tuple[float, ...]]]] = {True: [], False: []}
    nothing = (math.nan,) * len(bounds)
    for key, unit in sorted(view.units.items()):
        alive = _alive(view, unit)
        rows = []
        for i in range(size):
            if alive[i]:
                rows.append(samples.buckets_from_cumulative([unit.increments[le][i] for le in bounds]))
            else:
                rows.append(nothing)
        candidate = key[0] == candidate_revision
        tracks[candidate].append(rows)
        pods.append(samples.PodBuckets(key[1], candidate, tuple(rows)))
    intervals = tuple(
        samples.HistogramInterval(_bucket_total(tracks[False], i, len(bounds)),
                                  _bucket_total(tracks[True], i, len(bounds)), end=end)
        for i, end in enumerate(_ends(view)))
    has_pods = any(key[1] for key in view.units)
    return samples.HistogramSamples(metric, bounds, intervals, pods=tuple(pods) if has_pods else ())


def _bucket_total(pods: list[list[tuple[float, ...]]], i: int, width: int) -> tuple[float, ...]:
    present = [rows[i] for rows in pods if not math.isnan(rows[i][0])]
    if not present:
        return (math.nan,) * width
    return tuple(math.fsum(row[k] for row in present) for k in range(width))
