"""The blue-green plan: a full-size preview, an optional pre-promotion analysis, then one switch.

The preview runs `previewReplicas` (default spec.replicas) pods of the new revision beside the
stable ones and gets no user traffic. So that a pre-promotion analysis has data, the preview
gets a mirrored copy of all requests during it when the traffic provider can mirror
(GatewayAPI, Istio); with ReplicaRatio it gets none, and the analysis judges only what reaches
the preview's own Service (the smoke test, a load test a person points at it): with no data at
all it ends inconclusive and the rollout pauses for a person, never promoting on no evidence.
Without autoPromote the plan ends with a pause that waits for `promote`. The switch itself is the
promotion that follows the plan: the preview grows to spec.replicas, all traffic moves to the new
revision at once, and the old one stays at full size for blueGreen.scaleDownDelay (an instant way
back, and the time a post-promotion analysis has to switch back) before it goes. When
gpuPool.maxExtraGPUs cannot hold the new revision at full size beside the old one (a preview
smaller than spec.replicas), the promotion rolls like a canary's instead of switching onto fewer
pods than the stable had (see `progression.turns.at`).
"""

from __future__ import annotations

from modelrollout.api import durations, labels, strategies
from modelrollout.core import steps


def plan(section: strategies.BlueGreen, replicas: int, can_mirror: bool) -> steps.Plan:
    """The blue-green steps; `replicas` is the preview's size.

        autoPromote, no analysis, 4 pods            -> (Preview(4),)
        analysis 5m, a mirroring provider           -> (Preview(4), Mirror(100, 4), Analyze(5m))
        autoPromote false, ReplicaRatio, analysis   -> (Preview(4), Analyze(5m), Pause(None))
    """
    track = labels.Track.PREVIEW
    plan: list[steps.Step] = [steps.Preview(replicas, track)]
    analysis = section.pre_promotion_analysis
    if analysis is not None:
        if can_mirror:
            plan.append(steps.Mirror(100, replicas, track))
        plan.append(steps.Analyze(durations.parse_duration(analysis.duration), track))
    if not section.auto_promote:
        plan.append(steps.Pause(None, track))
    return tuple(plan)
