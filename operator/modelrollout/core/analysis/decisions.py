"""From evidence to a verdict: the one rule every test applies, and the words that explain it.

A test has two e-processes: one against "no regression" (H0: the canary is within its limit),
whose crossing of 1/alpha is a FAIL, and one against "a regression" (H0: the canary is beyond
its limit), whose crossing is a sure PASS. In this order:

1. not enough data (the quality gate)          -> INCONCLUSIVE
2. the regression test crossed 1/alpha          -> FAIL, at any tick
3. the no-regression test crossed 1/alpha       -> PASS, at any tick ("faster and surer")
4. the window is still open                     -> INCONCLUSIVE, collecting evidence
5. the window closed while the data show a regression the test cannot yet call sure
   (`shows_regression`)                         -> INCONCLUSIVE: extended, never passed
6. the window closed: the pass rule decides     -> PASS or INCONCLUSIVE

Rule 5 is there because the guaranteed e-process pays for its guarantee early in a rollout (it
assumes bursts until the data can rule them out), so a short window can end with a confidence
sequence wholly beyond the limit and no FAIL yet. Passing then would promote what the status
itself shows to be a regression; an extension costs one more window and no alpha.

Both e-processes read their running maximum, so evidence once seen is never lost: a test that
crossed stays crossed, after a restart too. A comparison's FAIL also needs the evidence recomputed
with what all the data show now about bursts and pod spread (`robust.Compared.log_e_decisive`); that
veto can take back a FAIL a later tick explains by the spread between stable pods, never add one.
The operator acts on a FAIL at the tick it is seen, so a FAIL it acted on is not asked again.
"""

from __future__ import annotations

import dataclasses

from modelrollout.api import verdicts as api_verdicts
from modelrollout.core.analysis import sequential, settings

Verdict = api_verdicts.Verdict


@dataclasses.dataclass(frozen=True)
class Evidence:
    """The two running maxima of log e-values, and whether the point estimate is within the limit."""

    log_e_fail: float
    log_e_pass: float
    estimate_ok: bool
    shows_regression: bool = False
    """The point estimate is beyond the limit (widened for the pod spread seen now) and the confidence
    sequence lies wholly beyond it: never a FAIL on its own, but it stops a PASS."""


def decide(
    evidence: Evidence, *, alpha: float, window_closed: bool, rule: settings.PassRule
) -> tuple[Verdict, str]:
    """The verdict, and a short phrase saying which rule gave it.

    decide(Evidence(5.0, 0.0, False), alpha=0.01, window_closed=False, rule=NOT_FAILED)
        -> (FAIL, "regression")
    decide(Evidence(1.0, 0.0, True), alpha=0.01, window_closed=True, rule=NOT_FAILED)
        -> (PASS, "no evidence of regression")
    decide(Evidence(1.0, 0.0, False), alpha=0.01, window_closed=True, rule=ESTIMATE)
        -> (INCONCLUSIVE, "window ended with the estimate beyond the limit")
    decide(Evidence(1.0, 0.0, False, shows_regression=True), alpha=0.01, window_closed=True, rule=NOT_FAILED)
        -> (INCONCLUSIVE, "window ended on data that show a regression, not yet surely")
    """
    level = sequential.threshold(alpha)
    if evidence.log_e_fail >= level:
        return Verdict.FAIL, "regression"
    if evidence.log_e_pass >= level:
        return Verdict.PASS, "surely within the limit"
    if not window_closed:
        return Verdict.INCONCLUSIVE, "collecting evidence"
    if evidence.shows_regression:
        return Verdict.INCONCLUSIVE, "window ended on data that show a regression, not yet surely"
    if rule is settings.PassRule.NOT_FAILED:
        return Verdict.PASS, "no evidence of regression"
    if rule is settings.PassRule.ESTIMATE and evidence.estimate_ok:
        return Verdict.PASS, "no evidence of regression, estimate within the limit"
    if rule is settings.PassRule.ESTIMATE:
        return Verdict.INCONCLUSIVE, "window ended with the estimate beyond the limit"
    return Verdict.INCONCLUSIVE, "window ended before the confidence sequence cleared the limit"


def confidence(alpha: float) -> float:
    """Coverage of a two-sided confidence sequence built from two one-sided tests at `alpha`.

    confidence(0.005) -> 0.99; confidence(0.025) -> 0.95
    """
    return 1.0 - 2.0 * alpha
