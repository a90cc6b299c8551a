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
    conditions = [c for c in out.get("conditions") or [] if c.get("type") != api_status.ConditionType.DEGRADED.value]
    earlier = next((c for c in out.get("conditions") or [] if c.get("type") == "Degraded"), None)
    changed = earlier is None or earlier.get("status") != "True"
    conditions.append({
        "type": api_status.ConditionType.DEGRADED.value, "status": "True", "reason": REASON,
        "message": message[:32768], "observedGeneration": generation,
        "lastTransitionTime": stamp if changed or earlier is None else earlier.get("lastTransitionTime", stamp),
    })
    out.update({"phase": api_status.Phase.DEGRADED.value, "message": message[:4096],
                "observedGeneration": generation, "conditions": conditions})
    return out
