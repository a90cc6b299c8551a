"""The Prometheus bench in seconds: its world, its read paths and its tables say what they should."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from bench import judge_on_prometheus as bench
from bench import prometheus_judges as pj
from bench import prometheus_world as pw
from bench import readings


def _last_value_at_or_before(scrapes: pw.Scrapes, t: float) -> np.ndarray:
    """Each pod's true request counter at its last attempt at or before t (0 before it was born)."""
    latest = (scrapes.times <= t).sum(axis=2) - 1
    total = np.nansum(scrapes.codes, axis=-1)
    picked = np.take_along_axis(total, np.maximum(latest, 0)[..., None], axis=2)[..., 0]
    return np.where(latest >= 0, picked, 0.0)


def test_exact_counts_are_the_counters_served_between_the_window_ends() -> None:
    world = pw.World(pod_sd=0.3, burst_mean=3.0, scraping=pw.Scraping(jitter_s=0.5))
    scrapes = pw.simulate(world, pw.Scenario("A/A"), 100.0, 30, np.random.default_rng(1))
    exact = readings.exact(scrapes, world)
    assert exact.pods is not None
    truth = _last_value_at_or_before(scrapes, world.duration_s) - _last_value_at_or_before(scrapes, 0.0)
    assert np.array_equal(exact.pods.requests.sum(axis=2), truth)
    assert np.array_equal(exact.canary_requests.sum(axis=1) + exact.stable_requests.sum(axis=1), truth.sum(axis=1))
    assert (exact.pods.events <= exact.pods.requests).all()
    assert np.array_equal(exact.canary_events, np.round(exact.canary_events))  # integers


def test_with_missed_scrapes_totals_stay_exact_where_both_ends_were_seen() -> None:
    world = pw.World(scraping=pw.Scraping(miss=0.05))
    scrapes = pw.simulate(world, pw.Scenario("A/A"), 100.0, 30, np.random.default_rng(2))
    exact = readings.exact(scrapes, world)
    assert exact.pods is not None
    requests, _, _ = readings.pod_values(scrapes, world)
    lead = requests[..., : readings.LEAD_STEPS + 1]  # the lead-in and the window's start
    seen_before = np.isfinite(lead)
    last_before = np.where(seen_before.any(axis=2), np.take_along_axis(
        lead, (lead.shape[2] - 1 - np.argmax(seen_before[..., ::-1], axis=2))[..., None], axis=2)[..., 0], np.nan)
    both = np.isfinite(requests[..., -1]) & (np.isfinite(last_before) | (scrapes.born[None, :] >= 0.0))
    served = np.nanmax(np.where(np.isfinite(requests), requests, -np.inf), axis=2) - np.where(
        np.isfinite(last_before), last_before, 0.0)
    assert both.mean() > 0.95  # the lead-in gives nearly every pod a baseline despite 5 % missed scrapes
    assert np.array_equal(exact.pods.requests.sum(axis=2)[both], served[both])
    assert exact.pods.baseline_lost.any()  # a miss at the window's start itself still happens: the lead-in covers it


def test_increase_over_two_scrapes_doubles_the_variance() -> None:
    # One weight, steady traffic: per-interval counts are Poisson on the exact path, 2 x Poisson through increase().
    world = pw.World(weights=(0.3,) * 5)
    scrapes = pw.simulate(world, pw.Scenario("A/A"), 100.0, 200, np.random.default_rng(3))
    through, exact = readings.through_increase(scrapes, world), readings.exact(scrapes, world)
    for track in ("canary_events", "stable_events", "canary_requests"):
        fast, slow = getattr(through, track)[:, 1:], getattr(exact, track)[:, 1:]
        assert abs(fast.mean() / slow.mean() - 1.0) < 0.03
        dispersion = slow.var() / slow.mean(), fast.var() / fast.mean()
        if track != "canary_requests":  # requests are Poisson too, but their mean is large: look at errors
            assert 0.85 < dispersion[0] < 1.15
            assert 1.7 < dispersion[1] < 2.3


def test_the_chart_default_step_leaves_increase_no_interval() -> None:
    world = pw.World(scraping=pw.Scraping(scrape_s=15.0, step_s=15.0))
    scrapes = pw.simulate(world, pw.Scenario("A/A"), 100.0, 10, np.random.default_rng(4))
    assert np.isnan(readings.through_increase(scrapes, world).canary_requests).all()
    assert readings.exact(scrapes, world).canary_requests.sum() > 0


def test_operator_sized_canary_pods_carry_their_weight() -> None:
    world = pw.World()
    assert [world.canary_pods(w) for w in world.weights] == [1, 2, 3, 4, 5]
    scrapes = pw.simulate(world, pw.Scenario("A/A"), 1000.0, 20, np.random.default_rng(5))
    exact = readings.exact(scrapes, world)
    share = exact.canary_requests / (exact.canary_requests + exact.stable_requests)
    per_step = share.reshape(20, 5, -1)[:, :, 1:].mean(axis=(0, 2))  # skip each step's first interval
    assert np.allclose(per_step, world.weights, atol=0.01)


@pytest.mark.parametrize("index", [next(i for i, c in enumerate(bench.cells()) if c.section == s)
                                   for s in ("A/A, all nuisances", "bimodal latency", "time to detect 2x")])
def test_vectorised_judge_equals_the_core_tick_by_tick(index: int) -> None:
    cell = bench.cells()[index]
    rows = bench.run_cell(cell, index, runs=6, seed=1, chunk=6, check=True)  # raises where they differ
    assert {(r["judge"], r["path"]) for r in rows} >= {(pj.UNDER_TEST, "increase()"), (pj.UNDER_TEST, "exact")}


def test_the_table_has_every_cell(tmp_path: pathlib.Path) -> None:
    output = tmp_path / "judge_on_prometheus.json"
    bench.main(["--runs", "4", "--no-check", "--output", str(output)])
    rows = json.loads(output.read_text())["rows"]
    cells = bench.cells()
    for cell in cells:
        mine = [r for r in rows if r["section"] == cell.section and r["cell"] == cell.label and r["rps"] == cell.rps]
        judges = {(r["judge"], r["path"]) for r in mine}
        expected = {name for name in pj.JUDGES if cell.test.counts or name not in pj.COUNTS_ONLY}
        assert {(name, path) for name in expected for path in ("increase()", "exact")} <= judges, cell
        if cell.baselines:
            assert {"flagger-mid", "argo5m-cal", "kayenta"} <= {r["judge"] for r in mine}
        if cell.target:
            assert all(r["target"] == cell.target.text and r["met"] in (True, False) for r in mine
                       if r["judge"] in pj.JUDGES)
    sections = {c.section for c in cells}
    assert {"A/A, one nuisance", "A/A, all nuisances", "boundary null", "bimodal latency", "2x errors",
            "time to detect 2x", "chart defaults"} <= sections
    one = {(c.label, c.rps) for c in cells if c.section == "A/A, one nuisance"}
    assert {rps for _, rps in one} == {10.0, 100.0, 1000.0} and len(one) == 3 * len(bench.NUISANCES)
    assert any(r["judge"] == "wald sprt" for r in rows)
