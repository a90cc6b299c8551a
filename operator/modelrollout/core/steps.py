"""The steps of a rollout plan, and what the world looks like at each of them.

Every strategy is a plan: a tuple of steps the candidate revision walks through, index by index
(status.currentStep). After the last step comes the promotion, which is not a step: the phase
Promoting, entered when currentStep equals the plan's length. The steps:

* `SetWeight(w)`: the canary takes w % of the requests, once it has the pods for it.
* `Preview(n)`: n pods of the candidate run beside the stable ones, with no user traffic.
* `Mirror(p, n)`: a copy of p % of the requests goes to n pods of the candidate; their answers
  are dropped.
* `Cohort(n)`: the requests that match the A/B test's rules go to n pods of the candidate (the
  challenger); the others stay with stable.
* `Analyze(d)`: hold what is in effect and judge the candidate for at least d.
* `Pause(d)`: hold for d, or until promoted when d is None.

Each step names the track the candidate plays while it runs (canary, preview or shadow), so a
shadow plan can hand over to canary steps and the pods are relabelled, not restarted. A `Stance`
is what is in effect at a step: the track, the weight and mirror set by earlier steps of the same
track, and the fixed pod count if any; `stance(plan, i)` walks the plan to compute it.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence

from modelrollout.api import durations, labels


@dataclasses.dataclass(frozen=True)
class SetWeight:
    """Send `weight` % of the requests to the canary."""

    weight: int
    track: labels.Track = labels.Track.CANARY


@dataclasses.dataclass(frozen=True)
class Preview:
    """Run `replicas` pods of the candidate beside the stable ones, without user traffic."""

    replicas: int
    track: labels.Track = labels.Track.PREVIEW


@dataclasses.dataclass(frozen=True)
class Mirror:
    """Copy `percent` % of the requests to `replicas` pods of the candidate."""

    percent: int
    replicas: int
    track: labels.Track = labels.Track.SHADOW


@dataclasses.dataclass(frozen=True)
class Cohort:
    """Send the A/B test's matched requests to `replicas` pods of the candidate."""

    replicas: int
    track: labels.Track = labels.Track.CANARY


@dataclasses.dataclass(frozen=True)
class Analyze:
    """Hold and judge the candidate for at least `duration`."""

    duration: datetime.timedelta
    track: labels.Track = labels.Track.CANARY


@dataclasses.dataclass(frozen=True)
class Pause:
    """Hold for `duration`, or until promoted when it is None."""

    duration: datetime.timedelta | None
    track: labels.Track = labels.Track.CANARY


Step = SetWeight | Preview | Mirror | Cohort | Analyze | Pause
Plan = tuple[Step, ...]


@dataclasses.dataclass(frozen=True)
class Stance:
    """What is in effect while a step runs (or, with `promoting`, after the last one)."""

    track: labels.Track
    weight: int = 0
    """The canary weight the step asks for (0 off the canary track)."""

    mirror: int = 0
    """The mirror percentage the step asks for."""

    replicas: int | None = None
    """A fixed pod count for the candidate (preview, shadow, A/B challenger); None: derived from the weight."""

    cohort: bool = False
    """The A/B test's matched requests go to the candidate."""

    step: Step | None = None
    """The step itself; None while promoting."""

    promoting: bool = False

    @property
    def holds(self) -> bool:
        """Whether the step only holds (pause, analyze) rather than moves pods or traffic."""
        return isinstance(self.step, Pause | Analyze)


def stance(plan: Sequence[Step], index: int) -> Stance:
    """What is in effect at step `index`; at `len(plan)`, the promotion.

        plan = (SetWeight(10), Analyze(5m), SetWeight(50))
        stance(plan, 1) -> Stance(CANARY, weight=10, step=Analyze(5m))
        stance(plan, 3) -> Stance(CANARY, weight=50, promoting=True)
    """
    if not 0 <= index <= len(plan):
        raise IndexError(f"step {index} is outside a plan of {len(plan)} steps")
    current = plan[index] if index < len(plan) else None
    track = current.track if current is not None else plan[-1].track
    weight, mirror, replicas, cohort = 0, 0, None, False
    for step in plan[: index + 1]:
        if step.track is not track:
            weight, mirror, replicas, cohort = 0, 0, None, False
        elif isinstance(step, SetWeight):
            weight = step.weight
        elif isinstance(step, Preview):
            replicas = step.replicas
        elif isinstance(step, Mirror):
            mirror, replicas = step.percent, step.replicas
        elif isinstance(step, Cohort):
            cohort, replicas = True, step.replicas
    if current is None:  # a promoted challenger takes all traffic like a canary
        return Stance(track, weight=weight, replicas=None if cohort else replicas, promoting=True)
    return Stance(track, weight=weight, mirror=mirror, replicas=replicas, step=current, cohort=cohort)


def duration(step: Step | None) -> datetime.timedelta | None:
    """How long a timed step lasts at least; None for steps that end on an event."""
    if isinstance(step, Analyze | Pause):
        return step.duration
    return None


def deadline(step: Step | None, started: datetime.datetime | None, extensions: int = 0) -> datetime.datetime | None:
    """When a timed step ends: its start plus its duration, once more per extension of an analysis.

        deadline(Pause(2m), 10:00)                  -> 10:02
        deadline(Analyze(5m), 10:00, extensions=2)  -> 10:15
        deadline(SetWeight(5), 10:00)               -> None
    """
    span = duration(step)
    if span is None or started is None:
        return None
    return started + span * (1 + extensions if isinstance(step, Analyze) else 1)


def describe(step: Step | None) -> str:
    """A step in words, for events and status.message.

        describe(SetWeight(25))                 -> "setWeight 25"
        describe(Pause(None))                   -> "pause until promoted"
        describe(Mirror(100, 2))                -> "mirror 100% to 2 shadow pods"
    """
    match step:
        case SetWeight(weight=weight):
            return f"setWeight {weight}"
        case Preview(replicas=replicas):
            return f"preview on {replicas} pods"
        case Mirror(percent=percent, replicas=replicas, track=track):
            return f"mirror {percent}% to {replicas} {track.value} pods"
        case Cohort(replicas=replicas):
            return f"A/B cohort to {replicas} challenger pods"
        case Analyze(duration=span):
            return f"analyze {durations.format_duration(span)}"
        case Pause(duration=None):
            return "pause until promoted"
        case Pause(duration=span) if span is not None:
            return f"pause {durations.format_duration(span)}"
    return "promotion"
