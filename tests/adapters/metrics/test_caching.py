"""Exact per-pod counts from a synthetic Prometheus, fetched once, shared by a batch, kept per step.

The synthetic world (`synthetic.world`) has restarts, a pod born and a pod gone mid-window, a
new error code's series, jittered and missed scrapes. The differenced counts must equal what
the pods really served, to the request, however the reads fall.
"""

from __future__ import annotations

import math
import threading

import pytest

from modelrollout import errors
from modelrollout.adapters.metrics import assembling, caching, presets, queries
from modelrollout.api import analyses
from tests.adapters.metrics import synthetic

STEP = 15.0
START = 1_700_000_100.0  # on the 15 s grid
END = START + 900.0
ERROR_RATE = presets.lookup(analyses.Preset.GENERIC, "error-rate")
assert ERROR_RATE is not None and ERROR_RATE.exposure is not None
EXPOSURE = queries.batched(ERROR_RATE.exposure)
EVENTS = queries.batched(ERROR_RATE.query)
assert EXPOSURE is not None and EVENTS is not None


def wanted(name: str = "a", start: float = START, revisions: tuple[str, ...] = ("old", "new"),
           expires: float = 300.0) -> caching.Wanted:
    return caching.Wanted(("ml", name), frozenset(revisions), start, expires)


def key(template: str = EXPOSURE) -> caching.FamilyKey:  # type: ignore[assignment]
    return caching.FamilyKey(template, STEP, histogram=False)


def per_pod_totals(view: caching.View) -> dict[str, float]:
    return {pod: sum(unit.increments[caching.COUNT]) for (_, pod), unit in view.units.items()}


@pytest.mark.parametrize("seed", range(6))
def test_differenced_counts_equal_what_the_pods_served(seed: int) -> None:
    store, pods = synthetic.world(seed, START, END)
    cache = caching.Cache(synthetic.Fetch(store))
    exposure = cache.read(key(EXPOSURE), wanted(), END)
    events = cache.read(key(EVENTS), wanted(), END)
    assert exposure.intervals == 60
    for pod in pods:
        unit = exposure.units[(pod.revision, pod.pod)]
        assert sum(unit.increments[caching.COUNT]) == pod.truth(START, END), pod.pod
        bad = events.units.get((pod.revision, pod.pod))
        served_bad = pod.truth(START, END, codes=lambda code: code.startswith("5"))
        assert (sum(bad.increments[caching.COUNT]) if bad else 0) == served_bad, pod.pod
        assert all(x >= 0 and x == int(x) for x in unit.increments[caching.COUNT])
    samples = assembling.counts("error-rate", exposure, events, "new")
    canary = [i.canary_requests for i in samples.intervals if not math.isnan(i.canary_requests)]
    assert sum(canary) == sum(p.truth(START, END) for p in pods if p.revision == "new")
    for interval in samples.intervals:
        assert math.isnan(interval.stable_events) or interval.stable_events <= interval.stable_requests


def test_pods_are_there_from_their_first_sample_to_their_last() -> None:
    store, pods = synthetic.world(1, START, END)
    view = caching.Cache(synthetic.Fetch(store)).read(key(), wanted(), END)
    born, gone, old = view.units[("new", "a-new-1")], view.units[("new", "a-new-0")], view.units[("old", "a-old-0")]
    assert old.first == -1 and old.last == view.intervals - 1
    first_scrape = next(p for p in pods if p.pod == "a-new-1").scrapes[0]
    assert START + born.first * STEP < first_scrape <= START + (born.first + 1) * STEP
    assert gone.first == -1 and gone.last < view.intervals - 3  # died 70 s before the end
    samples = assembling.counts("x", view, view, "new")
    gone_pod = next(p for p in samples.pods if p.pod == "a-new-0")
    assert math.isnan(gone_pod.requests[-1]) and not math.isnan(gone_pod.requests[0])


def test_each_read_fetches_only_the_steps_not_yet_fetched_and_gets_the_same_numbers() -> None:
    store, _ = synthetic.world(2, START, END)
    fetch = synthetic.Fetch(store)
    cache = caching.Cache(fetch)
    for end in (START + 300, START + 315, START + 315, START + 360, END):
        cache.read(key(), wanted(), end)
    assert [(c.start, c.end) for c in fetch.calls] == [
        (START, START + 300), (START + 315, START + 315), (START + 330, START + 360), (START + 375, END)]
    fresh = caching.Cache(synthetic.Fetch(store)).read(key(), wanted(), END)
    assert cache.read(key(), wanted(), END) == fresh
    earlier = cache.read(key(), wanted(), START + 300)  # a slower thread's older end: a prefix, not a fetch
    assert earlier.intervals == 20 and len(fetch.calls) == 4


def test_one_query_per_step_serves_every_member_of_a_batch() -> None:
    store, _ = synthetic.world(3, START, END)
    synthetic.world(4, START, END, name="b", store=store)
    fetch = synthetic.Fetch(store)
    cache = caching.Cache(fetch)
    cache.read(key(), wanted("a"), START + 300)
    cache.read(key(), wanted("b", start=START + 150), START + 300)  # joins: filled alone, from its baseline
    assert [('"a"' in c.query.replace("=~", "="), c.start) for c in fetch.calls] == [(True, START),
                                                                                    (False, START + 150)]
    cache.read(key(), wanted("a"), START + 315)
    cache.read(key(), wanted("b", start=START + 150), START + 315)
    assert len(fetch.calls) == 3
    assert 'modeldeployment=~"a|b"' in fetch.calls[-1].query and fetch.calls[-1].start == START + 315
    both = cache.read(key(), wanted("b", start=START + 150), START + 315)
    alone = caching.Cache(synthetic.Fetch(store)).read(key(), wanted("b", start=START + 150), START + 315)
    assert len(both.units) == 4 and both == alone


