"""ModelDeploymentStatus: what the operator writes, and reads back after a restart."""

import datetime
import pathlib
from typing import Any

import yaml

from modelrollout.api import commands, labels, status, verdicts

AT = "2025-01-30T10:00:00Z"
FULL: dict[str, Any] = yaml.safe_load((pathlib.Path(__file__).parent / "valid" / "status.yaml").read_text())
TEMPLATE = FULL["stableSpec"]["template"]


def test_full_status_round_trips() -> None:
    parsed = status.ModelDeploymentStatus.model_validate(FULL)
    assert parsed.phase is status.Phase.PAUSED
    assert parsed.pause_reason is status.PauseReason.AWAITING_PROMOTION
    assert parsed.analysis[0].verdict is verdicts.Verdict.PASS
    assert parsed.history[1].outcome is status.Outcome.ROLLED_BACK
    assert parsed.last_command is not None and parsed.last_command.verb is commands.Verb.PAUSE
    assert parsed.step_started_at == datetime.datetime(2025, 1, 30, 10, tzinfo=datetime.UTC)
    dumped = parsed.model_dump(mode="json", exclude_none=True)
    assert dumped == FULL


def test_stable_template_is_kept_whole() -> None:
    parsed = status.ModelDeploymentStatus.model_validate(FULL)
    assert parsed.stable_spec is not None
    assert parsed.stable_spec.template.model_dump(mode="json", exclude_none=True) == TEMPLATE


def test_the_design_example_parses() -> None:
    example = {
        "observedGeneration": 7, "phase": "Progressing", "stableRevision": "5d8f9c", "canaryRevision": "7b21aa",
        "currentStep": 2, "canaryWeight": 25,
        "analysis": [{"metric": "error-rate", "verdict": "Pass", "stable": 0.004, "canary": 0.005,
                      "pValue": 0.41, "samples": 18320, "at": AT}],
        "history": [{"revision": "5d8f9c", "model": "2.2.1", "outcome": "Promoted", "reason": "...", "at": AT}],
    }
    parsed = status.ModelDeploymentStatus.model_validate(example)
    assert parsed.canary_weight == 25 and parsed.analysis[0].p_value == 0.41


def test_empty_and_unknown_fields() -> None:
    assert status.ModelDeploymentStatus.model_validate({}) == status.ModelDeploymentStatus()
    newer = {"phase": "Succeeded", "someFutureField": {"x": 1}}
    assert status.ModelDeploymentStatus.model_validate(newer).phase is status.Phase.SUCCEEDED


def test_lookups() -> None:
    parsed = status.ModelDeploymentStatus.model_validate(FULL)
    ready = parsed.condition(status.ConditionType.READY)
    assert ready is not None and ready.status is status.ConditionStatus.TRUE
    assert parsed.tracks is not None
    canary = parsed.tracks.of(labels.Track.CANARY)
    assert canary is not None and canary.ready == 1
    assert parsed.tracks.of(labels.Track.PREVIEW) is None


def test_status_written_before_the_scale_subresource_reads_its_tracks() -> None:
    old = {key: value for key, value in FULL.items() if key not in ("replicas", "selector", "tracks")}
    old["replicas"] = FULL["tracks"]
    parsed = status.ModelDeploymentStatus.model_validate(old)
    assert parsed.tracks is not None and parsed.tracks.of(labels.Track.CANARY) is not None
    assert parsed.replicas is None
