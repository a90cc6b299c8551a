"""`make e2e` (`-n 2 --dist loadgroup`) runs every real-node test on one worker: a suite laid out
as e2e/ is, run by pytest-xdist with the project's scheduler, puts them together."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from e2e.cluster.layout import REPO
from e2e.fixtures.scheduling import scope_of

BODY = """
import os, time, pytest
pytestmark = [pytest.mark.xdist_group("real-node")] if "real_node" in __name__ else []

@pytest.mark.parametrize("case", range(3))
def test_case(case):
    time.sleep(0.2)
    with open(os.environ["WORKERS_SEEN"], "a") as seen:
        seen.write(f"{__name__} {os.environ['PYTEST_XDIST_WORKER']}\\n")
"""


def test_the_real_node_tests_are_one_unit_and_every_other_test_its_own() -> None:
    assert scope_of("e2e/scenarios/test_real_node.py::test_a") == "real-node"
    assert scope_of("e2e/scenarios/test_real_node_rollouts.py::test_b[x]") == "real-node"
    assert scope_of("e2e/scenarios/test_canary.py::test_c") == "e2e/scenarios/test_canary.py::test_c"


def test_under_loadgroup_the_real_node_tests_share_one_worker(tmp_path: Path) -> None:
    scenarios = tmp_path / "e2e" / "scenarios"
    scenarios.mkdir(parents=True)
    for name in ["test_real_node", "test_real_node_operator", "test_real_node_rollouts",
                 "test_a", "test_b", "test_c", "test_d"]:
        (scenarios / f"{name}.py").write_text(BODY)
    seen = tmp_path / "seen.txt"
    env = {**os.environ, "WORKERS_SEEN": str(seen), "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "e2e.fixtures.scheduling",
            "-n", "2", "--dist", "loadgroup", "e2e"]
    run = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    workers: dict[str, set[str]] = {}
    for line in seen.read_text().splitlines():
        module, worker = line.split()
        workers.setdefault(module, set()).add(worker)
    real_node = set().union(*(w for m, w in workers.items() if "real_node" in m))
    assert len(real_node) == 1, workers
    assert set().union(*workers.values()) == {"gw0", "gw1"}, workers  # the others still spread
