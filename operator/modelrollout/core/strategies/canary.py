"""The canary plan: the user's steps as written, on the canary track.

spec.strategy.canary.steps already is a plan (setWeight, pause, analyze, in order); this module
only turns the API's step objects into `steps` values with parsed durations. The weight holds
from one setWeight to the next; after the last step the canary is promoted.
"""

from __future__ import annotations

from modelrollout.api import durations, labels, strategies
from modelrollout.core import steps


def plan(section: strategies.Canary) -> steps.Plan:
    """The canary steps.

        [{setWeight: 10}, {analyze: {duration: 5m}}, {pause: {}}]
            -> (SetWeight(10), Analyze(5m), Pause(None))
    """
    return tuple(_step(step) for step in section.steps)


def _step(step: strategies.SetWeight | strategies.Pause | strategies.Analyze) -> steps.Step:
    track = labels.Track.CANARY
    if isinstance(step, strategies.SetWeight):
        return steps.SetWeight(step.set_weight, track)
    if isinstance(step, strategies.Analyze):
        return steps.Analyze(durations.parse_duration(step.analyze.duration), track)
    timed = step.pause.duration
    return steps.Pause(durations.parse_duration(timed) if timed is not None else None, track)
