"""From per-pod increments to the judges' samples: pods, track totals, staleness, common buckets."""

from __future__ import annotations

import math

import pytest

from modelrollout import errors
from modelrollout.adapters.metrics import assembling, caching

NAN = math.nan
INF = math.inf
C = caching.COUNT


def unit(counts: list[float], first: int = -1, last: int | None = None) -> caching.UnitView:
    return caching.UnitView({C: tuple(counts)}, first, len(counts) - 1 if last is None else last)


def view(units: dict[tuple[str, str], caching.UnitView], intervals: int = 4) -> caching.View:
    return caching.View(start=1000.0, step=15.0, intervals=intervals, units=units)


def same(a: tuple[float, ...] | list[float], b: tuple[float, ...] | list[float]) -> bool:
    return len(a) == len(b) and all((math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b, strict=True))


def test_track_totals_are_sums_over_pods_and_pods_come_with_them() -> None:
    exposure = view({("old", "s1"): unit([10, 10, 10, 10]), ("old", "s2"): unit([5, 5, 5, 5]),
                     ("new", "c1"): unit([2, 3, 2, 3])})
    events = view({("old", "s1"): unit([1, 0, 0, 1]), ("new", "c1"): unit([0, 1, 0, 0])})
    found = assembling.counts("error-rate", exposure, events, "new")
    assert [i.stable_requests for i in found.intervals] == [15, 15, 15, 15]
    assert [i.stable_events for i in found.intervals] == [1, 0, 0, 1]
    assert [i.canary_events for i in found.intervals] == [0, 1, 0, 0]
    assert [i.end for i in found.intervals] == [1015, 1030, 1045, 1060]
    s2 = next(p for p in found.pods if p.pod == "s2")
    assert s2.events == (0, 0, 0, 0) and not s2.canary  # no error series yet: none happened
    assert {p.pod for p in found.pods if p.canary} == {"c1"}


def test_a_pod_is_nan_outside_the_intervals_it_was_seen_in() -> None:
    exposure = view({("old", "s1"): unit([10, 10, 10, 10]),
                     ("new", "c1"): unit([0, 4, 4, 0], first=1, last=2)})
    found = assembling.counts("error-rate", exposure, view({}), "new")
    c1 = found.pods[0] if found.pods[0].pod == "c1" else found.pods[1]
    assert same(c1.requests, [NAN, 4, 4, NAN]) and same(c1.events, [NAN, 0, 0, NAN])
    assert same([i.canary_requests for i in found.intervals], [NAN, 4, 4, NAN])  # no canary pod: no data


def test_events_a_query_cannot_split_by_pod_give_track_totals_only() -> None:
    exposure = view({("old", "s1"): unit([10, 10, 10, 10]), ("new", "c1"): unit([5, 5, 5, 5])})
    events = view({("old", ""): unit([1, 1, 0, 0]), ("new", ""): unit([0, 2, 0, 0])})
    found = assembling.counts("timeouts", exposure, events, "new")
    assert found.pods == ()
    assert [i.canary_events for i in found.intervals] == [0, 2, 0, 0]
    assert [i.stable_events for i in found.intervals] == [1, 1, 0, 0]


def test_histograms_are_compared_on_the_bounds_every_pod_has() -> None:
    # the new version added a bucket at 0.2: cumulative counts at the common bounds still add up
    stable = caching.UnitView({0.1: (5.0, 6.0), 0.5: (8.0, 9.0), INF: (10.0, 10.0)}, -1, 1)
    canary = caching.UnitView({0.1: (1.0, 2.0), 0.2: (2.0, 2.0), 0.5: (3.0, 3.0), INF: (4.0, 5.0)}, -1, 1)
    found = assembling.histogram("latency", view({("old", "s"): stable, ("new", "c"): canary}, 2), "new")
    assert found.bounds == (0.1, 0.5, INF)
    assert found.intervals[0].stable == (5.0, 3.0, 2.0) and found.intervals[1].canary == (2.0, 1.0, 2.0)
    assert [p.pod for p in found.pods] == ["c", "s"] and found.pods[0].buckets[0] == (1.0, 2.0, 1.0)


def test_a_histogram_without_a_common_inf_bucket_is_an_error() -> None:
    broken = caching.UnitView({0.1: (1.0,), 0.5: (2.0,)}, -1, 0)
    found = assembling.histogram("latency", view({("old", "s"): broken}, 1), "new")
    assert found.error is not None and "+Inf" in found.error


def test_no_pods_yet_is_no_data_not_an_error() -> None:
    found = assembling.histogram("latency", view({}, 3), "new")
    assert found.error is None and found.intervals == ()


@pytest.mark.parametrize("stable_last, canary_last, stale", [
    (9, 9, None),
    (9, 7, None),                 # two steps behind: a scrape or two may lag
    (9, 6, "stopped at"),         # three: the canary's pods are gone
    (6, 6, "no sample of either revision"),
    (6, None, "no sample of either revision"),
    (5, 9, None),                 # stable may end (weight 100 with no room to spare)
])
def test_stale_data_is_an_error_naming_the_query(stable_last: int, canary_last: int | None,
                                                 stale: str | None) -> None:
    units = {("old", "s"): unit([1.0] * 10, last=stable_last)}
    if canary_last is not None:
        units[("new", "c")] = unit([1.0] * 10, last=canary_last)
    data = view(units, 10)
    if stale is None:
        assembling.check_fresh("q{x}", data, "new", "canary")
        return
    with pytest.raises(errors.MetricUnavailable) as raised:
        assembling.check_fresh("q{x}", data, "new", "canary")
    assert stale in str(raised.value) and "'q{x}'" in str(raised.value)
