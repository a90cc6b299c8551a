"""The README's commands, run word for word against the e2e world, so the README cannot drift.

Every ```bash block that follows the line `<!-- runs in e2e/test_readme.py -->` is run here, in
the README's order, one command at a time in one bash process, as a person would paste them
into one terminal: what one block sets up (`source .e2e/env`, the operator started by
`make run &`) the next one uses. Each command must exit 0. The shell starts with an empty
$HOME and an activated, empty virtualenv (for `pip install ./plugin`); the only settings it is
given are the world's port offset (and E2E_CLUSTER on kind), free ports for the operator's metrics and health
endpoints, so that it does not collide with other processes on this machine, and `REGISTRY`, the
address of a registry (distribution's, built from its Go module) that this test runs on loopback.

What a person would only see is asserted after the commands ran: the rollouts ended as the
comments say, the plugin's answers, the Helm release with the README's values, the operator
image's version, and Argo CD's health check read from the patched argocd-cm.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
import venv
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from e2e.cluster.layout import REPO, Layout
from e2e.cluster.processes import free_port, tail
from e2e.fixtures import images
from e2e.fixtures.operator import OperatorProcess
from e2e.fixtures.world import Kubectl, WorldInfo, get_json

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

README = REPO / "README.md"
MARKER = "<!-- runs in e2e/test_readme.py -->"
NAME = "canary-gateway-api"  # examples/canary-gateway-api.yaml, in the context's namespace
DONE = "__readme_command_done__"


def runnable_blocks(text: str) -> list[list[str]]:
    """The commands of each marked bash block; a line ending in a backslash continues the command."""
    blocks: list[list[str]] = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        assert lines[index + 1].strip() == "```bash", f"README.md:{index + 2}: the marker must precede a ```bash block"
        commands: list[str] = []
        pending = ""
        for body in lines[index + 2:]:
            if body.strip() == "```":
                break
            if body.rstrip().endswith("\\"):
                pending += body.rstrip()[:-1] + " "
                continue
            command = (pending + body).strip()
            pending = ""
            if command and not command.startswith("#"):
                commands.append(command)
        blocks.append(commands)
    return blocks


def timeout_of(command: str) -> float:
    """How long a command may take: the README's own --timeout plus a minute, else two minutes."""
    found = re.search(r"--timeout[= ](\d+)([sm])", command)
    if found:
        return int(found.group(1)) * (60 if found.group(2) == "m" else 1) + 60
    return 600 if command.startswith(("make cluster-up", "pip install")) else 120


@dataclasses.dataclass
class Ran:
    command: str
    output: str


class Shell:
    """One bash process fed one command at a time; its own process group, stopped as a whole."""

    def __init__(self, env: dict[str, str], log: Path, cwd: Path = REPO) -> None:
        self.log = log
        self.log_file = log.open("w")
        self.process = subprocess.Popen(["bash", "--noprofile", "--norc"], stdin=subprocess.PIPE, stdout=self.log_file,
                                        stderr=subprocess.STDOUT, cwd=cwd, env=env, text=True,
                                        start_new_session=True)
        self.offset = 0

    def run(self, command: str) -> Ran:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{command}\necho {DONE} $?\n")
        self.process.stdin.flush()
        deadline = time.monotonic() + timeout_of(command)
        while time.monotonic() < deadline:
            text = self.log.read_text()[self.offset:]
            found = re.search(rf"^{DONE} (\d+)$", text, re.MULTILINE)
            if found:
                self.offset += found.end()
                output = text[:found.start()]
                assert found.group(1) == "0", f"`{command}` exited {found.group(1)}:\n{output[-3000:]}"
                return Ran(command, output)
            if self.process.poll() is not None:
                raise AssertionError(f"the shell exited during `{command}`:\n{text[-3000:]}")
            time.sleep(0.5)
        raise AssertionError(f"`{command}` did not finish within {timeout_of(command):.0f} s:\n"
                             f"{self.log.read_text()[self.offset:][-3000:]}")

    def close(self) -> None:
        """Stops the shell and what it started in the background (the operator of `make run &`)."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=20)
                time.sleep(1)  # the group's other members get the signal too; give them a moment
            except subprocess.TimeoutExpired:
                continue
        self.log_file.close()


@pytest.fixture
def registry(world: WorldInfo, tmp_path: Path) -> Iterator[str]:
    """A registry on loopback (Docker pushes to 127.0.0.0/8 over plain HTTP); its address."""
    address = f"127.0.0.1:{free_port()}"
    config = tmp_path / "registry.yml"
    config.write_text(yaml.safe_dump({"version": 0.1, "log": {"level": "warn"},
                                      "storage": {"filesystem": {"rootdirectory": str(tmp_path / "registry")}},
                                      "http": {"addr": address}}))
    log = (tmp_path / "registry.log").open("w")
    process = subprocess.Popen([str(world.bin / "registry"), "serve", str(config)], stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not registry_tags(address, "none") and time.monotonic() < deadline:
            assert process.poll() is None, f"the registry exited:\n{(tmp_path / 'registry.log').read_text()[-2000:]}"
            time.sleep(0.2)
        yield address
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
        log.close()
        subprocess.run(["docker", "rmi", f"{address}/modelrollout:0.1.0"], capture_output=True)


def registry_tags(address: str, repository: str) -> list[str] | None:
    """The repository's tags ([] for an unknown one); None while the registry does not answer."""
    try:
        with urllib.request.urlopen(f"http://{address}/v2/{repository}/tags/list", timeout=2) as answer:
            return list(json.load(answer).get("tags") or [])
    except urllib.error.HTTPError as error:
        return [] if error.code == 404 else None
    except OSError:
        return None


