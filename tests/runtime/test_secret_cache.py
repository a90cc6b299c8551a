"""Secrets that ModelDeployments name, read from the real API server of the e2e world: kept for a
while (one GET, not one per tick), read again after KEPT_FOR, never kept while missing, and read
again at once when a kept Secret lacks the key asked for."""

from __future__ import annotations

import base64
import json

import pytest

from e2e.fixtures.world import Kubectl, WorldInfo
from modelrollout import errors
from modelrollout.adapters.cluster import kube
from modelrollout.runtime import secrets

pytestmark = pytest.mark.cluster


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(world: WorldInfo) -> tuple[kube.Kube, list[str]]:
    gets: list[str] = []
    made = kube.Kube(kube.load_api_client(str(world.kubeconfig)))
    made.observe = lambda verb, resource, code: gets.append(f"{verb} {resource} {code}")
    return made, gets


def write_secret(kubectl: Kubectl, namespace: str, **data: str) -> None:
    """As a user would (the operator writes no Secret)."""
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "prom", "namespace": namespace},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}
    kubectl("apply", "-f", "-", input=json.dumps(body))


def test_a_found_secret_is_read_once_per_period_and_a_missing_one_every_time(
        client: tuple[kube.Kube, list[str]], kubectl: Kubectl, namespace: str) -> None:
    api, gets = client
    clock = Clock()
    cache = secrets.SecretCache(clock=clock)
    field = "spec.analysis.prometheus.basicAuthSecret"

    for _ in range(2):
        with pytest.raises(errors.SpecError, match=f"{field}: Secret {namespace}/prom with key 'password' not found"):
            secrets.value(cache, api, namespace, "prom", "password", field)
    assert len(gets) == 2  # a missing Secret is asked for at every tick

    write_secret(kubectl, namespace, username="reader", password="first")
    gets.clear()
    assert [secrets.value(cache, api, namespace, "prom", key, field) for key in ("username", "password")] \
        == ["reader", "first"]
    clock.now += secrets.KEPT_FOR - 1
    assert secrets.value(cache, api, namespace, "prom", "password", field) == "first"
    assert len(gets) == 1, gets  # one GET for two keys and a second tick

    write_secret(kubectl, namespace, username="reader", password="rotated")
    gets.clear()
    clock.now += 2
    assert secrets.value(cache, api, namespace, "prom", "password", field) == "rotated"
    assert len(gets) == 1, gets


def test_a_key_missing_from_a_kept_secret_is_looked_for_again_at_once(
        client: tuple[kube.Kube, list[str]], kubectl: Kubectl, namespace: str) -> None:
    api, _ = client
    cache = secrets.SecretCache(clock=Clock())
    write_secret(kubectl, namespace, username="reader")
    assert secrets.value(cache, api, namespace, "prom", "username", "f") == "reader"
    write_secret(kubectl, namespace, username="reader", password="added")
    assert secrets.value(cache, api, namespace, "prom", "password", "f") == "added"
