"""The Kubernetes and traffic adapters against the real API server of the e2e world."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from e2e.cluster.layout import REPO
from e2e.fixtures.world import Kubectl, WorldInfo, eventually, get_json
from modelrollout import errors
from modelrollout.adapters.cluster import gpu_pool, kube, manifests, workloads
from modelrollout.adapters.traffic import gateway_api, istio, router_for
from modelrollout.api import labels, routing
from modelrollout.core import decision

pytestmark = pytest.mark.cluster

TEMPLATE = {"spec": {"containers": [{
    "name": "server", "image": "registry.example/modelserver:1.0",
    "ports": [{"name": "http", "containerPort": 8080}],
    "resources": {"limits": {"nvidia.com/gpu": "1"}},
}]}}
POOL = {"nodeSelector": {"modelrollout.io/pool": "l4"}, "resource": "nvidia.com/gpu"}


@pytest.fixture
def client(world: WorldInfo) -> kube.Kube:
    return kube.Kube(kube.load_api_client(str(world.kubeconfig)))


@pytest.fixture
def owner(client: kube.Kube, namespace: str) -> manifests.Owner:
    """A real ModelDeployment to own the objects (the garbage collector removes orphans)."""
    body = yaml.safe_load((REPO / "examples" / "canary-replica-ratio.yaml").read_text())
    body["metadata"] = {"name": "scorer", "namespace": namespace}
    created = client.create(body)
    assert created is not None
    return manifests.Owner("scorer", namespace, created["metadata"]["uid"])


def test_apply_is_idempotent_and_owned_by_one_field_manager(client: kube.Kube, owner: manifests.Owner) -> None:
    body = manifests.deployment(owner, "aaaa111111", {"name": "m", "version": "1"}, TEMPLATE, 1,
                                labels.Track.STABLE, POOL)
    first = client.apply(body)
    second = client.apply(body)
    assert first["metadata"]["generation"] == second["metadata"]["generation"]  # nothing changed
    # The Deployment controller owns status; everything else is written by the operator's one manager.
    managers = {entry["manager"] for entry in second["metadata"]["managedFields"]
                if entry.get("subresource") != "status"}
    assert managers == {kube.FIELD_MANAGER}
    pod = second["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"modelrollout.io/pool": "l4"}
    assert {"name": "MODEL_VERSION", "value": "1"} in pod["containers"][0]["env"]


def test_rejected_objects_raise_a_clear_error(client: kube.Kube, owner: manifests.Owner) -> None:
    body = manifests.deployment(owner, "bbbb222222", {"name": "m", "version": "1"}, TEMPLATE, -1,
                                labels.Track.STABLE, None)
    with pytest.raises(errors.ClusterRejected, match=r"spec\.replicas"):
        client.apply(body)


def test_workloads_observe_ready_pending_and_relabel(
        client: kube.Kube, owner: manifests.Owner, kubectl: Kubectl) -> None:
    adapter = workloads.Workloads(client)
    # 4 pods of 1 GPU on a pool of 3 single-GPU nodes: one stays Pending for capacity.
    adapter.apply(manifests.deployment(owner, "cccc333333", {"name": "m", "version": "1"}, TEMPLATE, 4,
                                       labels.Track.CANARY, POOL))

    def three_ready_one_pending() -> workloads.RevisionPods | None:
        seen = adapter.observe(owner).get("cccc333333")
        return seen if seen and seen.ready == 3 and seen.unschedulable == 1 else None

    seen = eventually(three_ready_one_pending, 60, what="3 ready and 1 unschedulable")
    assert seen.desired == 4
    assert "Insufficient nvidia.com/gpu" in seen.unschedulable_message

    usage = gpu_pool.read(client, {"modelrollout.io/pool": "l4"}, "nvidia.com/gpu")
    assert (usage.nodes, usage.allocatable, usage.requested, usage.free) == (3, 3, 3, 0)

    assert adapter.label_pods(owner, {"cccc333333": labels.Track.STABLE}, serving=["cccc333333"]) == 4
    assert adapter.label_pods(owner, {"cccc333333": labels.Track.STABLE}, serving=["cccc333333"]) == 0
    pods = get_json(kubectl, "pods", "-n", owner.namespace, "-l", f"{labels.REVISION}=cccc333333")["items"]
    assert {p["metadata"]["labels"][labels.TRACK] for p in pods} == {"stable"}
    assert {p["metadata"]["labels"][manifests.SERVING] for p in pods} == {"true"}

    assert adapter.remove_except(owner, keep=[]) == ["cccc333333"]
    eventually(lambda: not adapter.observe(owner), 30, what="the revision removed")


def _traffic(provider: routing.Provider) -> routing.Traffic:
    extra: dict[str, Any] = {}
    if provider is routing.Provider.GATEWAY_API:
        extra = {"gatewayAPI": {"parentRefs": [{"name": "inference-gateway"}]}}
    elif provider is routing.Provider.ISTIO:
        extra = {"istio": {"hosts": ["scorer"]}}
    return routing.Traffic.model_validate({"provider": provider.value, "port": 80, **extra})


@pytest.mark.parametrize("provider", [routing.Provider.GATEWAY_API, routing.Provider.ISTIO])
@pytest.mark.parametrize("split", [
    decision.TrafficSplit("aaaa111111", "bbbb222222", labels.Track.CANARY, 25, 0),
    decision.TrafficSplit("aaaa111111", "bbbb222222", labels.Track.SHADOW, 0, 40),
    decision.TrafficSplit.all_stable("aaaa111111"),
])
def test_routers_write_what_the_api_server_accepts_and_read_it_back(
        client: kube.Kube, owner: manifests.Owner, provider: routing.Provider, split: decision.TrafficSplit) -> None:
    router = router_for(provider, client)
    router.apply(owner, _traffic(provider), split)
    assert router.current(owner) == (split.canary_weight, split.mirror_percent)
    kind = kube.HTTP_ROUTE if provider is routing.Provider.GATEWAY_API else kube.VIRTUAL_SERVICE
    body = client.get(kind, owner.namespace, owner.name)
    assert body is not None and body["metadata"]["ownerReferences"][0]["uid"] == owner.uid


def test_route_builders_name_the_track_services() -> None:
    owner = manifests.Owner("scorer", "ml", "uid")
    split = decision.TrafficSplit("a", "b", labels.Track.CANARY, 10, 0)
    route = gateway_api.route(owner, _traffic(routing.Provider.GATEWAY_API), split)
    assert [(b["name"], b["weight"]) for b in route["spec"]["rules"][0]["backendRefs"]] == [
        ("scorer-stable", 90), ("scorer-canary", 10)]
    shadow = decision.TrafficSplit("a", "b", labels.Track.SHADOW, 0, 100)
    service = istio.virtual_service(owner, _traffic(routing.Provider.ISTIO), shadow)
    http = service["spec"]["http"][0]
    assert http["mirror"]["host"] == "scorer-shadow.ml.svc.cluster.local"
    assert http["mirrorPercentage"] == {"value": 100.0}
    assert [r["weight"] for r in http["route"]] == [100]


def _route_status(generation: int, accepted: str, reason: str, message: str) -> dict[str, Any]:
    """What a Gateway controller writes into an HTTPRoute's status for one parent."""
    condition = {"type": "Accepted", "status": accepted, "reason": reason, "message": message,
                 "observedGeneration": generation, "lastTransitionTime": "2026-11-25T12:00:00Z"}
    return {"parents": [{"parentRef": {"name": "inference-gateway"}, "controllerName": "example.net/gateway",
                         "conditions": [condition]}]}


