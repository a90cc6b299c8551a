"""Fenced writes and the Lease against the real API server of the e2e world: a status patch based
on a stale resourceVersion conflicts at once, a closed gate sends nothing, and two replicas
share one coordination.k8s.io Lease."""

from __future__ import annotations

import asyncio
import time

import pytest
import yaml

from e2e.cluster.layout import REPO
from e2e.fixtures.world import WorldInfo
from modelrollout import errors
from modelrollout.adapters.cluster import kube
from modelrollout.runtime import leadership

pytestmark = pytest.mark.cluster


@pytest.fixture
def client(world: WorldInfo) -> kube.Kube:
    return kube.Kube(kube.load_api_client(str(world.kubeconfig)))


@pytest.fixture
def model_deployment(client: kube.Kube, namespace: str) -> kube.Body:
    body = yaml.safe_load((REPO / "examples" / "canary-replica-ratio.yaml").read_text())
    body["metadata"] = {"name": "fenced", "namespace": namespace, "labels": {"modelrollout.io/ignore": "true"}}
    created = client.create(body)
    assert created is not None
    return created


def test_a_status_write_based_on_a_stale_object_conflicts_and_is_not_retried(
        client: kube.Kube, namespace: str, model_deployment: kube.Body) -> None:
    based_on = model_deployment["metadata"]["resourceVersion"]
    written = client.merge_patch_status(kube.MODEL_DEPLOYMENT, namespace, "fenced",
                                        {"phase": "Progressing", "currentStep": 1}, based_on)
    assert written is not None and written["status"]["currentStep"] == 1
    started = time.monotonic()
    with pytest.raises(errors.Conflict, match="409"):  # a second replica deciding on the same old object
        client.merge_patch_status(kube.MODEL_DEPLOYMENT, namespace, "fenced",
                                  {"phase": "Progressing", "currentStep": 0}, based_on)
    assert time.monotonic() - started < 1.0  # no back-off: the caller decides again
    now = client.get(kube.MODEL_DEPLOYMENT, namespace, "fenced")
    assert now is not None and now["status"]["currentStep"] == 1  # the newer status stands


def test_a_closed_gate_stops_every_write_before_it_is_sent(
        world: WorldInfo, namespace: str, model_deployment: kube.Body) -> None:
    def closed() -> None:
        raise errors.NotLeader("not the leader")

    fenced = kube.Kube(kube.load_api_client(str(world.kubeconfig)), gate=closed)
    assert fenced.get(kube.MODEL_DEPLOYMENT, namespace, "fenced") is not None  # reads are not gated
    with pytest.raises(errors.NotLeader):
        fenced.merge_patch_status(kube.MODEL_DEPLOYMENT, namespace, "fenced", {"currentStep": 5})
    with pytest.raises(errors.NotLeader):
        fenced.merge_patch(kube.MODEL_DEPLOYMENT, namespace, "fenced", {"metadata": {"labels": {"x": "y"}}})
    now = fenced.get(kube.MODEL_DEPLOYMENT, namespace, "fenced")
    assert now is not None and now["metadata"]["resourceVersion"] == model_deployment["metadata"]["resourceVersion"]


async def test_two_replicas_share_one_lease_and_a_release_hands_it_over(world: WorldInfo, namespace: str) -> None:
    def replica(identity: str) -> leadership.Leadership:
        client = kube.Kube(kube.load_api_client(str(world.kubeconfig)), retry_delays=(), timeout=2)
        return leadership.Leadership(client, namespace, "modelrollout-leader", identity, leadership.Timing(12, 8, 2))

    a, b = replica("a"), replica("b")
    await a.attempt()
    await b.attempt()
    assert a.may_write() and not b.may_write()
    await a.attempt()  # a renewal from the copy of its last write
    await b.attempt()
    lease = a.kube.get(kube.LEASE, namespace, "modelrollout-leader")
    assert lease is not None and lease["spec"]["holderIdentity"] == "a"
    assert lease["spec"]["leaseDurationSeconds"] == 12 and lease["spec"]["renewTime"].endswith("Z")
    await a.release()
    await asyncio.sleep(0)
    await b.attempt()
    assert b.may_write() and not a.may_write()
    lease = b.kube.get(kube.LEASE, namespace, "modelrollout-leader")
    assert lease is not None and lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] == 1
