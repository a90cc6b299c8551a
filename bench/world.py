"""Benchmark of the e2e world: build times, warm `cluster-up`, and pod-to-answering latency.

Runs a second, private world (its own folder and ports) so it never disturbs a running one:

- cold build: the times `e2e/cluster/build.sh` recorded when it last built each component
  from an empty Go build cache (`BENCH_COLD=1` rebuilds everything now, in a fresh cache:
  about ten minutes on two cores);
- warm `cluster-up`: from nothing running to `.e2e/env` written, binaries cached (goal 20 s);
  measured twice, with `cluster-down` between, and compared with the first;
- pod latency: a Deployment of pods scheduled by the real scheduler, from each pod Running (as
  kwok reports it) to its model server answering /healthz, as the pod runner records it.

Prints a table and writes bench/results/world.json.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("MODELROLLOUT_CACHE", Path.home() / ".cache" / "modelrollout"))
GOAL_WARM_UP_S = 20.0
PODS = 12


def _cluster(verb: str, env: dict[str, str]) -> float:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "e2e.cluster", verb], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"cluster {verb} failed:\n{result.stdout}\n{result.stderr}")
    return time.monotonic() - started


def recorded_builds() -> dict[str, float]:
    """The latest recorded build time per component."""
    log = CACHE / "build-times.log"
    out: dict[str, float] = {}
    if log.exists():
        for line in log.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2:
                out[parts[0]] = float(parts[1])
    return out


def cold_build() -> float:
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as gocache:
        env = dict(os.environ, MODELROLLOUT_CACHE=cache, GOCACHE=gocache)
        started = time.monotonic()
        subprocess.run(["bash", str(REPO / "e2e/cluster/build.sh")], env=env, check=True, capture_output=True)
        return time.monotonic() - started


def pod_latencies(root: Path, env: dict[str, str]) -> list[float]:
    kubectl = next(line.split("=", 1)[1] for line in (root / "env").read_text().splitlines()
                   if line.startswith("E2E_BIN=")) + "/kubectl"
    labels = {"app": "bench"}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bench", "namespace": "default"},
        "spec": {"replicas": PODS, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "server", "image": "registry.example/modelserver:1.0",
                                     "ports": [{"containerPort": 8080}]}]}}},
    }
    subprocess.run([kubectl, f"--kubeconfig={root / 'kubeconfig'}", "apply", "-f", "-"],
                   input=yaml.safe_dump(deployment), text=True, check=True, capture_output=True, env=env)
    timings = root / "run" / "pod-timings.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        lines = timings.read_text().splitlines() if timings.exists() else []
        if len(lines) >= PODS:
            return [float(json.loads(line)["secondsFromRunningToAnswering"]) for line in lines]
        time.sleep(0.5)
    raise RuntimeError(f"only {len(lines)} of {PODS} pods answered within 120 s")


def main() -> int:
    rows: list[dict[str, Any]] = []
    builds = recorded_builds()
    for component, seconds in sorted(builds.items()):
        rows.append({"measure": f"cold build {component} (recorded)", "value": seconds, "unit": "s"})
    if builds:
        rows.append({"measure": "cold build, all components (recorded)", "value": sum(builds.values()), "unit": "s"})
    if os.environ.get("BENCH_COLD"):
        rows.append({"measure": "cold build, all components (now)", "value": round(cold_build(), 1), "unit": "s"})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "world"
        env = dict(os.environ, E2E_DIR=str(root), E2E_PORT_OFFSET="500")
        try:
            first = _cluster("up", env)
            latencies = pod_latencies(root, env)
            _cluster("down", env)
            second = _cluster("up", env)
        finally:
            _cluster("down", env)
    rows += [
        {"measure": "warm cluster-up, first", "value": round(first, 1), "unit": "s", "goal": GOAL_WARM_UP_S},
        {"measure": "warm cluster-up, second", "value": round(second, 1), "unit": "s", "goal": GOAL_WARM_UP_S},
        {"measure": f"pod Running -> model server answering, median of {PODS}",
         "value": round(statistics.median(latencies), 2), "unit": "s"},
        {"measure": f"pod Running -> model server answering, max of {PODS}",
         "value": round(max(latencies), 2), "unit": "s"},
    ]
    print(f"{'measure':<58} {'value':>8}  goal")
    for row in rows:
        goal = f"<= {row['goal']:.0f} {row['unit']}" if "goal" in row else ""
        print(f"{row['measure']:<58} {row['value']:>6} {row['unit']}  {goal}")
    out = REPO / "bench" / "results" / "world.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    failed = [r for r in rows if "goal" in r and r["value"] > r["goal"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
