"""`make bench` (A/B tests): the goal's superiority test on the counters Prometheus delivers.

An A/B test is simulated with the Prometheus bench's world (`prometheus_world`): stable pods
converting at BASE_RATE, a challenger taking the cohort's share of the requests (30 %) on its own
pods, counters scraped every 15 s (or 30 s) and read as exact per-pod increments, as the operator
reads them. At every analysis interval `judges.compare_goal` (the core's judge, called as the
operator calls it) says win, loss or undecided; the first decision ends the test, and a test
undecided at `duration` is undecided.

- A/A (equal rates): a win is a false win; its share must stay within the goal's alpha. Checked
  with nuisances: pods that differ, conversions in bursts, a 30 s scrape.
- 1.5x better (0.06 against 0.04), at 100 requests per second and a 30 % cohort: the power, and
  the time to a win (the target is on the clean cell; with pods that differ or bursts, the judge
  widens its interval for what it sees, which costs power: reported).

Prints a table and writes bench/results/ab_test.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from bench import prometheus_judges as pj
from bench import prometheus_world as pw
from bench import readings
from modelrollout.api import verdicts
from modelrollout.core.analysis import judges

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "ab_test.json"
BASE_RATE = 0.04
COHORT = 0.3
RPS = 100.0
DURATION_S = 600.0
MINIMUM_EFFECT = 0.02
ALPHA = 0.01
"""The goal's alpha: a rollout's 0.01 when the goal is its only test (the operator splits it over
every test, which only makes each one stricter)."""
POWER_TARGET = 0.9
"""Wins against a 1.5x better challenger within DURATION_S, at RPS and a COHORT share."""


@dataclasses.dataclass(frozen=True)
class Cell:
    label: str
    world: pw.World
    factor: float
    """The challenger's conversion rate over stable's."""
    targeted: bool = True
    """Whether the cell has a target: every A/A cell (false wins), and the clean 1.5x cell (power);
    the power under nuisances is reported only."""


def _world(**changes: Any) -> pw.World:
    scraping = changes.pop("scraping", pw.Scraping(scrape_s=15.0, step_s=15.0))
    return pw.World(weights=(COHORT,), step_s=DURATION_S, replicas=4, base_error=BASE_RATE, scraping=scraping,
                    **changes)


def cells() -> list[Cell]:
    return [
        Cell("A/A", _world(), 1.0),
        Cell("A/A, pods differ 20 %", _world(pod_sd=0.2), 1.0),
        Cell("A/A, conversions in bursts of 3", _world(burst_mean=3.0), 1.0),
        Cell("A/A, 30 s scrape", _world(scraping=pw.Scraping(scrape_s=30.0, step_s=30.0)), 1.0),
        Cell("1.5x better", _world(), 1.5),
        Cell("1.5x better, pods differ 20 %", _world(pod_sd=0.2), 1.5, targeted=False),
        Cell("1.5x better, conversions in bursts of 3", _world(burst_mean=3.0), 1.5, targeted=False),
    ]


def run_cell(cell: Cell, runs: int, seed: int) -> dict[str, Any]:
    """`runs` A/B tests of one cell; each stops at its first decision."""
    rng = np.random.default_rng(seed)
    scrapes = pw.simulate(cell.world, pw.Scenario(cell.label, error_factor=cell.factor), RPS, runs, rng)
    reading = readings.exact(scrapes, cell.world)
    intervals = reading.ends.size
    test = pj.Test("conversion", pj.ERRORS.comparison)
    outcomes: dict[str, int] = {"win": 0, "loss": 0, "undecided": 0}
    win_times: list[float] = []
    for run in range(runs):
        outcome = "undecided"
        for end in range(2, intervals + 1):
            series = pj._count_samples(reading, run, end, test)
            result = judges.compare_goal(series, MINIMUM_EFFECT, alpha=ALPHA, window_closed=end == intervals)
            if result.verdict is verdicts.Verdict.PASS:
                outcome = "win"
                win_times.append(float(reading.ends[end - 1]))
                break
            if result.verdict is verdicts.Verdict.FAIL:
                outcome = "loss"
                break
        outcomes[outcome] += 1
    wins = outcomes["win"]
    row: dict[str, Any] = {"cell": cell.label, "factor": cell.factor, "runs": runs, **outcomes,
                           "win_share": wins / runs,
                           "median_win_s": float(np.median(win_times)) if win_times else None}
    if cell.factor == 1.0:
        # Met when the share of false wins is at most alpha; the Clopper-Pearson 95 % upper bound
        # and a one-sided binomial test of "at most alpha" say how sure that is.
        row["false_win_upper_95"] = float(stats.beta.ppf(0.95, wins + 1, runs - wins)) if wins < runs else 1.0
        row["p_value_at_alpha"] = float(stats.binom.sf(wins - 1, runs, ALPHA)) if wins else 1.0
        row["met"] = wins / runs <= ALPHA
    else:
        row["met"] = wins / runs >= POWER_TARGET if cell.targeted else None
    return row


def table(rows: Sequence[dict[str, Any]]) -> str:
    lines = [f"{'cell':42} {'runs':>5} {'win':>5} {'loss':>5} {'undec':>6} {'win %':>7} "
             f"{'median win s':>13}  target"]
    for r in rows:
        median = "-" if r["median_win_s"] is None else f"{r['median_win_s']:.0f}"
        goal = f"false wins <= {ALPHA:g}" if r["factor"] == 1.0 else f"wins >= {POWER_TARGET:g}"
        verdict = "reported" if r["met"] is None else f"{goal}: {'met' if r['met'] else 'MISSED'}"
        lines.append(f"{r['cell']:42} {r['runs']:>5} {r['win']:>5} {r['loss']:>5} {r['undecided']:>6} "
                     f"{100 * r['win_share']:>6.1f}% {median:>13}  {verdict}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=400, help="A/B tests per cell (default 400)")
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--output", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args(argv)
    started = time.monotonic()
    rows = []
    for index, cell in enumerate(cells()):
        began = time.monotonic()
        rows.append(run_cell(cell, args.runs, args.seed + index))
        print(f"  {cell.label} ({time.monotonic() - began:.0f} s)", file=sys.stderr)
    print(table(rows))
    print(f"\n{args.runs} A/B tests per cell at {RPS:g} rps, cohort {COHORT:.0%}, stable converting at "
          f"{BASE_RATE:g}, minimumEffect {MINIMUM_EFFECT:g}, alpha {ALPHA:g}, duration {DURATION_S:g} s; "
          f"{time.monotonic() - started:.0f} s")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"runs": args.runs, "alpha": ALPHA, "rows": rows}, indent=1) + "\n")
    return 0 if all(r["met"] is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

