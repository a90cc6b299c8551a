"""ReplicaRatio: no mesh; the user-facing Service selects the serving pods of every revision.

The split follows the ready replica counts the decision core plans, so there is no object to
write here: the weight is whatever share of the serving pods the candidate holds. Mirroring is
impossible and refused when the ModelDeployment is validated.
"""

from __future__ import annotations

from modelrollout.adapters.cluster import kube, manifests
from modelrollout.api import routing
from modelrollout.core import decision


class ReplicaRatioRouter:
    def __init__(self, client: kube.Kube) -> None:
        self.kube = client

    def apply(self, owner: manifests.Owner, traffic: routing.Traffic, split: decision.TrafficSplit) -> None:
        if split.mirror_percent:
            raise ValueError("ReplicaRatio cannot mirror requests")

    def current(self, owner: manifests.Owner) -> tuple[int, int] | None:
        return None

    def problem(self, owner: manifests.Owner) -> str | None:
        return None  # nothing in the provider's status says the split is not carried
