"""Decision-quality benchmark: false rollbacks and time to detect, ours against the anchors' rules.

Monte Carlo of complete rollouts (`rollout_simulation`: five 5-minute steps at 10-50 % canary
weight, a look every 5 s scrape, Poisson traffic on a diurnal curve, AR(1)-correlated noise) at
10, 100 and 1000 requests per second, for an A/A canary and four regressions. Every judge reads
the same simulated data (common random numbers): our sequential judge (`sequential_judge`, the
core's own arithmetic, cross-checked against the core's public judges on replayed runs) and
Flagger-, Argo- and Kayenta-style rules (`baseline_judges`).

Per judge, scenario and rate it reports: the share of rollouts rolled back (the false-rollback
rate under A/A, the detection rate otherwise), the share rolled back before the 50 % step, the
median and 90th percentile of the time to roll back counted over *all* runs (undetected runs
count as never, so the median is empty when fewer than half are caught), and the share held.

    python -m bench.decision_quality [--runs N] [--quick] [--seed S]

Prints a table and writes bench/results/decision_quality.json (a list of rows).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import pathlib
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bench import baseline_judges as baselines
from bench import rollout_simulation as sim
from bench import sequential_judge

FloatArray = NDArray[np.float64]
RESULTS = pathlib.Path(__file__).parent / "results" / "decision_quality.json"
RATES = (10.0, 100.0, 1000.0)
CHUNK = 100  # runs simulated at once: bounds memory to a few hundred MB at 1000 req/s


Detector = Callable[[sim.Batch], FloatArray]


def _judges(
    world: sim.World, ours: sequential_judge.JudgeConfig, rps: float, seed: int
) -> dict[str, tuple[str, Detector]]:
    """Every judge with the rule it runs, for one traffic rate (calibrated thresholds depend on it)."""
    mid = baselines.thresholds(world)
    rng = np.random.default_rng([seed, int(rps), 99])
    minute, five = round(60.0 / world.scrape_s), round(300.0 / world.scrape_s)
    cal_1m, cal_5m = baselines.calibrated(world, rps, minute, rng), baselines.calibrated(world, rps, five, rng)
    found: dict[str, tuple[str, Detector]] = {
        "modelrollout": (ours.describe(), lambda b: sequential_judge.detect(b, world, ours)[0]),
    }
    for tag, one, five_min in (("mid", mid, mid), ("cal", cal_1m, cal_5m)):
        found[f"flagger-{tag}"] = (f"1m checks, threshold 5; {one.describe()}",
                                   functools.partial(baselines.flagger, world=world, limits=one))
        found[f"argo1m-{tag}"] = (f"interval 1m, failureLimit 3; {one.describe()}",
                                  functools.partial(baselines.argo, world=world, limits=one, interval_s=60.0))
        found[f"argo5m-{tag}"] = (f"interval 5m, failureLimit 3; {five_min.describe()}",
                                  functools.partial(baselines.argo, world=world, limits=five_min, interval_s=300.0))
    found["kayenta"] = ("Mann-Whitney 98%, tol 0.25|HL|, 1m points, judged every 5m",
                        lambda b: baselines.kayenta(b, world))
    return found


def _percentile(times: FloatArray, q: float) -> float | None:
    """Percentile of the time to roll back over all runs; never-detected runs count as infinite."""
    filled = np.where(np.isnan(times), np.inf, times)
    value = float(np.percentile(filled, q, method="higher"))
    return value if math.isfinite(value) else None


def _row(judge: str, rule: str, scenario: sim.Scenario, rps: float, times: FloatArray, held: int,
         world: sim.World) -> dict[str, Any]:
    runs = times.size
    rolled = float(np.mean(~np.isnan(times)))
    before = float(np.mean(times <= (len(world.weights) - 1) * world.step_s))
    detected = times[~np.isnan(times)]
    return {
        "judge": judge,
        "scenario": scenario.name,
        "rps": rps,
        "runs": runs,
        "false_rollback_rate": None if scenario.regression else rolled,
        "detection_rate": rolled if scenario.regression else None,
        "detected_before_50pct": before if scenario.regression else None,
        "median_ttd_s": _percentile(times, 50) if scenario.regression else None,
        "p90_ttd_s": _percentile(times, 90) if scenario.regression else None,
        "median_ttd_detected_s": float(np.median(detected)) if scenario.regression and detected.size else None,
        "held_rate": held / runs,
        "rule": rule,
    }


def run_config(world: sim.World, scenario: sim.Scenario, rps: float, runs: int, seed: int,
               ours: sequential_judge.JudgeConfig, check: bool) -> list[dict[str, Any]]:
    """All judges on `runs` rollouts of one scenario and rate."""
    judges = _judges(world, ours, rps, seed)
    times: dict[str, list[FloatArray]] = {name: [] for name in judges}
    held = 0
    rng = np.random.default_rng([seed, int(rps), sim.SCENARIOS.index(scenario)])
    for start in range(0, runs, CHUNK):
        batch = sim.simulate(world, scenario, rps, min(CHUNK, runs - start), rng)
        if check and start == 0:
            sequential_judge.cross_check(batch, ours)
        ours_times, ours_held = sequential_judge.detect(batch, world, ours)
        times["modelrollout"].append(ours_times)
        held += int(ours_held.sum())
        for name, (_, detector) in judges.items():
            if name != "modelrollout":
                times[name].append(detector(batch))
    return [_row(name, rule, scenario, rps, np.concatenate(times[name]), held if name == "modelrollout" else 0, world)
            for name, (rule, _) in judges.items()]


def _cell(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if percent else f"{value:.0f}"


def table(rows: Sequence[dict[str, Any]]) -> str:
    head = f"{'judge':<13} {'scenario':<15} {'rps':>5} {'runs':>5} {'false rb':>8} {'detected':>8} " \
           f"{'<50%':>6} {'med ttd':>7} {'p90 ttd':>7} {'held':>6}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['judge']:<13} {r['scenario']:<15} {r['rps']:>5.0f} {r['runs']:>5} "
            f"{_cell(r['false_rollback_rate'], True):>8} {_cell(r['detection_rate'], True):>8} "
            f"{_cell(r['detected_before_50pct'], True):>6} {_cell(r['median_ttd_s']):>7} "
            f"{_cell(r['p90_ttd_s']):>7} {_cell(r['held_rate'], True):>6}")
    return "\n".join(lines)


def targets(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The project's targets, each marked met or missed from the measured rows."""
    ours = {(r["scenario"], r["rps"]): r for r in rows if r["judge"] == "modelrollout"}
    found = []

    def mark(ok: bool, text: str) -> None:
        found.append(f"[{'met' if ok else 'MISSED'}] {text}")

    for rps in RATES:
        aa = ours.get(("A/A", rps))
        if aa:
            mark(aa["false_rollback_rate"] <= FALSE_ROLLBACK_TARGET, f"A/A false rollback <= 1% at {rps:.0f} rps: "
                                                   f"{aa['false_rollback_rate']:.2%}")
    for name in ("errors 1%->2%", "p99 +25%"):
        for rps in (100.0, 1000.0):
            r = ours.get((name, rps))
            if r:
                mark(r["detected_before_50pct"] >= 0.95, f"{name} rolled back before 50% at {rps:.0f} rps: "
                                                         f"{r['detected_before_50pct']:.1%} (>= 95%)")
    for rps, limit in ((1000.0, 45.0), (100.0, 150.0)):
        r = ours.get(("errors 1%->2%", rps))
        if r:
            med = r["median_ttd_s"]
            mark(med is not None and med <= limit, f"median time to detect 2x errors at {rps:.0f} rps: "
                                                   f"{_cell(med)} s (<= {limit:.0f} s)")
    for judge in sorted({r["judge"] for r in rows} - {"modelrollout"}):
        theirs = {(r["scenario"], r["rps"]): r for r in rows if r["judge"] == judge}
        losses, unusable = _losses(ours, theirs)
        mark(not losses, f"better than {judge} on false rollbacks and detection"
                         + (f"; not in: {', '.join(losses)}" if losses else "")
                         + (f" (its detection at {', '.join(unusable)} rps is bought with > 1% A/A false "
                            "rollbacks and not counted)" if unusable else ""))
    return found


