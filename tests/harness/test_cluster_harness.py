"""The e2e world's harness on its own: node-pool parsing, start-up failures, busy ports."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from e2e.cluster import nodepools, world
from e2e.cluster.layout import REPO, Layout, Ports
from e2e.cluster.processes import Component, StartError, Supervisor


def test_the_shipped_pools_are_the_documented_ones() -> None:
    pools = {p.name: p for p in nodepools.load(REPO / "e2e" / "nodepools.yaml")}
    assert (pools["a100"].nodes, pools["a100"].capacity["nvidia.com/gpu"]) == (2, "8")
    assert (pools["l4"].nodes, pools["l4"].capacity["nvidia.com/gpu"]) == (3, "1")
    assert ("nvidia.com/gpu", "present", "NoSchedule") in pools["a100"].taints
    assert "nvidia.com/gpu" not in pools["cpu"].capacity
    nodes = nodepools.nodes(list(pools.values()))
    a100 = next(n for n in nodes if n["metadata"]["name"] == "a100-0")
    assert a100["metadata"]["labels"]["modelrollout.io/pool"] == "a100"
    assert a100["metadata"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-80GB"
    assert a100["status"]["allocatable"]["nvidia.com/gpu"] == "8"


@pytest.mark.parametrize("text, line, words", [
    ("pools:\n- name: a100\n  nodes: two\n  capacity: {cpu: '1'}\n", 3, "nodes must be an integer"),
    ("pools:\n- name: A100\n  nodes: 1\n  capacity: {cpu: '1'}\n", 2, "not a DNS label"),
    ("pools:\n- name: a\n  nodes: 1\n  capacity: {cpu: '1'}\n  taints: [gpu]\n", 5, "key=value:Effect"),
    ("pools:\n- name: a\n  nodes: 1\n  capacity: {nvidia.com/gpu: lots}\n", 4, "not a quantity"),
    ("pools:\n- name: a\n  nodes: 1\n  capacity: {cpu: '1'}\n- name: a\n  nodes: 1\n  capacity: {cpu: '1'}\n", 5,
     "used twice"),
    ("pools:\n- name: a\n  nodes: 1\n  capacity: {cpu: '1'}\n  gpus: 3\n", 5, "unknown field 'gpus'"),
    ("pools:\n- name: a\n  capacity: {cpu: '1'}\n", 2, "missing 'nodes'"),
    ("nodes: []\n", 1, "top-level 'pools:'"),
])
def test_a_malformed_pool_file_is_refused_with_its_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = tmp_path / "nodepools.yaml"
    path.write_text(text)
    with pytest.raises(nodepools.NodePoolError) as caught:
        nodepools.load(path)
    assert f"{path}:{line}:" in str(caught.value) and words in str(caught.value)


def test_a_component_that_dies_at_start_stops_with_its_last_log_lines(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "run", tmp_path / "logs")
    crashing = Component("doomed", [sys.executable, "-c", "import sys; print('bad flag --frobnicate'); sys.exit(3)"])
    supervisor.start(crashing)
    with pytest.raises(StartError, match="doomed exited during start-up") as caught:
        supervisor.wait_until("doomed", lambda: False, timeout=30)
    assert "bad flag --frobnicate" in str(caught.value)
    assert supervisor.running() == []


def test_a_component_that_never_gets_ready_times_out_instead_of_hanging(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "run", tmp_path / "logs")
    supervisor.start(Component("sleeper", [sys.executable, "-c", "import time; print('waiting'); time.sleep(60)"]))
    try:
        with pytest.raises(StartError, match="sleeper was not ready after 1 s"):
            supervisor.wait_until("sleeper", lambda: False, timeout=1)
    finally:
        supervisor.stop("sleeper")
    assert supervisor.running() == []


def test_a_port_in_use_is_detected_before_anything_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("E2E_PORT_OFFSET", "700")
    ports = Ports.from_env()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports.prometheus))
        squatter.listen()
        local = world.World(Layout(tmp_path / "world"), ports)
        with pytest.raises(StartError, match=f"already in use on 127.0.0.1: \\[{ports.prometheus}\\]"):
            local.up()
    assert local.supervisor.running() == []
    assert not (tmp_path / "world" / "env").exists()


def test_the_env_file_is_sourced_by_a_shell_and_read_back_by_python(tmp_path: Path) -> None:
    layout = Layout(tmp_path / ".e2e with space")
    layout.root.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text("#!/bin/sh\necho fake kubectl\n")
    kubectl.chmod(0o755)
    settings = {"KUBECONFIG": str(layout.kubeconfig), "PROMETHEUS_URL": "http://127.0.0.1:29090",
                "E2E_BIN": str(bin_dir)}
    world.write_env(layout, settings)

    script = f'source "{layout.env_file}" && echo "$KUBECONFIG|$PROMETHEUS_URL" && kubectl && env | grep -c ^E2E_BIN='
    shell = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                           env={"PATH": "/usr/bin:/bin"}, check=True)
    assert shell.stdout.splitlines() == [f"{layout.kubeconfig}|http://127.0.0.1:29090", "fake kubectl", "1"]
    assert world.read_env(layout) == settings
