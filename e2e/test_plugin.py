"""`kubectl modelrollout` against the real control plane, run through the real kubectl as a user runs it.

What a CI pipeline relies on (`status --timeout` waits for the rollout of the spec it was given and
exits 0, 1 or 2), what kubectl users expect (the kubeconfig context's namespace, `--context`, `-n`,
`list -A`, `-o json|yaml`, `version`), a watch that follows changes, commands that wait for the
operator's answer, one-line errors, and a light install without the operator's dependencies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.cluster import pki
from e2e.cluster.layout import REPO
from e2e.fixtures import given, then, when
from e2e.fixtures.operator import OperatorProcess
from e2e.fixtures.world import Kubectl, WorldInfo

pytestmark = pytest.mark.cluster

PLUGIN_BIN = Path(sys.executable).parent


def plugin(world: WorldInfo, *args: str, kubeconfig: Path | None = None, timeout: float = 120,
           bin_dir: Path = PLUGIN_BIN) -> subprocess.CompletedProcess[str]:
    """`kubectl modelrollout ARGS` with KUBECONFIG set, the plugin found on PATH by kubectl."""
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"),
           "KUBECONFIG": str(kubeconfig or world.kubeconfig), "COLUMNS": "100"}
    return subprocess.run([str(world.bin / "kubectl"), "modelrollout", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def kubeconfig_in(world: WorldInfo, tmp_path: Path, namespace: str) -> Path:
    """The world's kubeconfig with a second context, `ml`, whose namespace is `namespace` (the current one)."""
    config = yaml.safe_load(world.kubeconfig.read_text())
    context = dict(config["contexts"][0]["context"], namespace=namespace)
    config["contexts"].append({"name": "ml", "context": context})
    config["current-context"] = "ml"
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def steps(*wanted: dict[str, Any], rollback: bool = False) -> Any:
    def change(body: dict[str, Any]) -> None:
        body["spec"]["strategy"]["canary"]["steps"] = list(wanted)
        body["spec"]["rollback"] = {"automatic": rollback}
    return change


def test_status_timeout_waits_for_the_new_spec_and_exits_by_the_outcome(
        kubectl: Kubectl, world: WorldInfo, namespace: str, operator: OperatorProcess) -> None:
    name = given.model_deployment(kubectl, namespace, given.example("canary-manual"), rps=60,
                                  change=steps({"setWeight": 50}, {"analyze": {"duration": "20s"}}, rollback=True))
    first = plugin(world, "status", name, "-n", namespace, "--timeout", "2m")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Succeeded" in first.stdout.splitlines()[-1]

    # Right after the change the status still says Succeeded, for the old spec: not an answer.
    when.new_version(kubectl, namespace, name, "1.1.0")
    followed = plugin(world, "status", name, "-n", namespace, "-w", "--timeout", "4m", timeout=300)
    assert followed.returncode == 0, followed.stdout + followed.stderr
    views = followed.stdout.split("---")
    assert len(views) >= 3, followed.stdout  # a view per change the watch reported
    assert any("▶ 2. analyze 20s" in view for view in views), followed.stdout
    assert "Succeeded" in views[-2] and "1.1.0" in views[-2]

    when.new_version(kubectl, namespace, name, "1.2.0", FAULT_ERROR_RATE="0.5")
    failed = plugin(world, "status", name, "-n", namespace, "--timeout", "4m", timeout=300)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "RolledBack" in failed.stdout.splitlines()[-1]
    assert any(line.split()[1] == "Progressing" for line in failed.stdout.splitlines()), failed.stdout


