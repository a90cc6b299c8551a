"""The kind world's Prometheus: in-cluster pod discovery with the chart's PodMonitor relabelling."""

from __future__ import annotations

from typing import Any

import yaml

from e2e.kind import world


def test_prometheus_discovers_every_pod_in_cluster_with_the_podmonitor_labels(monkeypatch: Any) -> None:
    monkeypatch.setenv("E2E_SCRAPE_INTERVAL", "30s")
    config = world.prometheus_config()
    assert config["global"]["scrape_interval"] == "30s" and config["global"]["scrape_timeout"] == "10s"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"model-servers", "operator", "loadgen"}
    for job in (jobs["model-servers"], jobs["operator"]):
        assert job["kubernetes_sd_configs"] == [{"role": "pod"}]  # no kubeconfig file, no node selector
    # The load generator's series keep their own namespace label: no target label overrides it.
    assert not {rule.get("target_label") for rule in jobs["loadgen"]["relabel_configs"]} - {None}
    targets = {rule.get("target_label") for rule in jobs["model-servers"]["relabel_configs"]}
    assert {"modeldeployment", "track", "revision", "namespace", "pod", "__scrape_interval__"} <= targets


def test_prometheus_objects_carry_that_config_and_a_fixed_node_port() -> None:
    objects = {o["kind"]: o for o in world.prometheus_objects("e2e.local/prometheus:3.16.0")}
    assert yaml.safe_load(objects["ConfigMap"]["data"]["prometheus.yml"])["scrape_configs"]
    assert objects["Service"]["spec"]["ports"][0]["nodePort"] == world.PROMETHEUS_NODE_PORT
    container = objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "e2e.local/prometheus:3.16.0" and container["imagePullPolicy"] == "Never"
    assert objects["ClusterRole"]["rules"][0]["verbs"] == ["get", "list", "watch"]


def test_the_load_generator_reads_what_the_pod_runner_writes_and_serves_metrics() -> None:
    objects = {o["kind"]: o for o in world.loadgen_objects("apiVersion: v1\n")}
    assert objects["Secret"]["stringData"]["kubeconfig"] == "apiVersion: v1\n"
    runner, loadgen = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert "--kubelets-run-every-pod" in runner["args"]
    written = next(a for a in runner["args"] if a.startswith("--endpoints="))
    assert written in loadgen["args"] and "--metrics-host=0.0.0.0" in loadgen["args"]
    assert loadgen["ports"] == [{"name": "metrics", "containerPort": world.LOADGEN_METRICS_PORT}]
