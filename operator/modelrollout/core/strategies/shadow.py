"""The shadow plan: mirror a share of the requests to the new revision and judge it.

The shadow pods (shadow.replicas, default enough for the mirrored share of spec.replicas) run
beside the stable ones; once they are ready (and the smoke test passed) `mirrorPercent` % of the
requests is copied to them, their answers dropped, and the analysis judges them for
`shadow.duration`. What follows is another strategy's plan (canary or blue-green, with the same
pods relabelled) or, for `then: Manual`, a pause that waits for `promote`, after which the shadow
revision grows to spec.replicas and takes all traffic at once (or, when the GPU budget cannot hold
it at full size beside the stable pods, rolls over like a canary). The progression appends the
next plan: this module knows only the shadow part.
"""

from __future__ import annotations

from modelrollout.api import durations, labels, strategies
from modelrollout.core import steps


def plan(section: strategies.Shadow, replicas: int) -> steps.Plan:
    """The shadow steps; `replicas` is the shadow's size.

        mirrorPercent 50, duration 30m, 2 pods, then Canary  -> (Mirror(50, 2), Analyze(30m))
        the same with then: Manual                            -> (Mirror(50, 2), Analyze(30m), Pause(None))
    """
    track = labels.Track.SHADOW
    plan: list[steps.Step] = [
        steps.Mirror(section.mirror_percent, replicas, track),
        steps.Analyze(durations.parse_duration(section.duration), track),
    ]
    if section.then is strategies.Handover.MANUAL:
        plan.append(steps.Pause(None, track))
    return tuple(plan)
