"""The e2e world itself: GPU scheduling, real model servers, Prometheus scraping, routed traffic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.cluster.layout import REPO, Layout, Ports
from e2e.cluster.processes import port_in_use
from e2e.fixtures.world import Kubectl, Prometheus, WorldInfo, eventually, get_json

pytestmark = pytest.mark.cluster


def deployment(name: str, replicas: int, labels: dict[str, str], env: dict[str, str] | None = None,
               gpus: int = 0, pool: str | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "server", "image": "registry.example/modelserver:1.0",
        "ports": [{"name": "http", "containerPort": 8080}],
        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
    }
    spec: dict[str, Any] = {"containers": [container]}
    if gpus:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
        spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    if pool:
        spec["nodeSelector"] = {"modelrollout.io/pool": pool}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": spec}},
    }


def service(name: str, selector: dict[str, str], rps: int | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if rps:
        meta["annotations"] = {"e2e.modelrollout.io/rps": str(rps)}
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}


def apply(kubectl: Kubectl, namespace: str, *objects: dict[str, Any]) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects))


def pods(kubectl: Kubectl, namespace: str, selector: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get_json(kubectl, "pods", "-n", namespace, "-l", selector)["items"]
    return items


def ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def test_gpu_pool_schedules_what_fits_and_scrapes_it(kubectl: Kubectl, namespace: str, prometheus: Prometheus) -> None:
    labels = {"app": "scorer", "modelrollout.io/name": "scorer", "modelrollout.io/track": "stable"}
    apply(kubectl, namespace, deployment("scorer", 4, labels, gpus=1, pool="l4"))

    def three_running_one_pending() -> list[dict[str, Any]] | None:
        items = pods(kubectl, namespace, "app=scorer")
        running = [p for p in items if p["status"].get("phase") == "Running" and ready(p)]
        pending = [p for p in items if p["status"].get("phase") == "Pending"]
        return items if len(items) == 4 and len(running) == 3 and len(pending) == 1 else None

    items = eventually(three_running_one_pending, 60, what="3 of 4 GPU pods Running and Ready, 1 Pending")
    pending = next(p for p in items if p["status"].get("phase") == "Pending")
    unschedulable = next(c for c in pending["status"]["conditions"] if c["type"] == "PodScheduled")
    assert unschedulable["reason"] == "Unschedulable"
    assert "Insufficient nvidia.com/gpu" in unschedulable["message"]
    placed = {p["spec"]["nodeName"] for p in items if p["spec"].get("nodeName")}
    assert placed == {"l4-0", "l4-1", "l4-2"}

    up = eventually(lambda: (r if len(r := prometheus.query(f'up{{namespace="{namespace}"}} == 1')) == 3 else None),
                    45, what="the 3 running model servers scraped with up == 1")
    assert {s["metric"]["modeldeployment"] for s in up} == {"scorer"}
    assert {s["metric"]["track"] for s in up} == {"stable"}
    assert {s["metric"]["pod"] for s in up} == {p["metadata"]["name"] for p in items if ready(p)}


def test_error_ratio_of_a_faulty_deployment_shows_in_promql(
        kubectl: Kubectl, namespace: str, prometheus: Prometheus) -> None:
    good = {"app": "mixed", "modelrollout.io/name": "mixed", "modelrollout.io/track": "stable"}
    bad = {"app": "mixed", "modelrollout.io/name": "mixed", "modelrollout.io/track": "canary"}
    apply(kubectl, namespace,
          deployment("mixed-good", 1, good),
          deployment("mixed-bad", 1, bad, env={"FAULT_ERROR_RATE": "0.5"}),
          service("mixed", {"app": "mixed"}, rps=60))
    ratio_query = (f'sum by (track) (model_requests_total{{namespace="{namespace}",code=~"5.."}})'
                   f' / sum by (track) (model_requests_total{{namespace="{namespace}"}})')
    totals_query = f'sum by (track) (model_requests_total{{namespace="{namespace}"}})'

    def enough() -> dict[str, float] | None:
        totals = {s["metric"]["track"]: float(s["value"][1]) for s in prometheus.query(totals_query)}
        return totals if len(totals) == 2 and min(totals.values()) >= 300 else None

    eventually(enough, 90, what="300 requests on each track")
    ratios = {s["metric"]["track"]: float(s["value"][1]) for s in prometheus.query(ratio_query)}
    assert ratios.get("stable", 0.0) < 0.02
    assert 0.4 < ratios["canary"] < 0.6  # 0.5 +- more than 4 standard errors at n >= 300


def test_httproute_weights_split_traffic(kubectl: Kubectl, namespace: str, prometheus: Prometheus) -> None:
    a = {"app": "web-a", "modelrollout.io/name": "web", "modelrollout.io/track": "stable"}
    b = {"app": "web-b", "modelrollout.io/name": "web", "modelrollout.io/track": "canary"}
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "web"},
        "spec": {"parentRefs": [{"name": "inference-gateway"}], "rules": [{"backendRefs": [
            {"name": "web-a", "port": 80, "weight": 90}, {"name": "web-b", "port": 80, "weight": 10}]}]},
    }
    apply(kubectl, namespace, deployment("web-a", 2, a), deployment("web-b", 1, b),
          service("web-a", {"app": "web-a"}), service("web-b", {"app": "web-b"}),
          service("web", {"modelrollout.io/name": "web"}, rps=150), route)
    selector = f'model_requests_total{{namespace="{namespace}"}}'

    def scraped() -> dict[str, tuple[str, float, float]] | None:
        """pod -> (track, requests, when scraped): each pod is scraped at its own moment."""
        values = {s["metric"]["pod"]: s for s in prometheus.query(f"sum by (track, pod) ({selector})")}
        stamps = {s["metric"]["pod"]: float(s["value"][1])
                  for s in prometheus.query(f"max by (pod) (timestamp({selector}))")}
        if len(values) < 3 or set(stamps) != set(values):
            return None  # a pod that is scraped late would bring its earlier requests in one jump
        return {pod: (s["metric"]["track"], float(s["value"][1]), stamps[pod]) for pod, s in values.items()}

    def both_served() -> dict[str, tuple[str, float, float]] | None:
        pods = scraped()
        answered = {track for track, requests, _ in (pods or {}).values() if requests > 0}
        return pods if answered == {"stable", "canary"} else None

    # Count from the moment all three pods are scraped and each track has answered: a pod is
    # scraped before it turns Ready, and until the canary pod is Ready every request is stable's.
    start = eventually(both_served, 120, what="all three pods scraped, each track answering")

    def rates_over_45s() -> dict[str, float] | None:
        # Each pod's requests per second between two of its own scrapes at least 45 s apart (about
        # 6,750 requests in all): counting totals instead would compare pods scraped at different moments.
        now = scraped() or {}
        if set(now) != set(start) or any(now[pod][2] - start[pod][2] < 45 for pod in start):
            return None
        rates: dict[str, float] = {}
        for pod, (track, requests, at) in now.items():
            rates[track] = rates.get(track, 0.0) + (requests - start[pod][1]) / (at - start[pod][2])
        return rates

    rates = eventually(rates_over_45s, 120, what="45 s of requests on every pod")
    share = rates.get("canary", 0.0) / sum(rates.values())
    assert abs(share - 0.10) <= 0.03, rates


def test_deleting_a_namespace_stops_its_model_servers(kubectl: Kubectl, world: WorldInfo) -> None:
    namespace = "doomed-" + os.urandom(3).hex()
    kubectl("create", "namespace", namespace)
    labels = {"app": "doomed", "modelrollout.io/name": "doomed", "modelrollout.io/track": "stable"}
    apply(kubectl, namespace, deployment("doomed", 2, labels))
    eventually(lambda: len([p for p in pods(kubectl, namespace, "app=doomed") if ready(p)]) == 2, 60,
               what="2 ready pods")
    endpoints = Layout.default().endpoints
    ports = [p["port"] for p in json.loads(endpoints.read_text())["pods"] if p["namespace"] == namespace]
    assert len(ports) == 2 and all(port_in_use(port) for port in ports)

    kubectl("delete", "namespace", namespace, "--wait=false")
    eventually(lambda: not any(port_in_use(port) for port in ports), 90, what="model-server ports closed")
    eventually(lambda: kubectl("get", "namespace", namespace, check=False).returncode != 0, 90,
               what="namespace gone")
    left = [p for p in json.loads(endpoints.read_text())["pods"] if p["namespace"] == namespace]
    assert left == []


def test_crashing_server_makes_its_pod_not_ready(kubectl: Kubectl, namespace: str) -> None:
    labels = {"app": "crashy", "modelrollout.io/name": "crashy", "modelrollout.io/track": "canary"}
    apply(kubectl, namespace, deployment("crashy", 1, labels, env={"FAULT_CRASH": "1"}))

    def restarted_and_not_ready() -> bool:
        items = pods(kubectl, namespace, "app=crashy")
        if len(items) != 1 or ready(items[0]):
            return False
        statuses = items[0]["status"].get("containerStatuses", [])
        return bool(statuses) and statuses[0].get("restartCount", 0) >= 1

    eventually(restarted_and_not_ready, 60, what="pod NotReady with a restart counted")


def processes_mentioning(text: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


@pytest.mark.skipif(os.environ.get("E2E_CLUSTER", "local") != "local", reason="starts a second local world")
def test_cluster_up_then_down_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "second"
    # Beside this worker's own world (its offset plus 300), clear of the other workers' worlds.
    monkeypatch.setenv("E2E_PORT_OFFSET", str(int(os.environ.get("E2E_PORT_OFFSET", "0")) + 300))
    ports = Ports.from_env()
    env = dict(os.environ, E2E_DIR=str(root))

    def cluster(verb: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "e2e.cluster", verb], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=300)

    up = cluster("up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert f"PROMETHEUS_URL=http://127.0.0.1:{ports.prometheus}" in (root / "env").read_text()
    assert all(port_in_use(p) for p in ports.all())
    assert len(processes_mentioning(str(root))) >= 6
    assert cluster("up").returncode == 0  # idempotent: a second up finds it healthy

    down = cluster("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert processes_mentioning(str(root)) == []
    assert [p for p in ports.all() if port_in_use(p)] == []
    assert not (root / "env").exists()


def _listening_addresses(pids: set[int]) -> list[str]:
    """host:port of every listening TCP socket the given processes hold (from /proc)."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                address, port = fields[1].split(":")
                found.append(f"{address}:{int(port, 16)}")
    return found


def _children(pid: int) -> set[int]:
    out = {pid}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) in out:
            out.add(int(stat.parent.name))
    return out


def test_nothing_listens_beyond_loopback(world: WorldInfo, kubectl: Kubectl, namespace: str) -> None:
    labels = {"app": "probe", "modelrollout.io/name": "probe", "modelrollout.io/track": "stable"}
    apply(kubectl, namespace, deployment("probe", 1, labels))  # a model server runs too
    eventually(lambda: len([p for p in pods(kubectl, namespace, "app=probe") if ready(p)]) == 1, 60,
               what="a ready model server")
    run = Layout.default().run
    pids: set[int] = set()
    for pid_file in run.glob("*.pid"):
        pids |= _children(int(pid_file.read_text()))
    addresses = _listening_addresses(pids)
    assert len(addresses) >= 8  # etcd, apiserver, controller-manager, scheduler, kwok, prometheus, ...
    loopback = ("0100007F:", "00000000000000000000000001000000:")  # 127.0.0.1 and ::1 as /proc writes them
    assert [a for a in addresses if not a.startswith(loopback)] == []
