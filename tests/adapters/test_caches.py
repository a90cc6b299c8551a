"""The watch-backed caches: reflector bookkeeping, projections, wake-ups, pool usage, write skips, slots."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from modelrollout.adapters import telemetry
from modelrollout.adapters.cluster import caches, gpu_pool, kube, reflector
from modelrollout.api import labels
from modelrollout.runtime import slots

Body = dict[str, Any]


class FakeSource:
    """Pages of a LIST and scripted WATCH streams; records every call."""

    def __init__(self, items: list[Body] | None = None, version: str = "10") -> None:
        self.items = items or []
        self.version = version
        self.streams: list[list[tuple[str, Body]]] = []
        self.calls: list[tuple[str, str, str]] = []

    def list_chunk(self, kind: kube.Kind, namespace: str | None, selector: str = "", fields: str = "",
                   limit: int = 500, token: str = "") -> kube.Page:
        self.calls.append(("LIST", kind.plural, token))
        start = int(token or 0)
        page = self.items[start:start + limit]
        more = str(start + limit) if start + limit < len(self.items) else ""
        return page, self.version, more

    def watch(self, kind: kube.Kind, namespace: str | None, resource_version: str, selector: str = "",
              fields: str = "", timeout_s: int = 300) -> Iterator[tuple[str, Body]]:
        self.calls.append(("WATCH", kind.plural, resource_version))
        yield from (self.streams.pop(0) if self.streams else [])


def pod(name: str, md: str = "scorer", ready: bool = True, rv: str = "1", revision: str = "aaa",
        node: str | None = "gpu-0", gpus: int = 0, namespace: str = "ml", probed: str = "t0") -> Body:
    resources = {"limits": {"nvidia.com/gpu": str(gpus)}} if gpus else {}
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "resourceVersion": rv,
                     "labels": {labels.NAME: md, labels.REVISION: revision}, "annotations": {"big": "x" * 100}},
        "spec": {"nodeName": node, "containers": [{"name": "server", "resources": resources,
                                                   "ports": [{"name": "http", "containerPort": 8080}]}]},
        "status": {"phase": "Running", "podIP": "10.0.0.1", "conditions": [
            {"type": "Ready", "status": "True" if ready else "False", "lastProbeTime": probed}],
            "containerStatuses": [{"restartCount": 0, "image": "x"}]},
    }


def node(name: str, pool: str = "a100", gpus: int = 8, ready: bool = True) -> Body:
    return {"metadata": {"name": name, "uid": f"uid-{name}", "labels": {"modelrollout.io/pool": pool}},
            "spec": {}, "status": {"allocatable": {"nvidia.com/gpu": str(gpus), "cpu": "8"},
                                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_a_relist_replaces_the_map_and_reports_objects_deleted_meanwhile() -> None:
    source = FakeSource([pod("a"), pod("b")])
    changes: list[tuple[Any, Any]] = []
    watched = reflector.Reflector(source, kube.POD, caches.trim_pod, key=caches.owner_key,
                                  on_change=lambda old, new: changes.append((old, new)))
    watched.relist()
    assert len(watched) == 2 and watched.synced.is_set() and len(changes) == 2
    source.items = [pod("b")]  # "a" went while the watch was down: no ghost
    changes.clear()
    watched.relist()
    assert [p["metadata"]["name"] for p in watched.get(("ml", "scorer"))] == ["b"]
    assert len(changes) == 1 and changes[0][0]["metadata"]["name"] == "a" and changes[0][1] is None


def test_lists_are_read_in_pages() -> None:
    source = FakeSource([pod(f"p{i}") for i in range(1200)])
    watched = reflector.Reflector(source, kube.POD, caches.trim_pod)
    watched.relist()
    assert len(watched) == 1200
    assert [c[2] for c in source.calls] == ["", "500", "1000"]


def test_watch_events_update_the_map_and_a_410_relists() -> None:
    source = FakeSource([pod("a")])
    watched = reflector.Reflector(source, kube.POD, caches.trim_pod, key=caches.owner_key)
    watched.relist()
    source.streams = [[("ADDED", pod("b", rv="11")), ("MODIFIED", pod("a", ready=False, rv="12")),
                       ("BOOKMARK", {"metadata": {"resourceVersion": "15"}})],
                      [("DELETED", pod("b", rv="16"))],
                      [("ERROR", {"code": 410, "message": "too old"})]]
    watched.watch_once()
    assert {p["metadata"]["name"] for p in watched.items()} == {"a", "b"}
    watched.watch_once()
    assert source.calls[-1] == ("WATCH", "pods", "15")  # resumed from the bookmark, no LIST
    assert [p["metadata"]["name"] for p in watched.items()] == ["a"]
    with pytest.raises(reflector.Gone):
        watched.watch_once()


def test_only_a_changed_projection_is_reported() -> None:
    changes: list[Any] = []
    watched = reflector.Reflector(FakeSource(), kube.POD, caches.trim_pod, on_change=lambda o, n: changes.append(n))
    watched.put("uid-a", caches.trim_pod(pod("a", probed="t0")))
    watched.put("uid-a", caches.trim_pod(pod("a", probed="t1", rv="2")))  # a probe time: nothing we read
    watched.put("uid-a", caches.trim_pod(pod("a", ready=False, rv="3")))
    assert len(changes) == 2


def test_the_pod_projection_keeps_what_workloads_read_and_drops_the_rest() -> None:
    trimmed = caches.trim_pod(pod("a"), address_annotation="e2e/address")
    assert trimmed["metadata"]["annotations"] == {}
    assert trimmed["status"]["conditions"] == [{"type": "Ready", "status": "True"}]
    assert trimmed["status"]["containerStatuses"] == [{"restartCount": 0}]
    assert "resources" not in trimmed["spec"]["containers"][0]


def test_a_change_to_our_pods_or_deployments_wakes_the_owner() -> None:
    woken: list[tuple[str, str]] = []
    cache = caches.ClusterCache(FakeSource(), wake=lambda ns, name: woken.append((ns, name)))
    cache.pods[0].put("uid-a", caches.trim_pod(pod("a", md="scorer")))
    cache.deployments[0].put("uid-d", caches.trim_owned(
        {"kind": "Deployment", "metadata": {"name": "x", "namespace": "ml", "labels": {labels.NAME: "ranker"}},
         "spec": {"replicas": 2}}))
    cache.services[0].put("uid-s", caches.trim_owned(
        {"kind": "Service", "metadata": {"name": "s", "namespace": "ml", "labels": {labels.NAME: "ranker"}}}))
    cache.pods[0].put("uid-a", None)
    assert woken == [("ml", "scorer"), ("ml", "ranker"), ("ml", "scorer")]
    assert cache.owned(kube.DEPLOYMENT, "ml", "ranker")[0]["spec"] == {"replicas": 2}
    assert cache.owned(kube.POD, "ml", "scorer") == []


def test_pool_usage_from_the_ledger_equals_the_listed_computation_and_is_cached_per_change() -> None:
    nodes = [node("gpu-0"), node("gpu-1"), node("gpu-2", ready=False), node("cpu-0", pool="cpu")]
    pods = [pod("a", gpus=2), pod("b", md="other", node="gpu-1", gpus=3), pod("c", node="cpu-0", gpus=1),
            pod("d", gpus=0), pod("e", node="gpu-2", gpus=4)]
    cache = caches.ClusterCache(FakeSource())
    nodes_r, bound_r = cache._pool_reflectors()
    nodes_r.stop(), bound_r.stop()
    nodes_r.replace({n["metadata"]["uid"]: caches.trim_node(n) for n in nodes})
    bound_r.replace({p["metadata"]["uid"]: t for p in pods if (t := caches.trim_bound_pod(p)) is not None})
    nodes_r.synced.set(), bound_r.synced.set()
    selector, ours = {"modelrollout.io/pool": "a100"}, {labels.NAME: "scorer"}
    pool = [n for n in nodes if n["metadata"]["labels"]["modelrollout.io/pool"] == "a100"]
    expected = gpu_pool.usage(pool, pods, "nvidia.com/gpu", ours)
    assert cache.pool_usage(selector, "nvidia.com/gpu", ours) == expected
    assert expected == gpu_pool.PoolUsage(nodes=2, allocatable=16, requested=5, held=2)
    assert len(bound_r) == 4  # the pod asking for no GPU is not kept
    first = cache.pool_usage(selector, "nvidia.com/gpu", ours)
    assert cache.pool_usage(selector, "nvidia.com/gpu", ours) is first  # no change: computed once
    bound_r.put("uid-f", caches.trim_bound_pod(pod("f", node="gpu-0", gpus=1)))
    after = cache.pool_usage(selector, "nvidia.com/gpu", ours)
    assert after is not None and after.requested == 6


def test_an_apply_whose_body_the_cache_already_holds_is_skipped() -> None:
    body = {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "scorer-aaa", "namespace": "ml", "labels": {labels.NAME: "scorer"}},
            "spec": {"replicas": 2, "template": {}}}
    held = caches.trim_owned({**body, "metadata": {**body["metadata"],
                                                   "annotations": {kube.INTENT: kube.intent_of(body)}}})
    assert kube.unchanged(body, held)
    assert not kube.unchanged({**body, "spec": {"replicas": 3, "template": {}}}, held)   # we want another size
    assert not kube.unchanged(body, {**held, "spec": {"replicas": 5}})                  # someone scaled it
    assert not kube.unchanged(body, None)
    assert kube.intent_of(body) == kube.intent_of(dict(reversed(list(body.items()))))

    class Refusing(kube.Kube):
        def _request(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("no request for an unchanged body")

    client = Refusing(api_client=None)  # type: ignore[arg-type]
    client.known = lambda _: held
    client.apply(body)
    assert client.skipped == 1


def test_slots_are_keyed_by_uid_so_a_recreated_object_starts_clean() -> None:
    registry = slots.Slots()
    first = registry.get("uid-1", "ml", "scorer")
    first.seen = (3, None)
    assert registry.get("uid-1", "ml", "scorer") is first
    again = registry.get("uid-2", "ml", "scorer")  # deleted and created under the same name
    assert again is not first and again.seen is None and again.asked.analysis is None
    assert len(registry) == 1
    assert registry.forget("uid-2") is again and len(registry) == 0


def test_a_wake_by_name_sets_the_slot_event_from_another_thread() -> None:
    async def scenario() -> bool:
        registry = slots.Slots()
        slot = registry.get("uid-1", "ml", "scorer")
        slot.loop = asyncio.get_running_loop()
        await asyncio.to_thread(registry.wake, "ml", "scorer")
        await asyncio.to_thread(registry.wake, "ml", "unknown")
        await asyncio.wait_for(slot.wakeup.wait(), 1)
        return slot.wakeup.is_set()

    assert asyncio.run(scenario())


def test_a_slot_reads_its_own_write_until_the_watch_brings_it_back() -> None:
    slot = slots.Slot("uid-1", "ml", "scorer")
    live = {"metadata": {"resourceVersion": "10"}, "spec": {"x": 1}, "status": {"currentStep": 1}}
    # A status PATCH answers the whole object: the newest state known, with its resourceVersion,
    # which the next status write is fenced by.
    slot.written = {"metadata": {"resourceVersion": "12"}, "spec": {"x": 1}, "status": {"currentStep": 2}}
    assert slot.freshest(live)["status"] == {"currentStep": 2}
    assert slot.freshest(live)["spec"] == {"x": 1}
    assert slot.freshest(live)["metadata"]["resourceVersion"] == "12"
    caught_up = {"metadata": {"resourceVersion": "12"}, "status": {"currentStep": 2}}
    assert slot.freshest(caught_up) is caught_up and slot.written is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_bucket_lets_a_burst_through_then_paces_at_qps_and_pauses_on_demand() -> None:
    clock = FakeClock()
    bucket = kube.Bucket(qps=20, burst=30, clock=lambda: clock.now, sleep=clock.sleep)
    assert sum(bucket.acquire() for _ in range(30)) == 0
    waited = sum(bucket.acquire() for _ in range(20))
    assert waited == pytest.approx(1.0)
    bucket.pause(5)
    assert bucket.acquire() == pytest.approx(5.0, abs=0.06)


@pytest.mark.parametrize(("method", "path", "verb", "resource"), [
    ("GET", "/api/v1/namespaces/ml/pods", "LIST", "pods"),
    ("GET", "/api/v1/pods?fieldSelector=x", "LIST", "pods"),
    ("GET", "/api/v1/nodes/n1", "GET", "nodes"),
    ("PATCH", "/apis/apps/v1/namespaces/ml/deployments/d", "PATCH", "deployments"),
    ("PATCH", "/apis/modelrollout.io/v1alpha1/namespaces/ml/modeldeployments/x/status", "PATCH",
     "modeldeployments/status"),
])
def test_requests_are_named_as_the_api_server_names_them(method: str, path: str, verb: str, resource: str) -> None:
    assert (kube.verb_of(method, path), kube.resource_of(path)) == (verb, resource)


class Answer:
    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.status, self.headers, self.data = status, headers or {}, b"{}"

    def read(self) -> None:
        pass


class ScriptedApiClient:
    def __init__(self, answers: list[Answer]) -> None:
        self.answers = answers

    def param_serialize(self, **kwargs: Any) -> tuple[Any, ...]:
        return (kwargs["method"], kwargs["resource_path"])

    def call_api(self, *args: Any, **kwargs: Any) -> Answer:
        return self.answers.pop(0)


def test_a_429_is_retried_after_its_retry_after_and_every_request_is_counted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("modelrollout.adapters.cluster.kube.time.sleep", slept.append)
    client = kube.Kube(ScriptedApiClient([Answer(429, {"Retry-After": "2"}), Answer(200)]))  # type: ignore[arg-type]
    seen: list[tuple[str, str, str]] = []
    client.observe = lambda *labels: seen.append(labels)
    client.get(kube.NODE, None, "n1")
    assert 2.0 <= slept[0] <= 3.0
    assert seen == [("GET", "nodes", "429"), ("GET", "nodes", "200")]


def test_the_ticked_gauge_counts_live_objects_that_ticked_once_since_the_start() -> None:
    def gauge() -> float | None:
        return telemetry.REGISTRY.get_sample_value("modelrollout_objects_ticked")

    registry = slots.Slots()
    first, second = registry.get("uid-1", "ml", "a"), registry.get("uid-2", "ml", "b")
    registry.mark_ticked(first)
    registry.mark_ticked(first)  # a later tick of the same object counts nothing more
    assert gauge() == 1
    registry.mark_ticked(second)
    assert gauge() == 2
    registry.get("uid-3", "ml", "b")  # b deleted and created again: the new one has not ticked
    assert gauge() == 1
    registry.forget("uid-1")
    assert gauge() == 0
    registry.mark_ticked(first)  # a daemon finishing its tick after its object was deleted
    assert gauge() == 0