@pytest.fixture
def shell(world: WorldInfo, tmp_path: Path, registry: str) -> Iterator[Shell]:
    home = tmp_path / "home"
    home.mkdir()
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)  # as an activated virtualenv, for `pip install ./plugin`
    env = {
        "HOME": str(home), "PATH": f"{env_dir / 'bin'}:/usr/local/bin:/usr/bin:/bin", "VIRTUAL_ENV": str(env_dir),
        "LANG": "C.UTF-8", "COLUMNS": "120", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "E2E_PORT_OFFSET": os.environ.get("E2E_PORT_OFFSET", "0"),
        "MODELROLLOUT_METRICS_PORT": str(free_port()), "MODELROLLOUT_HEALTH_PORT": str(free_port()),
        "REGISTRY": registry,
    }
    if os.environ.get("E2E_CLUSTER"):  # on kind, as a person who exported E2E_CLUSTER=kind for make
        env["E2E_CLUSTER"] = os.environ["E2E_CLUSTER"]
    started = Shell(env, tmp_path / "shell.log", checkout_view(tmp_path, env))
    yield started
    started.close()


def checkout_view(tmp_path: Path, env: dict[str, str]) -> Path:
    """Where the README's commands run: the checkout, or, when this test process's world lives
    elsewhere (a parallel worker's), a view of the checkout whose `.e2e` is that world, so that
    `source .e2e/env` reads it word for word."""
    root = Layout.default().root
    if root.resolve() == (REPO / ".e2e").resolve():
        return REPO
    view = tmp_path / "checkout"
    view.mkdir()
    for entry in REPO.iterdir():
        if entry.name != ".e2e":
            (view / entry.name).symlink_to(entry)
    (view / ".e2e").symlink_to(root)
    env["E2E_DIR"] = str(root)
    return view


def outputs(ran: list[Ran], prefix: str) -> list[str]:
    return [r.output for r in ran if r.command.startswith(prefix)]


def test_the_readme_blocks_are_found() -> None:
    blocks = runnable_blocks(README.read_text())
    assert [block[0].split()[:2] for block in blocks] == [
        ["make", "cluster-up"], ["pip", "install"], ["docker", "tag"], ["docker", "run"], ["kubectl", "-n"]]
    assert any("prometheus.url=" in command for command in blocks[2])


