"""The adapters one operator process shares, built once at start-up and kept in kopf's memo."""


from __future__ import annotations

import dataclasses

from modelrollout import config
from modelrollout.adapters.cluster import kube, workloads
from modelrollout.adapters.metrics import prometheus
from modelrollout.adapters.notify import webhook
from modelrollout.adapters.traffic import router, router_for
from modelrollout.api import routing


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

    def router(self, provider: routing.Provider) -> router.TrafficRouter:
        return router_for(provider, self.kube)

    @classmethod
    def build(cls, settings: config.OperatorConfig, kubeconfig: str | None = None) -> Runtime:
        client = kube.Kube(kube.load_api_client(kubeconfig))
        timeout = settings.duration(settings.prometheus_timeout).total_seconds()
        tls = prometheus.Tls(settings.prometheus_insecure_skip_verify, settings.prometheus_ca_file)
        hook = webhook.Webhook(settings.webhook_url) if settings.webhook_url else None
        sources = prometheus.Sources(timeout=timeout, tls=tls, max_bytes=settings.prometheus_max_response_bytes)
        return cls(settings=settings, kube=client, workloads=workloads.Workloads(client),
                   prometheus=sources, webhook=hook)
