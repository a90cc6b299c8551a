"""The Grafana dashboard: every PromQL expression parses (promtool), uses only metrics that exist,
and the panels the operator's users look for are there.

promtool parses PromQL when it checks recording rules, so each expression, with Grafana's
variables replaced by concrete values, becomes one rule of a rule file.
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "charts" / "modelrollout" / "dashboards" / "modelrollout.json"
HELM_DOC = REPO / "docs" / "helm.md"
GRAFANA_VARIABLES = {"$namespace": "ml", "$name": "fraud-scorer", "$__rate_interval": "1m", "$__range": "1h",
                     "$__interval": "30s"}

OPERATOR_METRICS = {
    "modelrollout_canary_weight", "modelrollout_verdicts_total", "modelrollout_rollbacks_total",
    "modelrollout_rollouts", "modelrollout_step_duration_seconds", "modelrollout_analysis_query_seconds",
    "modelrollout_analysis_query_errors_total",
}
MODEL_SERVER_METRICS = {"model_requests_total", "model_request_duration_seconds", "model_prediction_score"}
HISTOGRAMS = {"modelrollout_step_duration_seconds", "modelrollout_analysis_query_seconds",
              "model_request_duration_seconds", "model_prediction_score"}
PROMQL_WORDS = {"sum", "by", "rate", "increase", "histogram_quantile", "max", "or", "and", "without", "le", "on"}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def expressions() -> list[tuple[str, str]]:
    """(where, expr) for every panel target and every query variable."""
    found = []
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            found.append((f"{panel['title']}/{target['refId']}", target["expr"]))
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((.+), *(\w+)\)", variable["definition"])
            assert match, f"variable {variable['name']}: {variable['definition']}"
            found.append((f"${variable['name']}", match[1]))
    return found


def concrete(expr: str) -> str:
    for variable, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"an unknown Grafana variable in {expr}"
    return expr


def metric_names(expr: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', '""', re.sub(r"\[[^\]]*\]", "", expr))
    without_labels = re.sub(r"\{[^}]*\}", "", without_strings)
    without_groupings = re.sub(r"\b(by|without|on)\s*\([^)]*\)", "", without_labels)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_groupings))
    return {w for w in words if w not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhd]", w)}


def base(metric: str) -> str:
    for histogram in HISTOGRAMS:
        if metric in (f"{histogram}_bucket", f"{histogram}_sum", f"{histogram}_count"):
            return histogram
    return metric


def promtool_check(exprs: list[str], tmp_path: pathlib.Path) -> subprocess.CompletedProcess[str]:
    rules = [{"record": f"dashboard:check_{i}", "expr": e} for i, e in enumerate(exprs)]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    return subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module", autouse=True)
def _promtool() -> None:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is missing: install Debian's `prometheus` package")


def test_every_expression_parses(tmp_path: pathlib.Path) -> None:
    found = expressions()
    assert len(found) >= 15
    result = promtool_check([concrete(expr) for _, expr in found], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(found)} rules found" in result.stdout


def test_promtool_refuses_a_broken_expression(tmp_path: pathlib.Path) -> None:
    """The check above can fail: promtool does parse the PromQL."""
    broken = 'sum by (track) (rate(model_requests_total{namespace="ml"}[1m])'
    result = promtool_check([broken], tmp_path)
    assert result.returncode != 0
    assert "parse error" in result.stdout + result.stderr


def test_expressions_use_only_the_metrics_that_exist() -> None:
    used = set()
    for where, expr in expressions():
        names = {base(m) for m in metric_names(expr)}
        unknown = names - OPERATOR_METRICS - MODEL_SERVER_METRICS
        assert not unknown, f"{where}: unknown metric {unknown} in {expr}"
        used |= names
    assert used == OPERATOR_METRICS | MODEL_SERVER_METRICS, "every exported metric has a panel"


def test_model_server_panels_compare_tracks_of_the_selected_modeldeployment() -> None:
    for where, expr in expressions():
        for metric in metric_names(expr):
            if base(metric) not in MODEL_SERVER_METRICS:
                continue
            for selector in re.findall(re.escape(metric) + r"\{([^}]*)\}", expr):
                assert 'namespace="$namespace"' in selector and 'modeldeployment="$name"' in selector, where
            assert re.search(r"by \([^)]*\btrack\b", expr), f"{where}: not split by track"


def test_the_panels_users_look_for() -> None:
    titles = {p["title"] for p in dashboard()["panels"]}
    assert {"Canary weight", "Verdicts", "Rollbacks", "Request rate", "5xx ratio", "p50 latency", "p99 latency",
            "Prediction score mean", "Rollouts by phase", "Step durations", "Analysis queries"} <= titles


def test_the_dashboard_is_portable() -> None:
    board = dashboard()
    assert board["uid"] == "modelrollout"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert {"namespace", "name"} <= set(variables)
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert all(t["datasource"] == panel["datasource"] for t in panel["targets"]), panel["title"]


def test_the_operator_metrics_are_documented() -> None:
    text = HELM_DOC.read_text()
    for metric in OPERATOR_METRICS:
        assert f"`{metric}" in text, f"{metric} is not listed in docs/helm.md"
