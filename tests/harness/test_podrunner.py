"""The pod runner's pure parts: which pods it runs, and the real node's pods it only lists."""

from __future__ import annotations

from typing import Any

from e2e.podrunner.runner import eligible, real_node_endpoints


def pod(name: str, *, real: bool, phase: str = "Running", ip: str | None = "10.88.0.7",
        ready: bool = True) -> dict[str, Any]:
    spec: dict[str, Any] = {"nodeName": "real-0" if real else "a100-0",
                            "containers": [{"name": "server", "ports": [{"name": "http", "containerPort": 8080}]}]}
    if real:
        spec["nodeSelector"] = {"modelrollout.io/pool": "real"}
    status: dict[str, Any] = {"phase": phase, "conditions": [{"type": "Ready", "status": str(ready)}]}
    if ip:
        status["podIP"] = ip
    return {"metadata": {"namespace": "ml", "name": name, "uid": name, "labels": {"modelrollout.io/track": "stable"}},
            "spec": spec, "status": status}


def test_real_node_pods_are_listed_by_pod_ip_and_never_run() -> None:
    pods = {"ml/a": pod("a", real=True), "ml/b": pod("b", real=True, ready=False), "ml/k": pod("k", real=False),
            "ml/p": pod("p", real=True, phase="Pending", ip=None)}
    assert eligible(pods["ml/a"]) is None and eligible(pods["ml/k"]) == ("server", 8080, "model")
    listed = real_node_endpoints(pods)
    assert [(e["name"], e["host"], e["port"], e["ready"]) for e in listed] == [
        ("a", "10.88.0.7", 8080, True), ("b", "10.88.0.7", 8080, False)]
    assert listed[0]["labels"] == {"modelrollout.io/track": "stable"}


def test_on_kind_every_node_is_real_so_every_pod_is_listed() -> None:
    pods = {"ml/a": pod("a", real=True), "ml/k": pod("k", real=False, ip="10.244.2.5")}
    assert [e["name"] for e in real_node_endpoints(pods)] == ["a"]
    assert [(e["name"], e["host"]) for e in real_node_endpoints(pods, every_node=True)] == [
        ("a", "10.88.0.7"), ("k", "10.244.2.5")]
