"""The adapters one operator process shares, built once at start-up and kept in kopf's memo."""


from __future__ import annotations

import dataclasses
import time

from modelrollout import config
from modelrollout.adapters import telemetry
from modelrollout.adapters.cluster import caches, kube, workloads
from modelrollout.adapters.metrics import prometheus
from modelrollout.adapters.notify import webhook
from modelrollout.adapters.traffic import router, router_for
from modelrollout.api import routing
from modelrollout.runtime import leadership, secrets, slots


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