def test_commands_wait_for_the_answer_and_a_paused_rollout_times_out(
        kubectl: Kubectl, world: WorldInfo, namespace: str, operator: OperatorProcess) -> None:
    name = given.model_deployment(kubectl, namespace, given.example("canary-manual"), rps=40,
                                  change=steps({"setWeight": 30}, {"pause": {}}))
    then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)
    refused = plugin(world, "promote", name, "-n", namespace)
    assert refused.returncode == 1 and "refused: no rollout in progress" in refused.stdout, refused

    when.new_version(kubectl, namespace, name, "1.1.0")
    then.phase_becomes(kubectl, namespace, name, "Paused", 120)
    waiting = plugin(world, "status", name, "-n", namespace, "--timeout", "10s")
    assert waiting.returncode == 2, waiting.stdout + waiting.stderr
    assert "timed out after 10s: Paused (AwaitingPromotion)" in waiting.stderr

    paused = plugin(world, "pause", name, "-n", namespace)
    assert paused.returncode == 0 and "pause accepted" in paused.stdout, paused
    resumed = plugin(world, "resume", name, "-n", namespace)
    assert resumed.returncode == 0 and "resume accepted" in resumed.stdout, resumed
    promoted = plugin(world, "promote", name, "-n", namespace, "--full")
    assert promoted.returncode == 0 and "promote-full accepted" in promoted.stdout, promoted
    done = plugin(world, "status", name, "-n", namespace, "--timeout", "2m", "-o", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"]["phase"] == "Succeeded"


def test_the_context_namespace_list_and_output_formats(
        kubectl: Kubectl, world: WorldInfo, namespace: str, operator: OperatorProcess, tmp_path: Path) -> None:
    name = given.model_deployment(kubectl, namespace, given.example("canary-manual"), rps=20)
    then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)
    in_context = kubeconfig_in(world, tmp_path, namespace)

    listed = plugin(world, "list", kubeconfig=in_context)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()[0].split(), listed.stdout.splitlines()[2].split()
    assert header == ["NAME", "STRATEGY", "PHASE", "STEP", "WEIGHT", "STABLE", "CANARY", "MODEL", "AGE"]
    assert row[:5] == [name, "Canary", "Succeeded", "-", "0%"]

    everywhere = plugin(world, "list", "-A", "-o", "json")
    assert everywhere.returncode == 0, everywhere.stderr
    found = {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in json.loads(everywhere.stdout)["items"]}
    assert (namespace, name) in found

    # The context's namespace, then -n and --context overriding it.
    as_yaml = yaml.safe_load(plugin(world, "status", name, "-o", "yaml", kubeconfig=in_context).stdout)
    assert as_yaml["status"]["phase"] == "Succeeded" and as_yaml["metadata"]["namespace"] == namespace
    elsewhere = plugin(world, "status", name, "-n", "default", kubeconfig=in_context)
    assert one_line_error(elsewhere) == f"error: modeldeployment default/{name} not found"
    original_context = yaml.safe_load(world.kubeconfig.read_text())["current-context"]
    via_context = plugin(world, "--context", original_context, "status", name, kubeconfig=in_context)
    assert one_line_error(via_context) == f"error: modeldeployment default/{name} not found"

    history = json.loads(plugin(world, "history", name, "-o", "json", kubeconfig=in_context).stdout)
    assert [entry["outcome"] for entry in history] == ["Promoted"]
    version = plugin(world, "version")
    assert version.returncode == 0 and version.stdout.startswith("kubectl-modelrollout 0.")


def test_errors_are_one_line(kubectl: Kubectl, world: WorldInfo, namespace: str, tmp_path: Path) -> None:
    missing = plugin(world, "list", kubeconfig=tmp_path / "nothing-here")
    assert "no kubeconfig" in one_line_error(missing) and "set KUBECONFIG or pass --kubeconfig" in missing.stderr

    config = yaml.safe_load(world.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    unreachable = tmp_path / "unreachable"
    unreachable.write_text(yaml.safe_dump(config))
    down = one_line_error(plugin(world, "status", "x", kubeconfig=unreachable, timeout=60))
    assert down.startswith("error: the cluster at https://127.0.0.1:1 did not answer") and "refused" in down

    assert one_line_error(plugin(world, "history", "nobody", "-n", namespace)) == (
        f"error: modeldeployment {namespace}/nobody not found")
    assert "context 'nope' is not in" in one_line_error(plugin(world, "--context", "nope", "list"))

    kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    token = kubectl("create", "token", "nobody", "-n", namespace).stdout.strip()
    cluster = yaml.safe_load(world.kubeconfig.read_text())["clusters"][0]["cluster"]
    powerless = pki.write_token_kubeconfig(tmp_path / "powerless", cluster, "nobody", token, namespace)
    forbidden = one_line_error(plugin(world, "list", kubeconfig=powerless))
    assert "403" in forbidden and "forbidden" in forbidden and f"system:serviceaccount:{namespace}:nobody" in forbidden


@pytest.mark.slow
def test_the_plugin_installs_alone_without_the_operator_dependencies(
        world: WorldInfo, namespace: str, tmp_path: Path) -> None:
    """`pip install ./plugin` into a clean virtualenv: no scipy, numpy or kopf, and it works."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    installed = subprocess.run([str(env_dir / "bin" / "pip"), "install", "-q", str(REPO / "plugin")],
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr
    names = subprocess.run([str(env_dir / "bin" / "pip"), "list", "--format=json"], capture_output=True, text=True,
                           check=True).stdout
    packages = {p["name"].lower() for p in json.loads(names)}
    assert "kubectl-modelrollout" in packages and "rich" in packages
    assert not packages & {"scipy", "numpy", "kopf", "prometheus-api-client", "httpx"}, packages
    listed = plugin(world, "list", "-n", namespace, bin_dir=env_dir / "bin")
    assert listed.returncode == 0 and "No ModelDeployments found." in listed.stdout, listed
