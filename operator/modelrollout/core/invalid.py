"""The status of a ModelDeployment whose spec cannot even be read.

The schema lets through some objects the models refuse (a rule the CRD cannot express, an
object written before the CRD was updated). The operator must not crash on them nor act on
them: it marks the object Degraded with the reason and leaves its pods and traffic as they are.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from modelrollout.api import status as api_status

REASON = "InvalidSpec"


def status(previous: Mapping[str, Any] | None, generation: int | None, message: str,
           now: datetime.datetime) -> dict[str, Any]:
    """The previous status (as JSON) with phase Degraded and a Degraded condition saying why.

        status(None, 3, "spec.replicas: ...", now)["phase"] -> "Degraded"
    """
    out = dict(previous or {})
    stamp = now.isoformat().replace("+00:00", "Z")
    kinds = api_status.ConditionType
    # Degraded and kstatus's Stalled say why; Reconciling says nothing goes on until the spec changes.
    wanted = {kinds.DEGRADED.value: "True", kinds.STALLED.value: "True", kinds.RECONCILING.value: "False"}
    earlier = {c.get("type"): c for c in out.get("conditions") or []}
    conditions = [c for c in out.get("conditions") or [] if c.get("type") not in wanted]
    for kind, state in wanted.items():
        before = earlier.get(kind)
        held = before is not None and before.get("status") == state
        conditions.append({
            "type": kind, "status": state, "reason": REASON, "message": message[:32768],
            "observedGeneration": generation,
            "lastTransitionTime": before.get("lastTransitionTime", stamp) if held and before else stamp,
        })
    out.update({"phase": api_status.Phase.DEGRADED.value, "message": message[:4096],
                "observedGeneration": generation, "conditions": conditions})
    return out
