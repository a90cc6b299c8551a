"""The API server is the judge of the CRD: it refuses every invalid ModelDeployment with a message
that names the field, and accepts the examples, the unactionable corpus and a full status.

The corpus lives in tests/api/: invalid/*.yaml (first line `# expect: <part of the message>`),
unactionable/*.yaml (valid for the schema; the operator must mark them Degraded at run time) and
valid/status.yaml (every status field). The world fixture installs crds/modeldeployments.yaml.
"""

from __future__ import annotations

import json
import pathlib

import pytest
import yaml

from e2e.fixtures.world import Kubectl

pytestmark = pytest.mark.cluster

REPO = pathlib.Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "api"
INVALID = sorted((CORPUS / "invalid").glob("*.yaml"))
ACCEPTED = sorted((REPO / "examples").glob("*.yaml")) + sorted((CORPUS / "unactionable").glob("*.yaml"))


def _expected(path: pathlib.Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name}: the first line must be '# expect: ...'"
    return first.removeprefix("# expect: ").strip()


def test_the_crd_is_established(kubectl: Kubectl) -> None:
    result = kubectl("get", "crd", "modeldeployments.modelrollout.io", "-o", "json")
    conditions = {c["type"]: c["status"] for c in json.loads(result.stdout)["status"]["conditions"]}
    assert conditions.get("Established") == "True"
    assert conditions.get("NamesAccepted") == "True"


def test_every_invalid_modeldeployment_is_refused_naming_the_field(kubectl: Kubectl, namespace: str) -> None:
    assert len(INVALID) >= 32
    wrong = []
    for path in INVALID:
        result = kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(path), check=False)
        expect = _expected(path)
        if result.returncode == 0:
            wrong.append(f"{path.name}: accepted, expected a refusal with {expect!r}")
        elif expect not in result.stderr:
            wrong.append(f"{path.name}: expected {expect!r} in: {result.stderr.strip()}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("path", ACCEPTED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_valid_modeldeployments_are_accepted(kubectl: Kubectl, namespace: str, path: pathlib.Path) -> None:
    kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(path))


def test_the_server_fills_in_defaults(kubectl: Kubectl, namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", str(REPO / "examples" / "canary-istio.yaml"))
    spec = json.loads(kubectl("get", "mdep", "canary-istio", "-n", namespace, "-o", "json").stdout)["spec"]
    assert spec["rollback"] == {"automatic": True, "scaleDownDelay": "0s"}
    assert spec["traffic"]["targetPort"] == "http"
    assert spec["analysis"]["failureLimits"] == {"consecutiveErrors": 4, "inconclusive": 2}
    assert spec["progressDeadline"] == "15m"


def test_a_full_status_is_stored_unpruned_and_shown(kubectl: Kubectl, namespace: str) -> None:
    status = yaml.safe_load((CORPUS / "valid" / "status.yaml").read_text())
    body = yaml.safe_load((REPO / "examples" / "shadow.yaml").read_text())
    body["metadata"]["labels"] = {"modelrollout.io/ignore": "true"}  # a running operator leaves it alone
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(body))
    patch = json.dumps({"status": status})
    kubectl("patch", "mdep", "shadow", "-n", namespace, "--subresource=status", "--type=merge", "-p", patch)
    stored = json.loads(kubectl("get", "mdep", "shadow", "-n", namespace, "-o", "json").stdout)["status"]
    assert stored == status
    table = kubectl("get", "mdep", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "STRATEGY", "PHASE", "WEIGHT", "STABLE", "CANARY", "AGE"]
    assert table[1].split()[:6] == ["shadow", "Shadow", "Paused", "25", "5d8f9c", "7b21aa"]


@pytest.mark.parametrize("example", ["blue-green", "shadow", "ab-test"])
def test_a_scale_is_never_refused_by_the_rules_that_read_replicas(kubectl: Kubectl, namespace: str,
                                                                  example: str) -> None:
    """The budget and size rules hold when the object is created or its strategy or gpuPool
    changes, not when only replicas do: kubectl scale (an HPA, KEDA) works beyond maxExtraGPUs,
    below an explicit preview, shadow or challenger size, and to 0."""
    body = yaml.safe_load((REPO / "examples" / f"{example}.yaml").read_text())
    body["metadata"]["labels"] = {"modelrollout.io/ignore": "true"}  # a running operator leaves it alone
    section = {"blue-green": "blueGreen", "shadow": "shadow", "ab-test": "abTest"}[example]
    size = "previewReplicas" if example == "blue-green" else "replicas"
    body["spec"]["replicas"] = 2
    body["spec"]["strategy"][section][size] = 2
    name = body["metadata"]["name"]
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(body))
    extra = (body["spec"].get("gpuPool") or {}).get("maxExtraGPUs")
    for replicas in (9, 1, 0, 2):  # 9 pods need more than maxExtraGPUs beside them; 1 and 0 are below the size
        kubectl("scale", "-n", namespace, f"mdep/{name}", f"--replicas={replicas}")
        stored = json.loads(kubectl("get", "mdep", name, "-n", namespace, "-o", "json").stdout)["spec"]
        assert stored["replicas"] == replicas
    assert example != "blue-green" or extra == 2, "the blue-green example has a GPU budget below 9 pods"
    body["spec"]["strategy"][section][size] = 3  # a change of the strategy is checked as ever
    refused = kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(body), check=False)
    assert refused.returncode != 0 and f"spec.strategy.{section}.{size}" in refused.stderr, refused.stderr
