"""ModelDeployments the schema lets through but that cannot be acted on: the operator marks them
Degraded with a reason that names the problem, or holds, and never crashes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from e2e.cluster.layout import REPO
from e2e.fixtures import then
from e2e.fixtures.operator import OperatorProcess
from e2e.fixtures.world import Kubectl, eventually

pytestmark = pytest.mark.cluster

CORPUS = REPO / "tests" / "api" / "unactionable"
DEGRADED = {  # file -> words the Degraded message must contain
    "invalid-pod-spec": ["restartPolicy"],
    "unknown-preset-metric": ["gpu-temperature", "error-rate"],
    "unknown-query-placeholder": ["{{pod}}"],
    "missing-token-secret": ["Secret"],
    "invalid-promql": ["spec.analysis.metrics[0].query", "parse error"],
}


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.yaml")), ids=lambda p: Path(p).stem)
def test_unactionable_input_is_reported_not_acted_on(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess, path: Path) -> None:
    body = yaml.safe_load(path.read_text())
    body["metadata"]["namespace"] = namespace
    kubectl("apply", "-f", "-", input=yaml.safe_dump(body))
    name = body["metadata"]["name"]
    status = eventually(lambda: (s := then.status(kubectl, namespace, name)).get("observedGeneration") and s, 60,
                        what="a status for the object")
    if path.stem in DEGRADED:
        status = then.phase_becomes(kubectl, namespace, name, "Degraded", 60)
        degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
        assert degraded["status"] == "True"
        for word in DEGRADED[path.stem]:
            assert word in status["message"], status["message"]
    else:
        assert status["phase"] in ("Pending", "Progressing", "Succeeded", "Degraded"), status
    assert operator.process is not None and operator.process.poll() is None, operator.log_tail()
