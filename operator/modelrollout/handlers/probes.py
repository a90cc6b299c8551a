"""Liveness: kopf serves /healthz; this probe adds whether the API server answers."""

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
