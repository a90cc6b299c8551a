"""The adapters one operator process shares, built once at start-up and kept in kopf's memo."""


from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import dataclasses
import functools
import threading
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from modelrollout import config
from modelrollout.adapters import telemetry
from modelrollout.adapters.cluster import caches, kube, workloads
from modelrollout.adapters.metrics import prometheus
from modelrollout.adapters.notify import webhook
from modelrollout.adapters.traffic import router, router_for
from modelrollout.api import routing
from modelrollout.runtime import leadership, secrets, slots

P = ParamSpec("P")
R = TypeVar("R")


@dataclasses.dataclass
class Runtime:
    """Built once at start-up and kept in kopf's memo."""

    settings: config.OperatorConfig
    kube: kube.Kube
    workloads: workloads.Workloads
    prometheus: prometheus.Sources
    receivers: webhook.Receivers = dataclasses.field(default_factory=webhook.Receivers)
    """The receivers ModelDeployments name in spec.notifications (declared before the field
    `webhook`, which hides the module's name below it)."""
    webhook: webhook.Webhook | None = None
    """The operator-wide webhook (MODELROLLOUT_WEBHOOK_URL), told of every Event."""
    cache: caches.ClusterCache | None = None
    """What the watches hold; without it (tests, tools) every read is a request."""
    slots: slots.Slots = dataclasses.field(default_factory=slots.Slots)
    started: float = dataclasses.field(default_factory=time.monotonic)
    leadership: leadership.Leadership | None = None
    """The Lease loop and write gate; None: leader election is off and this replica always acts."""
    secret_cache: secrets.SecretCache = dataclasses.field(default_factory=secrets.SecretCache)
    _outward: concurrent.futures.ThreadPoolExecutor | None = None
    _outward_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    async def in_thread(self, outward: bool, call: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Runs a blocking call in a worker thread, with the caller's context (its log subject).

        `outward` calls (reading Prometheus, calling a model server) run on threads of their own,
        `settings.analysis_threads` of them: they can wait seconds, many on one batched fetch, and
        on the shared threads they would hold back ticks that only read caches and write to the
        API server (a step whose canary pod just turned Ready).
        """
        if not outward:
            return await asyncio.to_thread(call, *args, **kwargs)
        context = contextvars.copy_context()  # as asyncio.to_thread does for the shared threads
        bound = functools.partial(context.run, call, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._outward_pool(), bound)

    def _outward_pool(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._outward_lock:
            if self._outward is None:
                self._outward = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self.settings.analysis_threads, thread_name_prefix="outward")
            return self._outward

    def secret(self, namespace: str | None, name: str, key: str, field: str) -> str:
        """The value of `key` in a Secret a ModelDeployment names; SpecError naming `field` if missing."""
        return secrets.value(self.secret_cache, self.kube, namespace, name, key, field)

    def may_act(self) -> bool:
        """Whether this replica may write now: it holds the Lease (or there is no election)."""
        return self.leadership is None or self.leadership.may_write()

    def router(self, provider: routing.Provider) -> router.TrafficRouter:
        return router_for(provider, self.kube)

    @classmethod
    def build(cls, settings: config.OperatorConfig, kubeconfig: str | None = None, watch: bool = True) -> Runtime:
        """With `watch`, starts the watches (the caller waits for `cache.wait_synced`)."""
        api_client = kube.load_api_client(kubeconfig)
        leader = None
        if settings.leader_election:  # the Lease's own client: no retries, each attempt within one period
            period = settings.duration(settings.lease_retry_period).total_seconds()
            lease_client = kube.Kube(api_client, retry_delays=(), timeout=period)
            leader = leadership.Leadership.from_settings(settings, lease_client)
        client = kube.Kube(api_client, bucket=kube.Bucket(settings.kube_qps, settings.kube_burst),
                           gate=leader.gate if leader is not None else None)
        client.observe = telemetry.kube_request
        timeout = settings.duration(settings.prometheus_timeout).total_seconds()
        tls = prometheus.Tls(settings.prometheus_insecure_skip_verify, settings.prometheus_ca_file)
        hook = webhook.Webhook(settings.webhook_url) if settings.webhook_url else None
        sources = prometheus.Sources(timeout=timeout, tls=tls, max_bytes=settings.prometheus_max_response_bytes)
        runtime = cls(settings=settings, kube=client, workloads=workloads.Workloads(client),
                      prometheus=sources, webhook=hook, leadership=leader)
        if watch:
            routes = [k for k in (kube.HTTP_ROUTE, kube.VIRTUAL_SERVICE) if client.served(k)]
            cache = caches.ClusterCache(client, settings.namespaces, settings.pod_address_annotation or "",
                                        routes, wake=runtime.slots.wake)
            client.known, client.cached = cache.applied, cache.cached
            cache.on_restart = telemetry.watch_restarted
            runtime.cache, runtime.workloads.cache = cache, cache
            cache.start()
        return runtime
