"""The load generator's own counters: what it sent where, as a gateway's metrics would say.

Scenarios read them to check the split a route asked for (`backend` is the Service name,
`routing.PODS_BACKEND` for traffic sent straight to pods, "" when no backend had weight).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class LoadgenMetrics:
    """Counters in a registry of their own (tests run several senders in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "loadgen_requests", "User requests sent, by backend and the answer's status code "
            "(503: no ready pod or connection failed; 504: timed out), and whether the request carried "
            "a header or cookie drawn from e2e.modelrollout.io/headers (tagged yes or no).",
            ["namespace", "target", "backend", "code", "tagged"], registry=self.registry,
        )
        self.mirrored = Counter(
            "loadgen_mirrored", "Mirrored copies sent (answers dropped; not user traffic).",
            ["namespace", "target", "backend"], registry=self.registry,
        )
        self.intended = Gauge(
            "loadgen_intended_rps", "Requests per second asked for by the target's annotation.",
            ["namespace", "target"], registry=self.registry,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
