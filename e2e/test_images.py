"""The images `make images` builds, run as a cluster would run them: the operator's prints its
version as a non-root user on a read-only root filesystem, and the model server's answers
/healthz on a published loopback port.

It needs a Docker engine. Where none answers it skips and says why, except when
E2E_REQUIRE_DOCKER=1 (.ci/run sets it, after `make system` started one): CI must not pass
without having built the images. Cached images make it take seconds; a cold build takes minutes
(the base's debootstrap, the wheels, two image builds). Every container it starts is removed.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

import modelrollout
from e2e.cluster.processes import free_port
from e2e.fixtures import images as images_fixture

OPERATOR = "modelrollout:dev"
MODELSERVER = "modelrollout-modelserver:dev"
NON_ROOT = "65532"


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def images() -> None:
    """Both images, built (or found cached) by `make images` as a user builds them."""
    print(f"make images: {images_fixture.built_by_make():.1f} s")


@pytest.fixture
def container_name() -> Iterator[str]:
    """A name for one container, removed afterwards whatever happened to it."""
    name = f"modelrollout-test-{uuid.uuid4().hex[:8]}"
    yield name
    docker("rm", "-f", name)


def test_the_operator_image_prints_its_version_as_non_root_on_a_read_only_root(images: None,
                                                                               container_name: str) -> None:
    ran = docker("run", "--rm", "--name", container_name, "--read-only", "--user", NON_ROOT, OPERATOR, "--version")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == f"modelrollout {modelrollout.__version__}\n"


def test_the_operator_image_runs_as_non_root_without_a_shell(images: None, container_name: str) -> None:
    config = json.loads(docker("image", "inspect", OPERATOR).stdout)[0]["Config"]
    assert config["User"] == f"{NON_ROOT}:{NON_ROOT}"
    assert config["Entrypoint"] == ["python", "-m", "modelrollout"]  # exec form: no /bin/sh
    # `python` is the venv's, also for the chart, whose `command` replaces the entrypoint.
    assert next(e for e in config["Env"] if e.startswith("PATH=")).startswith("PATH=/opt/venv/bin:")
    # Without --user: the image's own user, as a pod without runAsUser gets it.
    probe = "import getpass, os; print(os.getuid(), getpass.getuser())"
    ran = docker("run", "--rm", "--name", container_name, "--read-only", "--entrypoint", "python", OPERATOR,
                 "-c", probe)
    assert ran.returncode == 0, ran.stderr
    # getpass names the user: kopf's peering identity needs it.
    assert ran.stdout.split() == [NON_ROOT, "nonroot"]


def test_the_model_server_image_answers_healthz(images: None, container_name: str) -> None:
    port = free_port()
    ran = docker("run", "--detach", "--name", container_name, "--read-only", "--user", NON_ROOT,
                 "--publish", f"127.0.0.1:{port}:8080", MODELSERVER)
    assert ran.returncode == 0, ran.stderr
    deadline = time.monotonic() + 60
    answer: httpx.Response | None = None
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            break
        except httpx.TransportError:
            time.sleep(0.2)
    assert answer is not None, f"no answer on port {port}:\n{docker('logs', container_name).stderr[-2000:]}"
    assert answer.status_code == 200 and answer.json() == {"ready": True}, answer.text