def test_a_failure_is_kept_for_its_step_then_asked_again() -> None:
    store, _ = synthetic.world(4, START, END)
    fetch = synthetic.Fetch(store)
    cache = caching.Cache(fetch)
    fetch.fail = errors.MetricUnavailable("query 'x' failed: ConnectError")
    for _ in range(3):
        with pytest.raises(errors.MetricUnavailable, match="ConnectError"):
            cache.read(key(), wanted(), START + 300)
    assert len(fetch.calls) == 1
    fetch.fail = None
    assert cache.read(key(), wanted(), START + 315).intervals == 21
    assert len(fetch.calls) == 2


def test_members_not_asked_for_leave_the_batch_and_forget_drops_one_at_once() -> None:
    store, _ = synthetic.world(5, START, END)
    now = [0.0]
    fetch = synthetic.Fetch(store)
    cache = caching.Cache(fetch, clock=lambda: now[0])
    cache.read(key(), wanted("a", expires=60), START + 300)
    cache.read(key(), wanted("b", expires=60), START + 300)
    now[0] = 30.0
    cache.read(key(), wanted("a", expires=60), START + 315)
    assert 'modeldeployment=~"a|b"' in fetch.calls[-1].query
    now[0] = 100.0  # b was last asked 100 s ago
    cache.read(key(), wanted("a", expires=60), START + 330)
    assert 'modeldeployment=~"a"' in fetch.calls[-1].query
    cache.forget(("ml", "a"))
    assert cache.members() == 0


def test_a_new_window_starts_over_from_its_baseline() -> None:
    store, _ = synthetic.world(0, START, END)
    fetch = synthetic.Fetch(store)
    cache = caching.Cache(fetch)
    cache.read(key(), wanted(), START + 300)
    moved = cache.read(key(), wanted(start=START + 150), START + 300)
    assert moved.start == START + 150 and moved.intervals == 10
    assert (fetch.calls[-1].start, fetch.calls[-1].end) == (START + 150, START + 300)


def test_a_fetch_that_ends_after_a_window_moved_does_not_feed_the_new_window() -> None:
    store, _ = synthetic.world(2, START, END)
    synthetic.world(3, START, END, name="b", store=store)
    fetch = synthetic.Fetch(store)
    cache = caching.Cache(fetch)
    cache.read(key(), wanted("a"), START + 300)
    cache.read(key(), wanted("b"), START + 300)
    moved = wanted("b", start=START + 150)
    backfill_may_end, backfill_began = threading.Event(), threading.Event()
    found: list[caching.View] = []
    mover = threading.Thread(target=lambda: found.append(cache.read(key(), moved, START + 315)))

    def interleave(query: str) -> None:
        if 'modeldeployment=~"a|b"' in query:  # a's batch is in flight: b's window moves now
            mover.start()
            backfill_began.wait(10)
        elif 'modeldeployment=~"b"' in query:  # b's own fill waits until a's batch has landed
            backfill_began.set()
            backfill_may_end.wait(10)
    fetch.before = interleave
    cache.read(key(), wanted("a"), START + 315)
    backfill_may_end.set()
    mover.join(10)
    fresh = caching.Cache(synthetic.Fetch(store)).read(key(), moved, START + 315)
    assert len(fresh.units) == 4 and found == [fresh]


def test_the_http_call_runs_outside_the_lock_and_one_fetch_serves_the_threads_that_wait() -> None:
    store, _ = synthetic.world(1, START, END)
    release = threading.Event()
    slow = synthetic.Fetch(store)
    slow.before = lambda query: None if "code=~" in query else release.wait(10)
    cache = caching.Cache(slow)
    other = caching.Cache(synthetic.Fetch(store))
    readers = [threading.Thread(target=cache.read, args=(key(), wanted(), START + 300)) for _ in range(3)]
    for reader in readers:
        reader.start()
    # while that fetch hangs, another family of the same cache answers
    cache_other_family = cache.read(key(EVENTS), wanted("z"), START + 300)  # type: ignore[arg-type]
    assert cache_other_family.intervals == 20
    assert other.read(key(), wanted(), START + 300).intervals == 20
    release.set()
    for reader in readers:
        reader.join(10)
    assert [c.query for c in slow.calls].count(slow.calls[0].query) == 1


def test_a_long_backfill_is_split_under_prometheus_points_limit() -> None:
    calls: list[tuple[float, float]] = []

    def fetch(query: str, start: float, end: float, step: float) -> list[dict[str, object]]:
        calls.append((start, end))
        return []
    cache = caching.Cache(fetch)  # type: ignore[arg-type]
    cache.read(key(), wanted(), START + STEP * 25_000)
    assert len(calls) == 3 and calls[0] == (START, START + STEP * 9_999) and calls[-1][1] == START + STEP * 25_000
    assert all((end - start) / STEP < caching.MAX_POINTS for start, end in calls)
