"""The generated CRD: structural, typed, in step with the models, and with the contract's names."""

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from modelrollout.api import crd, resources

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "crds" / "modeldeployments.yaml"
OPEN = ("x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string")


def _nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its path, e.g. ".spec.strategy.canary.steps[]"."""
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _nodes(child, f"{path}.{name}")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _nodes(node["additionalProperties"], f"{path}.*")
    if "items" in node:
        yield from _nodes(node["items"], f"{path}[]")


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return crd.definition()


@pytest.fixture(scope="module")
def schema(definition: dict[str, Any]) -> dict[str, Any]:
    version = definition["spec"]["versions"][0]
    return dict(version["schema"]["openAPIV3Schema"])


def test_the_file_is_up_to_date() -> None:
    assert CRD_FILE.read_text() == crd.render(), "crds/ is stale: run `make crds`"
    assert crd.main(["--check", str(CRD_FILE)]) == 0


def test_check_reports_drift(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "crd.yaml"
    assert crd.main(["--check", str(stale)]) == 1
    crd.main(["--write", str(stale)])
    assert crd.main(["--check", str(stale)]) == 0
    stale.write_text(stale.read_text().replace("mdep", "md"))
    assert crd.main(["--check", str(stale)]) == 1
    assert "-    - md\n" in capsys.readouterr().err


def test_rendering_is_deterministic() -> None:
    assert crd.render() == crd.render()
    assert yaml.safe_load(crd.render()) == crd.definition()


def test_every_node_is_typed(schema: dict[str, Any]) -> None:
    untyped = [path for path, node in _nodes(schema) if "type" not in node and not any(node.get(k) for k in OPEN)]
    assert untyped == []


def test_the_schema_is_structural(schema: dict[str, Any]) -> None:
    text = yaml.safe_dump(schema)
    assert "$ref" not in text and "$defs" not in text and "oneOf" not in text and "allOf" not in text
    for path, node in _nodes(schema):
        assert "title" not in node, path
        assert not ("properties" in node and "additionalProperties" in node), path
        assert node.get("additionalProperties") is not False, path
        assert "uniqueItems" not in node, path
        if "anyOf" in node:  # only the int-or-string form
            assert node.get("x-kubernetes-int-or-string") is True, path
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
        if node.get("type") == "object" and "properties" not in node:
            assert "additionalProperties" in node or node.get("x-kubernetes-preserve-unknown-fields"), path


def test_lists_and_maps_are_bounded_for_cel(schema: dict[str, Any]) -> None:
    spec = schema["properties"]["spec"]
    for path, node in _nodes(spec, ".spec"):
        if node.get("type") == "array":
            assert "maxItems" in node, path
        is_map = node.get("type") == "object" and "additionalProperties" in node
        if is_map and path != ".spec.template.metadata.annotations":
            assert "maxProperties" in node, path


def test_open_parts(schema: dict[str, Any]) -> None:
    spec = schema["properties"]["spec"]["properties"]
    template = spec["template"]
    assert template["x-kubernetes-preserve-unknown-fields"] is True
    assert template["required"] == ["spec"]
    containers = template["properties"]["spec"]["properties"]["containers"]
    assert containers["minItems"] == 1 and set(containers["items"]["required"]) == {"name", "image"}
    assert spec["smokeTest"]["properties"]["body"] == {
        "description": "A JSON request body.",
        "x-kubernetes-preserve-unknown-fields": True,
    }


def test_defaults_and_enums(schema: dict[str, Any]) -> None:
    spec = schema["properties"]["spec"]["properties"]
    assert spec["replicas"]["default"] == 1
    assert spec["rollback"]["default"] == {}
    assert spec["rollback"]["properties"]["automatic"]["default"] is True
    assert spec["gpuPool"]["properties"]["maxExtraGPUs"] | {"description": ""} == {
        "type": "integer", "default": 0, "minimum": 0, "maximum": 4096, "description": "",
    }
    assert spec["traffic"]["properties"]["provider"]["enum"] == ["GatewayAPI", "Istio", "ReplicaRatio"]
    assert spec["strategy"]["properties"]["type"]["enum"] == ["Canary", "BlueGreen", "Shadow", "ABTest"]
    assert spec["analysis"]["properties"]["preset"]["enum"] == ["generic", "vllm", "triton", "kserve"]
    assert spec["analysis"]["properties"]["alpha"] | {"description": ""} == {
        "type": "number", "default": 0.01, "minimum": 0, "exclusiveMinimum": True, "maximum": 0.5, "description": "",
    }
    step = spec["strategy"]["properties"]["canary"]["properties"]["steps"]["items"]
    assert set(step["properties"]) == {"setWeight", "pause", "analyze"}
    assert step["properties"]["setWeight"] | {"description": ""} == {
        "type": "integer", "minimum": 0, "maximum": 100, "description": "",
    }
    metrics = spec["analysis"]["properties"]["metrics"]
    assert metrics["x-kubernetes-list-type"] == "map" and metrics["x-kubernetes-list-map-keys"] == ["name"]


def test_durations_have_a_pattern(schema: dict[str, Any]) -> None:
    spec = schema["properties"]["spec"]
    durations = [path for path, node in _nodes(spec, ".spec") if node.get("pattern") == r"^([0-9]+(ms|s|m|h))+$"]
    assert ".spec.progressDeadline" in durations
    assert ".spec.strategy.canary.steps[].analyze.duration" in durations
    assert ".spec.strategy.canary.steps[].pause.duration" in durations
    assert ".spec.analysis.interval" in durations


def test_rules_have_messages_and_existing_field_paths(schema: dict[str, Any]) -> None:
    count = 0
    for path, node in _nodes(schema["properties"]["spec"], ".spec"):
        for rule in node.get("x-kubernetes-validations", []):
            count += 1
            assert rule["rule"] and rule["message"], path
            if "fieldPath" in rule:
                target = node
                for name in rule["fieldPath"].lstrip(".").split("."):
                    assert name in target.get("properties", {}), f"{path}: {rule['fieldPath']}"
                    target = target["properties"][name]
            assert rule.get("reason", "FieldValueInvalid") in {
                "FieldValueInvalid", "FieldValueRequired", "FieldValueForbidden",
            }
    assert count >= 25


def test_status_has_no_rules_and_keeps_the_stable_template(schema: dict[str, Any]) -> None:
    status = schema["properties"]["status"]
    assert "x-kubernetes-validations" not in yaml.safe_dump(status)
    stable = status["properties"]["stableSpec"]["properties"]
    assert stable["template"]["x-kubernetes-preserve-unknown-fields"] is True
    assert status["properties"]["phase"]["enum"] == [
        "Pending", "Progressing", "Paused", "Promoting", "Succeeded", "RolledBack", "Degraded",
    ]
    verdict = status["properties"]["analysis"]["items"]["properties"]["verdict"]
    assert verdict["enum"] == ["Pass", "Fail", "Inconclusive", "Error"]
    assert status["properties"]["conditions"]["x-kubernetes-list-map-keys"] == ["type"]
    at = status["properties"]["history"]["items"]["properties"]["at"]
    assert at == {"type": "string", "format": "date-time", "description": "When its rollout ended."}


def test_spec_fields_are_described(schema: dict[str, Any]) -> None:
    spec = schema["properties"]["spec"]
    missing = [path for path, node in _nodes(spec, ".spec") if path and not path.endswith(("[]", ".*"))
               and "description" not in node]
    assert missing == []


def test_names_columns_and_subresources(definition: dict[str, Any]) -> None:
    assert definition["metadata"]["name"] == "modeldeployments.modelrollout.io"
    names = definition["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == ("ModelDeployment", "modeldeployments", ["mdep"])
    assert definition["spec"]["scope"] == "Namespaced"
    (version,) = definition["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}, "scale": {
        "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector"}}
    columns = [(c["name"], c["jsonPath"]) for c in version["additionalPrinterColumns"] if "priority" not in c]
    assert columns == [
        ("Strategy", ".spec.strategy.type"),
        ("Phase", ".status.phase"),
        ("Weight", ".status.canaryWeight"),
        ("Stable", ".status.stableRevision"),
        ("Canary", ".status.canaryRevision"),
        ("Age", ".metadata.creationTimestamp"),
    ]
    assert f"{definition['spec']['group']}/{version['name']}" == resources.API_VERSION


def test_name_is_limited(schema: dict[str, Any]) -> None:
    name = schema["properties"]["metadata"]["properties"]["name"]
    assert name["maxLength"] == resources.MAX_NAME_LENGTH
