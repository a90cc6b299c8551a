"""The counts the judges see are the model servers' own: what the adapter differences from
Prometheus over a window equals, to the request, what each server counted itself.

Two revisions serve traffic for a while (the new one fails 10 % of its requests in bursts of
about 3), then the traffic stops and every server is scraped once more. The window began before
the pods did, so each pod's counters count from zero in it: the adapter's per-pod totals must
equal the totals each server reports on its own /metrics, requests and 5xx alike, although
Prometheus scrapes at 15 s and the judges read exact integers per step.
"""

from __future__ import annotations

import datetime
import re
import time
import urllib.request
import uuid
from typing import Any

import pytest
import yaml

from e2e.cluster import world as local_world
from e2e.fixtures.world import Kubectl, Prometheus, WorldInfo, eventually, get_json
from modelrollout.adapters.metrics import presets, scraping
from modelrollout.adapters.metrics import prometheus as adapter
from modelrollout.api import analyses

pytestmark = pytest.mark.cluster
ADDRESS = "e2e.modelrollout.io/address"
_SAMPLE = re.compile(r'^model_requests_total\{code="(\d+)"\} ([0-9.e+]+)$', re.MULTILINE)


def servers(name: str, revision: str, rps: int, **env: str) -> list[dict[str, Any]]:
    labels = {"modelrollout.io/name": name, "modelrollout.io/revision": revision, "modelrollout.io/track": "stable"}
    container = {"name": "server", "image": "registry.example/modelserver:1.0", "ports": [{"containerPort": 8080}],
                 "env": [{"name": k, "value": v} for k, v in env.items()]}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"{name}-{revision}"},
         "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": f"{name}-{revision}", "annotations": {"e2e.modelrollout.io/rps": str(rps)}},
         "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}},
    ]


def own_totals(kubectl: Kubectl, namespace: str) -> dict[str, tuple[float, float]]:
    """Per pod, (requests, 5xx) as the server itself counted them, from its /metrics."""
    out = {}
    for pod in get_json(kubectl, "pods", "-n", namespace)["items"]:
        address = pod["metadata"].get("annotations", {}).get(ADDRESS)
        assert address, f"pod {pod['metadata']['name']} has no {ADDRESS} annotation"
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        codes = {code: float(value) for code, value in _SAMPLE.findall(text)}
        out[pod["metadata"]["name"]] = (sum(codes.values()), sum(v for c, v in codes.items() if c.startswith("5")))
    return out


def _sum(values: tuple[float, ...]) -> float:
    return sum(v for v in values if v == v)  # nan: intervals the pod was not there


def test_exact_counts_equal_the_model_servers_own_totals(
        kubectl: Kubectl, world: WorldInfo, prometheus: Prometheus) -> None:
    interval = float(local_world.scrape_interval())
    metric = presets.lookup(analyses.Preset.GENERIC, "error-rate")
    assert metric is not None
    namespace = f"exact-counts-{uuid.uuid4().hex[:5]}"
    kubectl("create", "namespace", namespace)
    try:
        # Two steps before any pod: no pod has a value at the baseline, so each counts from zero.
        since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=2 * interval)
        kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(
            servers("m", "old", 60) + servers("m", "new", 60, FAULT_ERROR_RATE="0.1", FAULT_ERROR_BURST="3")))
        query = f'count(model_requests_total{{namespace="{namespace}",code="200"}} > 0)'
        eventually(lambda: (prometheus.scalar(query) or 0) >= 4, 180, interval=2, what="four pods scraped with traffic")
        time.sleep(3 * interval)
        for revision in ("old", "new"):
            kubectl("delete", "service", f"m-{revision}", "-n", namespace)  # the traffic stops
        settled: list[dict[str, tuple[float, float]]] = [own_totals(kubectl, namespace)]

        def stopped() -> bool:  # the load generator notices a deleted Service within a few seconds
            time.sleep(2.0)
            settled.append(own_totals(kubectl, namespace))
            return settled[-1] == settled[-2]
        eventually(stopped, 60, interval=0.1, what="the servers' counters no longer moving")
        own = settled[-1]
        assert len(own) == 4 and all(n > 100 for n, _ in own.values()), own
        assert sum(bad for _, bad in own.values()) > 10, own
        source = adapter.PrometheusSource(world.prometheus_url)
        scrape = source.scrape(namespace, "m", [metric])
        assert scrape.interval == interval

        def counted() -> dict[str, tuple[float, float]]:
            step = scraping.step(scrape, None)
            window = adapter.Tracks(namespace, "m", "old", "new", "canary", since,
                                    datetime.datetime.now(datetime.UTC), datetime.timedelta(seconds=step),
                                    lag=datetime.timedelta(seconds=scrape.lag))
            found = source.counts(metric, window)
            assert found.error is None, found.error
            return {p.pod: (_sum(p.requests), _sum(p.events)) for p in found.pods}

        # The last scrape after the traffic stopped lands within an interval; then that interval closes.
        try:
            eventually(lambda: counted() == own, 2 * interval + scrape.lag + 30, interval=interval / 3,
                       what="the adapter's totals equal to the servers'")
        except AssertionError as error:
            raise AssertionError(f"{error}: adapter {counted()}, servers {own}") from None
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
