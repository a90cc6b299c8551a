"""The chart is well-formed: helm lint --strict, its CRD is the generated one, and its values schema
describes every value and refuses wrong ones."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "modelrollout"
VALUES = sorted((pathlib.Path(__file__).parent / "values").glob("*.yaml"))
SCHEMA = json.loads((CHART / "values.schema.json").read_text())


def test_the_values_files_are_the_expected_set() -> None:
    assert {p.stem for p in VALUES} == {"default", "namespaced", "monitoring", "tls-token", "restricted"}


@pytest.mark.parametrize("values", VALUES, ids=lambda p: p.stem)
def test_helm_lint_strict(chart: Any, values: pathlib.Path) -> None:
    result = chart.run("lint", "--strict", "--kube-version", chart.kube_version, str(CHART), "-f", str(values),
                       check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


def test_the_chart_crd_is_the_generated_one() -> None:
    """`make crds` writes crds/modeldeployments.yaml; the chart ships a byte-identical copy."""
    generated = REPO / "crds" / "modeldeployments.yaml"
    shipped = CHART / "crds" / "modeldeployments.yaml"
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == ["modeldeployments.yaml"]
    assert shipped.read_bytes() == generated.read_bytes(), (
        "charts/modelrollout/crds/modeldeployments.yaml differs from crds/modeldeployments.yaml: "
        "copy it (make crds)"
    )


def _walk(values: Any, schema: dict[str, Any], path: str, problems: list[str]) -> None:
    """Every value has a schema with a type; objects with fixed keys declare exactly these keys."""
    if "type" not in schema and "anyOf" not in schema:
        problems.append(f"{path or '.'}: no type")
    if not isinstance(values, dict) or "properties" not in schema:
        return
    declared = set(schema["properties"]) - {"global"}
    if set(values) != declared:
        problems.append(f"{path or '.'}: values {sorted(values)} but schema {sorted(declared)}")
    if schema.get("additionalProperties") is not False:
        problems.append(f"{path or '.'}: unknown keys are not refused")
    if set(schema.get("required", [])) != declared:
        problems.append(f"{path or '.'}: not every key is required")
    for key, value in values.items():
        sub = schema["properties"].get(key)
        if sub is not None:
            if not sub.get("description") and path.count(".") < 3:
                problems.append(f"{path}.{key}: no description")
            _walk(value, sub, f"{path}.{key}", problems)


def test_the_schema_describes_every_default_value() -> None:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    problems: list[str] = []
    _walk(defaults, SCHEMA, "", problems)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "set_json, path",
    [
        ({"logLevel": "verbose"}, "/logLevel"),
        ({"replicas": 2}, "replicas"),
        ({"watchNamespaces": "ml"}, "/watchNamespaces"),
        ({"watchNamespaces": ["ML"]}, "/watchNamespaces/0"),
        ({"prometheus": {"url": "prometheus:9090"}}, "/prometheus/url"),
        ({"prometheus": {"timeout": "10 seconds"}}, "/prometheus/timeout"),
        ({"prometheus": {"tls": {"insecureSkipVerify": "yes"}}}, "/prometheus/tls/insecureSkipVerify"),
        ({"prometheus": {"bearerTokenSecret": {"name": "Token_1"}}}, "/prometheus/bearerTokenSecret/name"),
        ({"image": {"digest": "latest"}}, "/image/digest"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"metrics": {"port": 0}}, "/metrics/port"),
        ({"modelServers": {"podMonitor": {"scheme": "ftp"}}}, "/modelServers/podMonitor/scheme"),
        ({"dashboard": {"labels": {"grafana_dashboard": 1}}}, "/dashboard/labels/grafana_dashboard"),
        ({"resources": {"limits": {"memory": "lots"}}}, "/resources/limits/memory"),
    ],
)
def test_the_schema_refuses_wrong_values(chart: Any, set_json: dict[str, Any], path: str) -> None:
    error = chart.refused(set_json)
    assert "values don't meet the specifications of the schema" in error, error
    assert path in error, error