Cells = dict[tuple[str, float], dict[str, Any]]
FALSE_ROLLBACK_TARGET = 0.01


def _losses(ours: Cells, theirs: Cells) -> tuple[list[str], list[str]]:
    """Cells where a baseline beats us beyond the Monte Carlo noise (two standard errors).

    A/A cells compare the false-rollback rate; regression cells compare the detection rate, and
    at equal detection the median time to detect. A baseline whose A/A false-rollback rate at a
    traffic rate is above the target (1 %) is not a usable operating point there: rolling back
    everything detects everything. Its detection at that rate is not counted (second list).
    """
    unusable = sorted(rps for (scenario, rps), row in theirs.items()
                      if scenario == "A/A" and row["false_rollback_rate"] > FALSE_ROLLBACK_TARGET)
    lost = []
    for key, mine in sorted(ours.items()):
        other = theirs.get(key)
        if other is None:
            continue
        aa_cell = key[0] == "A/A"
        if not aa_cell and key[1] in unusable:
            continue
        field = "false_rollback_rate" if aa_cell else "detection_rate"
        a, b = mine[field], other[field]
        se = math.sqrt(max(a * (1 - a), b * (1 - b), 1.0 / mine["runs"]) / mine["runs"])
        worse = a - b > 2 * se if aa_cell else b - a > 2 * se
        if not aa_cell and not worse and abs(a - b) <= 2 * se:
            mine_t, their_t = mine["median_ttd_s"], other["median_ttd_s"]
            worse = their_t is not None and (mine_t is None or their_t < mine_t)
        if worse:
            lost.append(f"{key[0]} at {key[1]:.0f} rps")
    return lost, [f"{rps:.0f}" for rps in unusable]


