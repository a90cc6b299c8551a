"""In what order a Decision's replica changes reach the cluster, so that the budget holds throughout.

Each plan fits the GPU budget, but the cluster moves from the last plan to the next one write by
write, and a scale-up written before the scale-down that makes room for it asks, for a moment,
for more accelerators than the budget allows. So the handlers write in this order:

1. scale-downs that leave the revision at least one pod (it keeps serving whatever traffic it has);
2. scale-ups, each cut to what the budget leaves at that moment;
3. (the Services and the traffic split)
4. scale-downs to 0, which must wait until traffic has left the revision, and the removal of
   revisions the plan no longer lists;
5. the rest of any scale-up that was cut in step 2, now that step 4 has made room.

Without a budget (no GPUs counted) nothing is cut: the plan's surge is allowed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from modelrollout.core import decision


@dataclasses.dataclass(frozen=True)
class Writes:
    """The workload writes before the traffic split changes, after it, and after the removals."""

    before_traffic: tuple[decision.Workload, ...]
    after_traffic: tuple[decision.Workload, ...]
    after_removals: tuple[decision.Workload, ...]


def sequence(plan: tuple[decision.Workload, ...], current: Mapping[str, int], budget: int | None) -> Writes:
    """Orders the writes that take every revision from `current` replicas to the plan's.

    `current` holds the replicas each existing Deployment asks for now, by revision (those the
    plan does not list are removed last, and count until then); `budget` is the pods of every
    revision together the writes may ask for at any moment, or None for no limit.

        sequence((W("a", 2), W("b", 1)), {"a": 3}, budget=3)
            before: a -> 2, b -> 1              a pod makes room before the new one is asked for
        sequence((W("a", 3), W("b", 0)), {"a": 2, "b": 1}, budget=3)
            before: a -> 2 (cut)   after traffic: b -> 0   after removals: a -> 3
    """
    asked = dict(current)
    early_downs = [w for w in plan if 0 < w.replicas < asked.get(w.revision, 0)]
    late_downs = [w for w in plan if w.replicas == 0 and asked.get(w.revision, 0) > 0]
    ups = [w for w in plan if w.revision not in asked or w.replicas >= asked[w.revision]]

    before: list[decision.Workload] = []
    rest: list[decision.Workload] = []
    for workload in early_downs:
        before.append(workload)
        asked[workload.revision] = workload.replicas
    for workload in ups:
        now = asked.get(workload.revision, 0)
        room = workload.replicas - now if budget is None else budget - sum(asked.values())
        allowed = max(now, min(workload.replicas, now + room))
        before.append(dataclasses.replace(workload, replicas=allowed))
        asked[workload.revision] = allowed
        if allowed < workload.replicas:
            rest.append(workload)
    return Writes(tuple(before), tuple(late_downs), tuple(rest))