def test_the_readme_runs_as_written(world: WorldInfo, kubectl: Kubectl, operator: OperatorProcess,
                                    shell: Shell, registry: str) -> None:
    images.built_by_make()  # what `make images`, which the README names, leaves in Docker
    # The README starts its own operator with `make run`; two would handle the same objects.
    operator.stop()
    # What the README takes as given: Argo CD installed, with its argocd-cm.
    kubectl("create", "namespace", "argocd", check=False)
    kubectl("create", "configmap", "argocd-cm", "-n", "argocd", "--from-literal=url=https://argocd.example",
            check=False)
    kubectl("delete", "mdep", NAME, "-n", "default", "--ignore-not-found", "--wait=true", "--timeout=60s",
            check=False)
    ran: list[Ran] = []
    try:
        for block in runnable_blocks(README.read_text()):
            for command in block:
                ran.append(shell.run(command))
        check_kubectl_path(ran)
        check_plugin(ran, kubectl)
        check_helm_release(kubectl, registry)
        check_image(ran)
        check_argocd(kubectl)
    except AssertionError as failure:
        operator_log = Layout.default().root / "operator.log"
        raise AssertionError(f"{failure}\n--- .e2e/operator.log ---\n{tail(operator_log, 40)}") from None
    finally:
        # While the README's operator still runs, so that it lets the object go (its finalizer).
        kubectl("delete", "mdep", NAME, "-n", "default", "--ignore-not-found", "--wait=true", "--timeout=90s",
                check=False)
        shell.close()
        subprocess.run([str(world.bin / "helm"), f"--kubeconfig={world.kubeconfig}", "uninstall", "modelrollout",
                        "-n", "modelrollout", "--wait"], capture_output=True, timeout=120)
        kubectl("delete", "namespace", "argocd", "modelrollout", "--ignore-not-found", "--wait=false", check=False)
        operator.start()


def check_kubectl_path(ran: list[Ran]) -> None:
    listed = outputs(ran, "kubectl get mdep ")[0]
    assert NAME in listed and "Canary" in listed, listed
    assert outputs(ran, "kubectl get mdep canary-gateway-api -o jsonpath")[0].strip() == "Succeeded"
    assert "condition met" in outputs(ran, "kubectl wait mdep/canary-gateway-api --for=condition=Reconciling=False")[0]


def check_plugin(ran: list[Ran], kubectl: Kubectl) -> None:
    listed = outputs(ran, "kubectl modelrollout list")[0]
    assert re.search(rf"{NAME}\s+Canary\s+Succeeded", listed), listed
    view = next(r.output for r in ran if r.command.split("#")[0].split() == ["kubectl", "modelrollout", "status", NAME])
    assert "1.2.0" in view and "Steps" in view, view
    for verb, answer in [("pause", "accepted: paused until resume"), ("resume", "accepted: resumed"),
                         ("abort", "accepted: all traffic back to revision"), ("retry", "accepted: rolling out"),
                         ("promote", "accepted: skipping to the switch"), ("undo", "accepted: rolling back to")]:
        said = outputs(ran, f"kubectl modelrollout {verb} ")[0]
        assert answer in said, (verb, said)
    waited = outputs(ran, f"kubectl modelrollout status {NAME} --timeout")[0]
    assert waited.strip().splitlines()[-1].split()[1] == "Succeeded", waited
    history = yaml.safe_load(outputs(ran, "kubectl modelrollout history")[0])
    assert [entry["outcome"] for entry in history] == ["Promoted", "Promoted", "Aborted", "Promoted"], history
    assert [entry["model"] for entry in history] == ["1.0.0", "1.1.0", "1.2.0", "1.2.0"], history
    # undo rolls the 1.1.0 revision out again.
    body = get_json(kubectl, "mdep", NAME, "-n", "default")
    assert body["status"]["lastCommand"]["verb"] == "undo" and body["status"]["lastCommand"]["accepted"]


def check_helm_release(kubectl: Kubectl, registry: str) -> None:
    assert registry_tags(registry, "modelrollout") == ["0.1.0"]  # pushed
    deployment = get_json(kubectl, "deployment", "modelrollout", "-n", "modelrollout")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"{registry}/modelrollout:0.1.0"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELROLLOUT_PROMETHEUS_URL"] == "http://prometheus.monitoring:9090"


def check_image(ran: list[Ran]) -> None:
    printed = outputs(ran, "docker run --rm --read-only modelrollout:dev --version")[0]
    assert printed.strip() == f"modelrollout {metadata.version('modelrollout')}", printed


def check_argocd(kubectl: Kubectl) -> None:
    from tests.argocd.test_lua import Sandbox

    data = get_json(kubectl, "configmap", "argocd-cm", "-n", "argocd")["data"]
    assert data["url"] == "https://argocd.example"  # the patch leaves the rest alone
    health_lua = data["resource.customizations.health.modelrollout.io_ModelDeployment"]
    body = get_json(kubectl, "mdep", NAME, "-n", "default")
    health = Sandbox().run(health_lua, json.loads(json.dumps(body)))
    expected = {"Pending": "Progressing", "Progressing": "Progressing", "Promoting": "Progressing",
                "Paused": "Suspended", "Succeeded": "Healthy", "RolledBack": "Degraded", "Degraded": "Degraded"}
    assert health["status"] == expected[body["status"]["phase"]], (health, body["status"])