def test_the_gateway_router_reads_whether_its_route_is_accepted(client: kube.Kube, owner: manifests.Owner) -> None:
    router = router_for(routing.Provider.GATEWAY_API, client)
    router.apply(owner, _traffic(routing.Provider.GATEWAY_API), decision.TrafficSplit.all_stable("aaaa111111"))
    assert router.problem(owner) is None  # no controller has said anything yet
    body = client.get(kube.HTTP_ROUTE, owner.namespace, owner.name)
    assert body is not None
    generation = body["metadata"]["generation"]

    # a controller's status, written through the status subresource as a controller does
    client.merge_patch_status(kube.HTTP_ROUTE, owner.namespace, owner.name,
                              _route_status(generation, "False", "NoMatchingParent", "no Gateway inference-gateway"))
    problem = router.problem(owner)
    assert problem is not None, client.get(kube.HTTP_ROUTE, owner.namespace, owner.name)
    assert "parent inference-gateway: Accepted is False (NoMatchingParent: no Gateway inference-gateway)" in problem

    client.merge_patch_status(kube.HTTP_ROUTE, owner.namespace, owner.name,
                              _route_status(generation - 1, "False", "NoMatchingParent", "old news"))
    assert router.problem(owner) is None  # about an older generation of the route
    client.merge_patch_status(kube.HTTP_ROUTE, owner.namespace, owner.name,
                              _route_status(generation, "True", "Accepted", ""))
    assert router.problem(owner) is None
