"""workloads.summarize: a revision's pods in counts and the kubelet's words (plain dicts)."""

from __future__ import annotations

from typing import Any

from modelrollout.adapters.cluster import caches, workloads
from modelrollout.api import labels


def deployment(revision: str, replicas: int) -> dict[str, Any]:
    return {"metadata": {"labels": {labels.REVISION: revision}}, "spec": {"replicas": replicas}}


def pod(revision: str, ready: bool, *statuses: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"labels": {labels.REVISION: revision}},
            "status": {"phase": "Running" if ready else "Pending",
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "containerStatuses": list(statuses)}}


def waiting(reason: str, message: str = "", restarts: int = 0) -> dict[str, Any]:
    return {"name": "server", "restartCount": restarts, "state": {"waiting": {"reason": reason, "message": message}}}


def test_the_kubelets_reason_a_container_waits_is_kept_and_starting_is_not_a_reason() -> None:
    never = 'Container image "modelserver:absent" is not present with pull policy of Never'
    counted = workloads.summarize([deployment("a", 3)], [
        pod("a", False, waiting("ContainerCreating")),
        pod("a", False, waiting("ErrImageNeverPull", never)),
        pod("a", True, {"name": "server", "restartCount": 0, "state": {"running": {}}}),
    ])["a"]
    assert (counted.desired, counted.ready, counted.crash_looping) == (3, 1, 0)
    assert counted.waiting_message == f"ErrImageNeverPull: {never}"


def test_a_crash_loop_is_counted_with_its_back_off_and_cut_short() -> None:
    back_off = "back-off 40s restarting failed container=server pod=model-abc_ns(" + "x" * 200 + ")"
    looping = pod("b", False, waiting("CrashLoopBackOff", back_off, 3))
    counted = workloads.summarize([deployment("b", 1)], [looping])["b"]
    assert (counted.crash_looping, counted.restarts) == (1, 3)
    assert counted.waiting_message.startswith("CrashLoopBackOff: back-off 40s") and len(counted.waiting_message) == 160


def test_ready_or_starting_pods_leave_no_message() -> None:
    counted = workloads.summarize([deployment("c", 2)], [
        pod("c", False, waiting("PodInitializing")), pod("c", True, waiting("CrashLoopBackOff", "old"))])["c"]
    assert counted.waiting_message == ""


def test_the_pod_cache_keeps_what_the_count_reads() -> None:
    never = 'Container image "modelserver:absent" is not present with pull policy of Never'
    full = pod("d", False, waiting("ErrImageNeverPull", never, 0))
    full["spec"] = {"nodeName": "n1", "containers": [{"name": "server", "image": "modelserver:absent"}]}
    counted = workloads.summarize([deployment("d", 1)], [caches.trim_pod(full)])["d"]
    assert counted.waiting_message == f"ErrImageNeverPull: {never}"
    assert "image" not in caches.trim_pod(full)["spec"]["containers"][0]
