"""Health: kopf serves /healthz (the chart's liveness and readiness probes); these probes add whether
the API server answers and this replica's role. Leader and follower are both ready: a follower
is a warm standby, and an operator with no Service needs no traffic steering."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from modelrollout.adapters.cluster import kube
from modelrollout.handlers import startup


@kopf.on.probe(id="apiserver")
async def apiserver_reachable(memo: kopf.Memo, **_: Any) -> bool:
    runtime = startup.runtime_of(memo)
    return await asyncio.to_thread(runtime.kube.served, kube.MODEL_DEPLOYMENT)


@kopf.on.probe(id="role")
def role(memo: kopf.Memo, **_: Any) -> str:
    """leader, follower, or alone (leader election off)."""
    runtime = startup.runtime_of(memo)
    if runtime.leadership is None:
        return "alone"
    return "leader" if runtime.may_act() else "follower"
