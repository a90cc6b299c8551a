"""The adapters one operator process shares, built once at start-up and kept in kopf's memo."""


from __future__ import annotations

import dataclasses

from modelrollout import config
from modelrollout.adapters.cluster import kube, workloads
from modelrollout.adapters.metrics import prometheus
from modelrollout.adapters.notify import webhook
from modelrollout.adapters.traffic import router, router_for
from modelrollout.api import routing
from modelrollout.runtime import leadership


@dataclasses.dataclass
class Runtime:
    """Built once at start-up and kept in kopf's memo."""

    settings: config.OperatorConfig
    kube: kube.Kube
    workloads: workloads.Workloads
    prometheus: prometheus.Sources
    webhook: webhook.Webhook | None = None
    leadership: leadership.Leadership | None = None
    """The Lease loop and write gate; None: leader election is off and this replica always acts."""

    def may_act(self) -> bool:
        """Whether this replica may write now: it holds the Lease (or there is no election)."""
        return self.leadership is None or self.leadership.may_write()

    def router(self, provider: routing.Provider) -> router.TrafficRouter:
        return router_for(provider, self.kube)

    @classmethod
    def build(cls, settings: config.OperatorConfig, kubeconfig: str | None = None) -> Runtime:
        api_client = kube.load_api_client(kubeconfig)
        leader = None
        if settings.leader_election:  # the Lease's own client: no retries, each attempt within one period
            period = settings.duration(settings.lease_retry_period).total_seconds()
            lease_client = kube.Kube(api_client, retry_delays=(), timeout=period)
            leader = leadership.Leadership.from_settings(settings, lease_client)
        client = kube.Kube(api_client, gate=leader.gate if leader is not None else None)
        timeout = settings.duration(settings.prometheus_timeout).total_seconds()
        tls = prometheus.Tls(settings.prometheus_insecure_skip_verify, settings.prometheus_ca_file)
        hook = webhook.Webhook(settings.webhook_url) if settings.webhook_url else None
        sources = prometheus.Sources(timeout=timeout, tls=tls, max_bytes=settings.prometheus_max_response_bytes)
        return cls(settings=settings, kube=client, workloads=workloads.Workloads(client),
                   prometheus=sources, webhook=hook, leadership=leader)
