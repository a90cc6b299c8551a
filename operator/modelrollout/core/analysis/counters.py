"""Exact per-interval counts from a pod's raw counter values, the way Prometheus stores them.

`increase()` extrapolates: over a window holding two 15 s scrapes it returns twice the
increment it saw, so counts arrive as 2 x Binomial and a likelihood ratio built on them is
squared. The adapter therefore reads the raw counter of each pod on a grid of step times (a
range query of `sum by (pod) (counter)`: at each step, the latest sample at or before it) and
this module turns those values into increments:

- between two steps: the difference, or the new value after a drop (a drop is a restart of the
  process: Prometheus' own reset rule);
- a step without a value (not scraped yet, or gone) adds nothing; the next value carries it, so
  totals stay exact however the scrapes fall;
- the first value of a series that had none at the first step (the baseline, one step before
  the first interval) is new in the window: a pod started after the window began, or an error
  series (`code="503"`) created by its first error, counts from zero.

A histogram's buckets are one counter per `le`; a pod restarts as a whole, so a drop in any of
its buckets resets all of them (`bucket_increments`).

    counter_increments({0: 5, 15: 7, 30: 2}, [0, 15, 30]) -> [2.0, 2.0]   (a restart at 30)
    counter_increments({15: 3, 30: 4}, [0, 15, 30])       -> [3.0, 1.0]   (born after 0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def counter_increments(values: Mapping[float, float], steps: Sequence[float]) -> list[float]:
    """Increments of one counter over the intervals (steps[i-1], steps[i]], i = 1..len(steps)-1.

    `values` maps step times to the counter's value there (absent where the series had none);
    steps[0] is the baseline. Never negative, never nan.
    """
    result: list[float] = []
    previous: float | None = values.get(steps[0]) if steps else None
    for step in steps[1:]:
        value = values.get(step)
        if value is None or value != value:  # no sample here (nan counts as none): nothing seen yet
            result.append(0.0)
            continue
        if previous is None:
            result.append(float(value))  # a series new in the window counts from zero
        else:
            result.append(float(value - previous) if value >= previous else float(value))
        previous = value
    return result


def bucket_increments(buckets: Mapping[float, Mapping[float, float]], steps: Sequence[float]) -> list[list[float]]:
    """Per-interval increments of a pod's cumulative (`le`) counts: result[i][k] for interval i, bound k.

    `buckets` maps each `le` (sorted ascending by the caller's convention, +Inf last) to its
    values by step. A drop in any bucket between two steps is a restart: every bucket's increment
    is then its new value. Buckets missing at a step add nothing there.

    bucket_increments({1.0: {0: 1, 15: 3}, inf: {0: 2, 15: 5}}, [0, 15]) -> [[2.0, 3.0]]
    """
    bounds = sorted(buckets)
    previous: dict[float, float] = {
        le: buckets[le][steps[0]] for le in bounds if steps and steps[0] in buckets[le]}
    result: list[list[float]] = []
    for step in steps[1:]:
        current = {le: buckets[le][step] for le in bounds if step in buckets[le]}
        restarted = any(value < previous[le] for le, value in current.items() if le in previous)
        row = []
        for le in bounds:
            if le not in current:
                row.append(0.0)
            elif restarted or le not in previous:
                row.append(float(current[le]))
            else:
                row.append(float(current[le] - previous[le]))
        previous.update(current)
        result.append(row)
    return result
