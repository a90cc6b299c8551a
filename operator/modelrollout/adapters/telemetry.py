"""The operator's own metrics, exported with prometheus_client on MODELROLLOUT_METRICS_PORT.

    modelrollout_canary_weight{namespace,name}                   gauge, % to the new revision
    modelrollout_rollouts{phase}                                 gauge, ModelDeployments per phase
    modelrollout_step_duration_seconds{strategy}                 histogram, how long steps took
    modelrollout_verdicts_total{namespace,name,metric,verdict}   counter, analysis verdicts
    modelrollout_rollbacks_total{namespace,name,cause}           counter, rollbacks by cause
    modelrollout_analysis_query_seconds                          histogram, Prometheus query latency
    modelrollout_analysis_query_errors_total                     counter, failed Prometheus queries
    modelrollout_prometheus_queries_total{kind}                  counter, requests to Prometheus (range,
                                                                 instant, targets)
    modelrollout_prometheus_response_bytes_total{kind}           counter, bytes of their answers (decoded)
    modelrollout_kube_requests_total{verb,resource,code}         counter, the operator's requests to the
                                                                 API server (kopf's own watch aside)
    modelrollout_watch_restarts_total{resource}                  counter, watches opened again or relisted
    modelrollout_tick_seconds                                    histogram, how long one tick took
    modelrollout_objects_ticked                                  gauge, live ModelDeployments ticked at least
                                                                 once since this process started (cold start)
    modelrollout_leader{identity}                                gauge, 1 while this replica holds the Lease
    modelrollout_leader_write_checks_total{outcome}              counter, writes to the API server the Lease
                                                                 allowed or refused (a follower: 0 allowed)

The chart's dashboard and docs/helm.md use exactly these names.
"""

from __future__ import annotations

import contextlib
import threading

import prometheus_client

REGISTRY = prometheus_client.CollectorRegistry(auto_describe=True)

CANARY_WEIGHT = prometheus_client.Gauge(
    "modelrollout_canary_weight", "Percentage of requests the new revision answers.",
    ["namespace", "name"], registry=REGISTRY)
ROLLOUTS = prometheus_client.Gauge(
    "modelrollout_rollouts", "ModelDeployments per phase.", ["phase"], registry=REGISTRY)
STEP_DURATION = prometheus_client.Histogram(
    "modelrollout_step_duration_seconds", "How long rollout steps took.", ["strategy"], registry=REGISTRY,
    buckets=(5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200))
VERDICTS = prometheus_client.Counter(
    "modelrollout_verdicts_total", "Analysis verdicts per metric.", ["namespace", "name", "metric", "verdict"],
    registry=REGISTRY)
ROLLBACKS = prometheus_client.Counter(
    "modelrollout_rollbacks_total", "Rollbacks by cause.", ["namespace", "name", "cause"], registry=REGISTRY)
QUERY_SECONDS = prometheus_client.Histogram(
    "modelrollout_analysis_query_seconds", "Latency of analysis queries to Prometheus.", registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
QUERY_ERRORS = prometheus_client.Counter(
    "modelrollout_analysis_query_errors_total", "Analysis queries to Prometheus that failed.", registry=REGISTRY)

PROMETHEUS_QUERIES = prometheus_client.Counter(
    "modelrollout_prometheus_queries_total", "Requests to Prometheus, by kind (range, instant, targets).",
    ["kind"], registry=REGISTRY)
PROMETHEUS_RESPONSE_BYTES = prometheus_client.Counter(
    "modelrollout_prometheus_response_bytes_total", "Bytes of Prometheus answers as read (after decompression).",
    ["kind"], registry=REGISTRY)
KUBE_REQUESTS = prometheus_client.Counter(
    "modelrollout_kube_requests_total", "The operator's requests to the API server.", ["verb", "resource", "code"],
    registry=REGISTRY)
WATCH_RESTARTS = prometheus_client.Counter(
    "modelrollout_watch_restarts_total", "Watches opened again after an error, or relisted.", ["resource"],
    registry=REGISTRY)
TICK_SECONDS = prometheus_client.Histogram(
    "modelrollout_tick_seconds", "How long one tick of a ModelDeployment took.", registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
OBJECTS_TICKED = prometheus_client.Gauge(
    "modelrollout_objects_ticked", "Live ModelDeployments that have ticked at least once since this process started.",
    registry=REGISTRY)

LEADER = prometheus_client.Gauge(
    "modelrollout_leader", "1 while this replica holds the leader Lease and may write.", ["identity"],
    registry=REGISTRY)
WRITE_CHECKS = prometheus_client.Counter(
    "modelrollout_leader_write_checks_total", "Writes to the API server the leader Lease allowed or refused.",
    ["outcome"], registry=REGISTRY)

_phases: dict[tuple[str, str], str] = {}
_lock = threading.Lock()


def set_phase(namespace: str, name: str, phase: str | None) -> None:
    """Records a ModelDeployment's phase (None: it is gone) and recounts the phase gauge."""
    with _lock:
        if phase is None:
            _phases.pop((namespace, name), None)
        else:
            _phases[(namespace, name)] = phase
        counts: dict[str, int] = {}
        for value in _phases.values():
            counts[value] = counts.get(value, 0) + 1
        for known in list(ROLLOUTS._metrics):  # phases no longer held drop to 0
            ROLLOUTS.labels(*known).set(0)
        for value, count in counts.items():
            ROLLOUTS.labels(value).set(count)


def kube_request(verb: str, resource: str, code: str) -> None:
    KUBE_REQUESTS.labels(verb, resource, code).inc()


def watch_restarted(resource: str) -> None:
    WATCH_RESTARTS.labels(resource).inc()


def forget(namespace: str, name: str) -> None:
    """Removes every series of a deleted ModelDeployment."""
    set_phase(namespace, name, None)
    with contextlib.suppress(KeyError):
        CANARY_WEIGHT.remove(namespace, name)
    for family in (VERDICTS, ROLLBACKS):
        for labels in _series(family):
            if labels[:2] == (namespace, name):
                with contextlib.suppress(KeyError):
                    family.remove(*labels)


def _series(family: prometheus_client.Counter) -> list[tuple[str, ...]]:
    """The label values of a family's series (prometheus_client keeps them in `_metrics`)."""
    return [tuple(key) for key in list(getattr(family, "_metrics", {}))]


def serve(port: int, host: str = "0.0.0.0") -> None:
    """Starts the /metrics endpoint in a background thread."""
    prometheus_client.start_http_server(port, addr=host, registry=REGISTRY)
