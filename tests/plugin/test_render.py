"""The plugin's views, as text at a given terminal width, from objects recorded in e2e runs."""

from __future__ import annotations

import copy
import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelrollout.api import resources
from modelrollout.kubectl_plugin import render

RECORDED = Path(__file__).resolve().parents[1] / "argocd" / "fixtures" / "recorded"
NOW = datetime.datetime(2026, 11, 25, 12, 25, tzinfo=datetime.UTC)


def recorded(name: str) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((RECORDED / f"{name}.yaml").read_text())
    return body


def parsed(body: dict[str, Any]) -> resources.ModelDeployment:
    return resources.ModelDeployment.model_validate(body)


@pytest.mark.parametrize("name", sorted(p.stem for p in RECORDED.glob("*.yaml")))
@pytest.mark.parametrize("width", [60, 100, 200])
def test_every_view_fits_the_terminal(name: str, width: int) -> None:
    md = parsed(recorded(name))
    for view in (render.status_view(md, NOW), render.list_view([md], NOW, all_namespaces=True),
                 render.history_view(md.status.history, NOW)):
        lines = render.text_of(view, width).splitlines()
        assert lines and max(len(line) for line in lines) <= width


def test_the_step_is_counted_as_the_operator_counts_it() -> None:
    md = parsed(recorded("e2e-progressing"))
    assert md.status.message is not None and md.status.message.startswith("step 2/4 analyze 40s")
    out = render.text_of(render.status_view(md, NOW))
    assert "Step       2/4 analyze 40s (for 44s)" in out
    assert "✔ 1. setWeight 10%" in out and "▶ 2. analyze 40s" in out and "· 3. setWeight 50%" in out
    assert "Step: 1" not in out and "0: setWeight" not in out


def test_a_long_metric_name_stays_in_its_column() -> None:
    body = recorded("e2e-paused-awaiting-promotion")
    long_name = "p99-latency-of-the-tokenizer-and-the-model-together (slo-max)"
    body["status"]["analysis"][0]["metric"] = long_name
    out = render.text_of(render.status_view(parsed(body), NOW), 100).splitlines()
    header = next(line for line in out if line.startswith("METRIC"))
    rows = out[out.index(header) + 2:]
    # Every cell starts at its header's column: the verdict column does not shift.
    verdict_at = header.index("VERDICT")
    assert rows[0][verdict_at:].startswith("Pass ")
    first_column = "".join(row[:verdict_at] for row in rows).replace(" ", "")
    assert long_name.replace(" ", "") in first_column  # folded inside its column


def test_a_condition_message_is_not_repeated_after_the_status_message() -> None:
    md = parsed(recorded("e2e-rolled-back"))
    out = render.text_of(render.status_view(md, NOW), 200)
    assert md.status.message and out.count(md.status.message[:60]) == 1


def test_the_list_has_kubectl_get_columns_and_the_step() -> None:
    progressing = parsed(recorded("e2e-progressing"))
    done = copy.deepcopy(recorded("e2e-succeeded"))
    done["metadata"]["name"] = "other"
    lines = render.text_of(render.list_view([progressing, parsed(done)], NOW, all_namespaces=True), 160).splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "STRATEGY", "PHASE", "STEP", "WEIGHT", "STABLE", "CANARY",
                                "MODEL", "AGE"]
    assert lines[2].split()[:9] == ["ml", "canary-gateway-api", "Canary", "Progressing", "2/4", "analyze", "40s",
                                    "10%", "ede3d1ff42"]
    assert lines[3].split()[:4] == ["ml", "other", "Canary", "Succeeded"]
    assert render.text_of(render.list_view([], NOW, all_namespaces=False)) == "No ModelDeployments found."


def test_progress_lines_say_phase_step_weight_and_message() -> None:
    line = render.progress_line(parsed(recorded("e2e-progressing")))
    assert line.startswith("Progressing  step 2/4 analyze 40s  weight 10%  step 2/4 analyze 40s: canary")


@pytest.mark.parametrize("seconds, expected", [(5, "5s"), (119, "119s"), (600, "10m"), (7200, "2h"), (200000, "2d")])
def test_ages_read_like_kubectl(seconds: int, expected: str) -> None:
    assert render.age(NOW - datetime.timedelta(seconds=seconds), NOW) == expected
