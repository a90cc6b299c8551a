"""The reference pages name everything the code has: each preset metric and the series it reads,
each reason a condition or a pause can give, each plugin verb; and their full examples parse."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from modelrollout.adapters.metrics import presets
from modelrollout.api import resources
from modelrollout.api import status as api_status
from modelrollout.core import conditions
from modelrollout.kubectl_plugin import cli

DOCS = Path(__file__).resolve().parents[1] / "docs"


def section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


@pytest.mark.parametrize("preset", list(presets.PRESETS))
def test_presets_page_lists_every_metric_and_series(preset: presets.analyses.Preset) -> None:
    page = section((DOCS / "presets.md").read_text(), preset.value)
    for name, metric in presets.PRESETS[preset].items():
        assert f"`{name}`" in page, name
        for series in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", metric.query + (metric.exposure or "")):
            assert series.removesuffix("_bucket") in page, (name, series)
    defaults = ", ".join(f"`{m}`" for m in presets.DEFAULT_METRICS[preset])
    assert defaults in page


def test_presets_page_lists_the_guardrails() -> None:
    page = (DOCS / "presets.md").read_text()
    assert all(f"`{name}`" in page for name in presets.GUARDRAILS)


def test_presets_page_full_example_is_a_valid_modeldeployment() -> None:
    page = (DOCS / "presets.md").read_text()
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", page, re.DOTALL)]
    full = [b for b in blocks if isinstance(b, dict) and b.get("kind") == "ModelDeployment"]
    assert full
    for body in full:
        resources.ModelDeployment.model_validate(body)


def test_troubleshooting_names_every_reason() -> None:
    page = (DOCS / "troubleshooting.md").read_text()
    for reason in [*conditions.Reason, *api_status.PauseReason]:
        assert f"`{reason.value}`" in page, reason


def test_plugin_page_names_every_verb() -> None:
    page = (DOCS / "plugin.md").read_text()
    parser = cli.parser()
    verbs = next(a for a in parser._actions if a.dest == "verb").choices
    assert verbs is not None
    for verb in verbs:
        assert re.search(rf"`{verb}[ `]", page), verb
