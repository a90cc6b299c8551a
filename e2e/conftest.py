"""Fixtures of the e2e suite: the world (started if needed), a fresh namespace, kubectl, polling.

The suite needs only `.e2e/env`: the local world writes it, and so does the kind provider.
If no world is up, the session starts the local one and stops it at the end; a world that was
already up (`make cluster-up`) is reused and left running.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from e2e.cluster import world as local_world
from e2e.cluster.layout import REPO, Layout

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class WorldInfo:
    kubeconfig: Path
    bin: Path
    prometheus_url: str
    env: dict[str, str]
    local: local_world.World | None  # None on kind

    def kubectl_argv(self, *args: str) -> list[str]:
        return [str(self.bin / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args]


def eventually(check: Callable[[], T | None], timeout: float, interval: float = 0.5, what: str = "") -> T:
    """Polls `check` until it returns something truthy, or fails with the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    error: Exception | None = None
    while True:
        try:
            last = check()
            error = None
            if last:
                return last
        except AssertionError as caught:
            error = caught
        if time.monotonic() >= deadline:
            detail = f"; last error: {error}" if error else f"; last value: {last!r}"
            raise AssertionError(f"not within {timeout:.0f} s: {what or check}{detail}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def world() -> Iterator[WorldInfo]:
    layout = Layout.default()
    provider = os.environ.get("E2E_CLUSTER", "local")
    started_here = False
    local: local_world.World | None = None
    if provider == "local":
        local = local_world.World(layout)
        if not local.healthy():
            local.up()
            started_here = True
    env = local_world.read_env(layout)
    if not env.get("KUBECONFIG"):
        pytest.fail(f"{layout.env_file} is missing: run `make cluster-up` (E2E_CLUSTER={provider})")
    info = WorldInfo(
        kubeconfig=Path(env["KUBECONFIG"]), bin=Path(env["E2E_BIN"]),
        prometheus_url=env["PROMETHEUS_URL"], env=env, local=local,
    )
    # The CRD may have changed since the world started: apply the current one.
    crd = REPO / "crds" / "modeldeployments.yaml"
    if crd.exists():
        subprocess.run(info.kubectl_argv("apply", "--server-side", "--force-conflicts", "-f", str(crd)),
                       check=True, capture_output=True, text=True)
        subprocess.run(info.kubectl_argv("wait", "--for=condition=Established", "--timeout=60s",
                                         "crd/modeldeployments.modelrollout.io"), check=True, capture_output=True)
    yield info
    if started_here and local is not None and not os.environ.get("E2E_KEEP_WORLD"):
        local.down()


Kubectl = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture(scope="session")
def kubectl(world: WorldInfo) -> Kubectl:
    def run(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(world.kubectl_argv(*args), input=input, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    return run


@pytest.fixture
def namespace(kubectl: Kubectl, request: pytest.FixtureRequest) -> Iterator[str]:
    base = request.node.name.lower().replace("_", "-").replace("[", "-").replace("]", "")[:40].strip("-")
    name = f"{base}-{uuid.uuid4().hex[:5]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def get_json(kubectl: Kubectl, *args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


@dataclasses.dataclass(frozen=True)
class Prometheus:
    url: str

    def query(self, promql: str) -> list[dict[str, Any]]:
        params = urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{params}", timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def scalar(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None


@pytest.fixture(scope="session")
def prometheus(world: WorldInfo) -> Prometheus:
    return Prometheus(world.prometheus_url)
