"""Which moments of a rollout a tick passed through, read from the status before and after it.

Deriving them from status, not from Events, makes each moment happen once per transition:
a restarted operator that decides the same status again sends nothing new.

    moments(before(phase=Succeeded), after(phase=Progressing, canary_revision="b", current_step=0))
        -> [STARTED]
"""

from __future__ import annotations

from modelrollout.api import notifications
from modelrollout.api import status as api_status

Moment = notifications.Moment
Phase = api_status.Phase


def moments(before: api_status.ModelDeploymentStatus, after: api_status.ModelDeploymentStatus) -> list[Moment]:
    """The moments from `before` to `after`, in the order they happened."""
    found: list[Moment] = []
    started = after.canary_revision is not None and after.canary_revision != before.canary_revision
    if started:
        found.append(Moment.STARTED)
    elif after.canary_revision is not None and after.current_step != before.current_step:
        found.append(Moment.STEP)
    if after.pause_reason is not None and before.pause_reason is None:
        found.append(Moment.PAUSED)
    if after.phase != before.phase:
        entered = {Phase.SUCCEEDED: Moment.PROMOTED, Phase.ROLLED_BACK: Moment.ROLLED_BACK,
                   Phase.DEGRADED: Moment.DEGRADED}.get(after.phase) if after.phase else None
        if entered is not None:
            found.append(entered)
    return found


def wanted(routes: list[notifications.Notification], found: list[Moment]) -> list[tuple[int, list[Moment]]]:
    """Per route (by index), the moments it asked for among those found; routes with none are left out."""
    out = []
    for index, route in enumerate(routes):
        chosen = [moment for moment in found if moment in route.events]
        if chosen:
            out.append((index, chosen))
    return out
