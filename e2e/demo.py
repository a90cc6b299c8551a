"""`make demo`: the local world, the operator, and two rollouts watched live.

1. brings the e2e world up (building what is missing; kind instead where E2E_CLUSTER=kind);
2. starts the operator from source in the background (stopped by `make cluster-down`);
3. deploys a canary ModelDeployment with 100 requests per second of traffic;
4. rolls out a healthy version and shows it live until it is promoted;
5. rolls out a faulty one (30 % errors) and shows it live until it is rolled back by itself;
6. says how to look around.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any

import yaml

from e2e.cluster import world
from e2e.cluster.layout import REPO, Layout
from e2e.cluster.processes import Component, free_port
from e2e.fixtures import given
from modelrollout.api import resources
from modelrollout.kubectl_plugin import render

NAMESPACE = "demo"
NAME = "fraud-scorer"
STEPS = [{"setWeight": 10}, {"analyze": {"duration": "45s"}}, {"setWeight": 50}, {"analyze": {"duration": "30s"}}]


def kubectl(env: dict[str, str], *args: str, input: str | None = None) -> str:
    result = subprocess.run([f"{env['E2E_BIN']}/kubectl", f"--kubeconfig={env['KUBECONFIG']}", *args],
                            input=input, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def start_operator(local: world.World, env: dict[str, str]) -> None:
    if local.supervisor.pid_of("operator") is not None:
        return
    settings = {
        "KUBECONFIG": env["KUBECONFIG"], "PYTHONPATH": str(REPO / "operator"),
        "MODELROLLOUT_PROMETHEUS_URL": env["PROMETHEUS_URL"],
        "MODELROLLOUT_POD_ADDRESS_ANNOTATION": "e2e.modelrollout.io/address",
        "MODELROLLOUT_LISTEN_HOST": "127.0.0.1",
        "MODELROLLOUT_METRICS_PORT": str(free_port()), "MODELROLLOUT_HEALTH_PORT": str(free_port()),
    }
    local.supervisor.start(Component("operator", [sys.executable, "-m", "modelrollout"], env=settings, cwd=REPO))


def model_deployment() -> dict[str, Any]:
    body = given.example("canary-gateway-api")
    body["metadata"] = {"name": NAME, "namespace": NAMESPACE, "annotations": {"e2e.modelrollout.io/rps": "100"}}
    body["spec"]["strategy"]["canary"]["steps"] = STEPS
    body["spec"]["analysis"]["metrics"] = [
        {"name": "error-rate", "slo": {"max": 0.05}, "compare": {"tolerance": 0.1}},
        {"name": "p99-latency", "slo": {"max": 0.5}, "compare": {"tolerance": 0.2}},
    ]
    return body


def watch(env: dict[str, str], until: str, revision_changes_from: str | None, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = json.loads(kubectl(env, "get", "mdep", NAME, "-n", NAMESPACE, "-o", "json"))
        md = resources.ModelDeployment.model_validate(body)
        view = render.text_of(render.status_view(md, datetime.datetime.now(datetime.UTC)),
                              shutil.get_terminal_size().columns)
        if sys.stdout.isatty():
            sys.stdout.write("\x1b[H\x1b[2J")
        print(view, flush=True)
        status = body.get("status") or {}
        history = status.get("history") or []
        finished = history and history[-1].get("revision") != revision_changes_from
        if status.get("phase") == until and (revision_changes_from is None or finished):
            return status
        time.sleep(2)
    raise SystemExit(f"the rollout did not reach {until} within {timeout:.0f} s")


def roll(env: dict[str, str], version: str, **faults: str) -> None:
    body = json.loads(kubectl(env, "get", "mdep", NAME, "-n", NAMESPACE, "-o", "json"))
    body["spec"]["model"]["version"] = version
    body = given.set_env(body, **faults) if faults else body
    body.pop("status", None)
    kubectl(env, "replace", "-f", "-", input=yaml.safe_dump(body))


def main() -> int:
    if os.environ.get("E2E_CLUSTER", "local") != "local":
        subprocess.run([sys.executable, "-m", "e2e.cluster", "up"], check=True, cwd=REPO)
    local = world.World(Layout.default())
    local.up()
    env = world.read_env(local.layout)
    start_operator(local, env)
    kubectl(env, "apply", "-f", "-", input=yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace",
                                                           "metadata": {"name": NAMESPACE}}))
    kubectl(env, "apply", "-f", "-", input=yaml.safe_dump(model_deployment()))
    print("deploying the first version ...", flush=True)
    first = watch(env, "Succeeded", None, timeout=180)

    print("\nrolling out a healthy version 1.1.0 ...", flush=True)
    time.sleep(2)
    roll(env, "1.1.0")
    promoted = watch(env, "Succeeded", first.get("stableRevision"))

    print("\nrolling out a faulty version 1.2.0 (30 % of its answers fail) ...", flush=True)
    time.sleep(2)
    roll(env, "1.2.0", FAULT_ERROR_RATE="0.3")
    rolled_back = watch(env, "RolledBack", promoted.get("stableRevision"))

    print(f"""
Done: 1.1.0 was promoted, 1.2.0 was rolled back by itself ({rolled_back['history'][-1]['reason'][:120]}).

Look around:
  source .e2e/env                 # KUBECONFIG and PROMETHEUS_URL; kubectl and helm on PATH
  export PATH=$PWD/.venv/bin:$PATH  # kubectl-modelrollout
  kubectl get mdep -n {NAMESPACE}
  kubectl modelrollout status {NAME} -n {NAMESPACE}
  kubectl modelrollout history {NAME} -n {NAMESPACE}
  kubectl get events -n {NAMESPACE} --sort-by=.lastTimestamp
  open $PROMETHEUS_URL (model_requests_total by revision)
  logs: .e2e/logs/ (operator.log, prometheus.log, ...)
  make cluster-down   # stops everything, the operator too
""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