def information_bound(world: sim.World, rps: float, factor: float, tolerance: float, alpha: float) -> float | None:
    """Seconds until an SPRT that knows the error ratio exactly expects to reject (Wald's bound).

    Any valid sequential test of ratio <= 1 + tolerance at level alpha needs about this long on
    average at the world's mean rates: log(1/alpha) nats of evidence, gathered at the
    Kullback-Leibler rate of the conditional (canary share of errors) binomial.
    """
    theta0, evidence = 1.0 + tolerance, 0.0
    for index, weight in enumerate(np.repeat(np.asarray(world.weights), world.per_step)):
        r = weight / (1.0 - weight)
        q0, q1 = theta0 * r / (1.0 + theta0 * r), factor * r / (1.0 + factor * r)
        events = rps * world.scrape_s * world.base_error * ((1.0 - weight) + weight * factor)
        evidence += events * (q1 * math.log(q1 / q0) + (1.0 - q1) * math.log((1.0 - q1) / (1.0 - q0)))
        if evidence >= -math.log(alpha):
            return (index + 1) * world.scrape_s
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=2000, help="rollouts per scenario and rate (default 2000)")
    parser.add_argument("--quick", action="store_true", help="200 runs, for a smoke test")
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--output", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args(argv)
    runs = 200 if args.quick else args.runs
    world, ours = sim.World(), sequential_judge.JudgeConfig()
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    for scenario in sim.SCENARIOS:
        for rps in RATES:
            rows += run_config(world, scenario, rps, runs, args.seed, ours, check=True)
            print(f"  {scenario.name} at {rps:.0f} rps done ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    print(table(rows))
    print()
    for rps in RATES:
        for name, (rule, _) in _judges(world, ours, rps, args.seed).items():
            if name != "modelrollout" and (name.endswith("-cal") or rps == RATES[0]):
                print(f"{name} at {rps:.0f} rps: {rule}" if name.endswith("-cal") else f"{name}: {rule}")
    print(f"modelrollout: {ours.describe()}")
    print()
    print("\n".join(targets(rows)))
    for rps in RATES[1:]:
        bound = information_bound(world, rps, 2.0, ours.error.tolerance, ours.alpha)
        print(f"information bound, 2x errors at {rps:.0f} rps (tolerance {ours.error.tolerance:g}, alpha "
              f"{ours.alpha:.2g}): an SPRT that knows the effect needs {_cell(bound)} s on average")
    print(f"\n{runs} rollouts per row, {time.monotonic() - started:.0f} s")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
