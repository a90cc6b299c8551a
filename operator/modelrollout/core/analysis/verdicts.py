"""Combining the tests of one tick into what the rollout should do (`Verdict` itself is in `api`).

Worst wins, with one deliberate order: FAIL > ERROR > INCONCLUSIVE > PASS. A FAIL is evidence
that the canary is worse and is the only verdict that rolls back; an ERROR on another metric
(its query failed) must not hide it, or an unreadable latency series would keep a canary whose
error rate is proven bad. ERROR and INCONCLUSIVE hold: they never promote and never roll back.

    any FAIL                          -> ROLLBACK
    any ERROR                         -> CONTINUE (retry), HOLD after `consecutive_error_limit`
    any INCONCLUSIVE, window open     -> CONTINUE
    any INCONCLUSIVE, window closed   -> CONTINUE (one more window), HOLD after `inconclusive_limit`
    all PASS, window closed           -> PROMOTE (or early, with `promote_early`)

The counters of consecutive errors and extra windows are the only state; `assess()` takes them
in and hands them back, and the handler keeps them in the status, so a restart changes nothing.

The error budget: `alpha_per_test()` splits the rollout's alpha evenly over every test of every
metric (Bonferroni). Each test's e-process runs over the whole rollout, so no split over steps or
looks is needed: the rollout as a whole falsely rolls back with probability at most alpha.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Sequence

from modelrollout.api import verdicts as api_verdicts
from modelrollout.core.analysis import checks, results, settings

Verdict = api_verdicts.Verdict

#: Severity for "worst wins": a higher number wins.
SEVERITY: dict[Verdict, int] = {Verdict.PASS: 0, Verdict.INCONCLUSIVE: 1, Verdict.ERROR: 2, Verdict.FAIL: 3}


class Action(str, enum.Enum):
    """What the analysis asks of the rollout after this tick."""

    CONTINUE = "Continue"
    """Keep the current step and look again next tick."""
    PROMOTE = "Promote"
    """The step's analysis passed: go on to the next step."""
    ROLLBACK = "Rollback"
    """A test failed: the canary is worse. Roll back (if the spec allows it automatically)."""
    HOLD = "Hold"
    """Stop advancing and ask for a human (Degraded): data missing or inconclusive for too long."""


@dataclasses.dataclass(frozen=True)
class Counters:
    """The analysis' only memory between ticks, kept in the status by the handler."""

    consecutive_errors: int = 0
    extra_windows: int = 0
    """Windows added to the current step because it ended INCONCLUSIVE; reset by a promotion."""


@dataclasses.dataclass(frozen=True)
class Assessment:
    verdict: Verdict
    action: Action
    reason: str
    counters: Counters


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """The combined verdict: FAIL > ERROR > INCONCLUSIVE > PASS; PASS for no verdicts at all.

    worst([PASS, INCONCLUSIVE]) -> INCONCLUSIVE; worst([ERROR, FAIL]) -> FAIL; worst([]) -> PASS
    """
    return max(verdicts, key=SEVERITY.__getitem__, default=Verdict.PASS)


def alpha_per_test(config: settings.AnalysisSettings, metrics: Sequence[checks.MetricCheck], extra: int = 0) -> float:
    """Each test's share of the rollout's alpha; `extra` counts tests outside `metrics` (an A/B goal).

    alpha_per_test(alpha 0.01, [slo+compare, compare]) -> 0.01 / 3; with no tests -> 0.01
    """
    return config.alpha / max(1, sum(metric.tests for metric in metrics) + extra)


def assess(
    found: Sequence[results.MetricResult],
    *,
    counters: Counters = Counters(),
    window_closed: bool,
    config: settings.AnalysisSettings = settings.DEFAULT,
) -> Assessment:
    """Combine one tick's results into a verdict, an action and the new counters."""
    verdict = worst(result.verdict for result in found)
    named = ", ".join(f"{r.metric} {r.check}" for r in found if r.verdict is verdict)
    if verdict is Verdict.FAIL:
        return Assessment(verdict, Action.ROLLBACK, f"failed: {named}", Counters())
    if verdict is Verdict.ERROR:
        errors = counters.consecutive_errors + 1
        kept = dataclasses.replace(counters, consecutive_errors=errors)
        if errors > config.consecutive_error_limit:
            return Assessment(verdict, Action.HOLD, f"no data for {errors} ticks: {named}", kept)
        why = f"retrying ({errors}/{config.consecutive_error_limit}): {named}"
        return Assessment(verdict, Action.CONTINUE, why, kept)
    counters = dataclasses.replace(counters, consecutive_errors=0)
    if verdict is Verdict.INCONCLUSIVE:
        if not window_closed:
            return Assessment(verdict, Action.CONTINUE, f"collecting evidence: {named}", counters)
        extra = counters.extra_windows + 1
        kept = dataclasses.replace(counters, extra_windows=extra)
        if extra > config.inconclusive_limit:
            return Assessment(verdict, Action.HOLD, f"inconclusive after {extra} windows: {named}", kept)
        why = f"window extended ({extra}/{config.inconclusive_limit}): {named}"
        return Assessment(verdict, Action.CONTINUE, why, kept)
    if window_closed or (config.promote_early and found):
        return Assessment(verdict, Action.PROMOTE, "passed" if found else "no metrics to judge", Counters())
    return Assessment(verdict, Action.CONTINUE, "passing, window still open", counters)
