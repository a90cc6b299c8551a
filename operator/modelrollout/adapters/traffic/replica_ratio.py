"""ReplicaRatio: no mesh; the user-facing Service selects the serving pods of every revision.

The split follows the ready replica counts the decision core plans, so there is no object to
write here: the weight is whatever share of the serving pods the candidate holds. Mirroring and
routing a cohort by header or cookie (an A/B test) are impossible and refused when the
ModelDeployment is validated; a split that asks for either anyway raises instead of sending
requests by replica count.
"""

from __future__ import annotations

from modelrollout import errors
from modelrollout.adapters.cluster import kube, manifests
from modelrollout.api import routing
from modelrollout.core import decision


class ReplicaRatioRouter:
    def __init__(self, client: kube.Kube) -> None:
        self.kube = client

    def apply(self, owner: manifests.Owner, traffic: routing.Traffic, split: decision.TrafficSplit) -> None:
        if split.cohort:
            raise errors.SpecError("spec.strategy.abTest.match: provider ReplicaRatio cannot route requests by "
                                   "header or cookie (it splits them by replica count); use GatewayAPI or Istio")
        if split.mirror_percent:
            raise ValueError("ReplicaRatio cannot mirror requests")

    def current(self, owner: manifests.Owner) -> tuple[int, int] | None:
        return None

    def problem(self, owner: manifests.Owner) -> str | None:
        return None  # nothing in the provider's status says the split is not carried
