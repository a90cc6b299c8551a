"""The A/B test plan: the matched cohort goes to the challenger, which is judged on the goal.

The challenger (abTest.replicas pods, default spec.replicas) runs beside the whole stable on the
canary track. Once its pods are ready (and the smoke test passed), the requests that match one of
abTest.match go to it and every other request stays with stable. The analysis then judges it for
at most abTest.duration: the goal metric by a superiority test (a win needs more than
1 + minimumEffect times stable's rate), every other metric as a guardrail. A win with every
guardrail passing ends the test early; the promotion that follows rolls the challenger over like
a canary's, or, with onWin Pause, waits for `promote` first. A loss, a guardrail failure or a
test still undecided at its end keeps stable (`progression.stepping`).
"""

from __future__ import annotations

from modelrollout.api import durations, labels, strategies
from modelrollout.core import steps


def plan(section: strategies.ABTest, replicas: int) -> steps.Plan:
    """The A/B steps; `replicas` is the challenger's size.

        duration 30m, 2 pods                -> (Cohort(2), Analyze(30m))
        the same with onWin: Pause          -> (Cohort(2), Analyze(30m), Pause(None))
    """
    track = labels.Track.CANARY
    plan: list[steps.Step] = [
        steps.Cohort(replicas, track),
        steps.Analyze(durations.parse_duration(section.duration), track),
    ]
    if section.on_win is strategies.OnWin.PAUSE:
        plan.append(steps.Pause(None, track))
    return tuple(plan)
