"""Operator start-up: kopf settings in one place, and the shared Runtime put into memo.

kopf keeps its own bookkeeping in annotations under modelrollout.io (never in status, which is
ours), uses the modelrollout.io finalizer, and runs standalone: kopf's peering is off, and the
replicas elect a leader on a Lease of their own instead (`runtime.leadership` says why). Every
replica watches and keeps its daemons; only the leader's write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf

from modelrollout import config
from modelrollout.adapters import telemetry
from modelrollout.api import labels
from modelrollout.runtime import shared


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=labels.STORAGE_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=labels.STORAGE_PREFIX, key="last-handled-configuration")
    settings.persistence.finalizer = labels.FINALIZER
    settings.posting.level = logging.WARNING  # our own Events say what happens; kopf's only warn
    settings.watching.server_timeout = 120
    settings.watching.client_timeout = 150
    settings.networking.request_timeout = 30
    settings.peering.standalone = True
    settings.scanning.disabled = True  # no CRD watching: the RBAC grants none, and ours is known
    operator_config = config.OperatorConfig.from_env()
    memo.runtime = runtime = shared.Runtime.build(operator_config)
    if runtime.leadership is not None:
        memo.lease_loop = asyncio.create_task(runtime.leadership.run(), name="lease")
    if operator_config.metrics_port:
        telemetry.serve(operator_config.metrics_port, operator_config.listen_host)
    logger.info("modelrollout started: prometheus %s, namespaces %s, leader election %s",
                operator_config.prometheus_url or "(per ModelDeployment)",
                ", ".join(operator_config.namespaces) or "all",
                f"on Lease {operator_config.lease_namespace}/{operator_config.lease_name} as "
                f"{runtime.leadership.identity}" if runtime.leadership else "off")


@kopf.on.cleanup()
async def release(memo: kopf.Memo, **_: Any) -> None:
    """A clean exit hands the Lease over at once, so a follower need not wait for it to expire."""
    loop: asyncio.Task[None] | None = getattr(memo, "lease_loop", None)
    if loop is not None:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
    leader = runtime_of(memo).leadership
    if leader is not None:
        await leader.release()


def runtime_of(memo: Any) -> shared.Runtime:
    """The Runtime built at start-up, typed."""
    runtime: shared.Runtime = memo.runtime
    return runtime
