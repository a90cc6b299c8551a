"""A refused connection is told in a few words, without urllib3's object reprs or a traceback."""

from __future__ import annotations

import socket

import pytest
import urllib3

from modelrollout import errors
from modelrollout.adapters.cluster import kube


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_refused_connection_is_one_short_line() -> None:
    with pytest.raises(urllib3.exceptions.MaxRetryError) as caught:
        urllib3.PoolManager(retries=urllib3.Retry(0)).request("GET", f"http://127.0.0.1:{closed_port()}/")
    text = kube.connection_failure(caught.value)
    assert "Connection refused" in text and "object at 0x" not in text and "\n" not in text


def test_the_client_raises_cluster_unavailable_for_an_unreachable_server() -> None:
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = f"https://127.0.0.1:{closed_port()}"
    unreachable = kube.Kube(client.ApiClient(configuration), retry_delays=(), timeout=5)
    with pytest.raises(errors.ClusterUnavailable, match=r"GET /api/v1/namespaces/x/pods/y: .*Connection refused"):
        unreachable.get(kube.POD, "x", "y")
