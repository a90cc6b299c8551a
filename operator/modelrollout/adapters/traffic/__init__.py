"""Traffic providers behind one small Protocol (`router.TrafficRouter`), picked from a registry.

Each provider module is independent of the others; adding one is a module and a registry line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from modelrollout.adapters.cluster import kube
from modelrollout.adapters.traffic import gateway_api, istio, replica_ratio, router
from modelrollout.api import routing

RouterFactory = Callable[[kube.Kube], router.TrafficRouter]

ROUTERS: Mapping[routing.Provider, RouterFactory] = {
    routing.Provider.GATEWAY_API: gateway_api.GatewayAPIRouter,
    routing.Provider.ISTIO: istio.IstioRouter,
    routing.Provider.REPLICA_RATIO: replica_ratio.ReplicaRatioRouter,
}


def router_for(provider: routing.Provider, client: kube.Kube) -> router.TrafficRouter:
    return ROUTERS[provider](client)
