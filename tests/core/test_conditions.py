"""Conditions: transition times move only when a status changes, and each situation has its reasons."""

from __future__ import annotations

import datetime

import pytest

from modelrollout.api.status import Condition, ConditionStatus, ConditionType, PauseReason, Phase
from modelrollout.core import conditions

Wanted = conditions.Wanted
T0 = datetime.datetime(2025, 1, 30, 10, 0, tzinfo=datetime.UTC)
LATER = T0 + datetime.timedelta(minutes=5)


def ready(status: ConditionStatus, at: datetime.datetime, message: str = "") -> Condition:
    return Condition(type="Ready", status=status, reason="Serving", message=message, last_transition_time=at)


@pytest.mark.parametrize(
    "previous, wanted, expected_time",
    [
        ([ready(ConditionStatus.TRUE, T0)], Wanted.true("Serving", "new message"), T0),
        ([ready(ConditionStatus.TRUE, T0)], Wanted.false("NoReadyPods"), LATER),
        ([], Wanted.true("Serving"), LATER),
    ],
)
def test_merge_keeps_the_transition_time_while_the_status_holds(
    previous: list[Condition], wanted: Wanted, expected_time: datetime.datetime
) -> None:
    merged = conditions.merge(previous, {ConditionType.READY: wanted}, LATER, 7)
    assert len(merged) == 1
    assert merged[0].last_transition_time == expected_time
    assert (merged[0].status, merged[0].observed_generation) == (wanted.status, 7)


def test_merge_keeps_conditions_it_does_not_manage() -> None:
    other = Condition(type="Custom", status=ConditionStatus.TRUE, last_transition_time=T0)
    merged = conditions.merge([other], {ConditionType.READY: Wanted.true("Serving")}, LATER, 1)
    assert [condition.type for condition in merged] == ["Ready", "Custom"]


def derived(**facts: object) -> dict[str, tuple[str, str]]:
    found = conditions.derive(conditions.Facts(**{"phase": Phase.PROGRESSING, "serving": True, **facts}))  # type: ignore[arg-type]
    return {
        kind.value: (want.status.value, str(getattr(want.reason, "value", want.reason))) for kind, want in found.items()
    }


@pytest.mark.parametrize(
    "facts, expected",
    [
        (
            {"hold": "needs 8 more nvidia.com/gpu, 4 free in pool a100: 4 missing", "capacity": True},
            {
                "Ready": ("True", "Serving"),
                "Progressing": ("True", "InsufficientCapacity"),
                "Degraded": ("False", "AsExpected"),
                "Reconciling": ("True", "InsufficientCapacity"),
                "Stalled": ("False", "AsExpected"),
            },
        ),
        (
            {"phase": Phase.PAUSED, "pause_reason": PauseReason.FAILED_ANALYSIS},
            {
                "Ready": ("True", "Serving"),
                "Progressing": ("False", "FailedAnalysis"),
                "Degraded": ("True", "AnalysisFailed"),
                "Reconciling": ("False", "FailedAnalysis"),
                "Stalled": ("True", "AnalysisFailed"),
            },
        ),
        (
            {"phase": Phase.PAUSED, "pause_reason": PauseReason.INCONCLUSIVE, "metrics_unavailable": True},
            {
                "Ready": ("True", "Serving"),
                "Progressing": ("False", "MetricsUnavailable"),
                "Degraded": ("True", "MetricsUnavailable"),
                "Reconciling": ("True", "MetricsUnavailable"),
                "Stalled": ("False", "AsExpected"),
            },
        ),
        (
            {"phase": Phase.PAUSED, "pause_reason": PauseReason.STEP},
            {
                "Ready": ("True", "Serving"),
                "Progressing": ("True", "RolloutInProgress"),
                "Degraded": ("False", "AsExpected"),
                "Reconciling": ("True", "RolloutInProgress"),
                "Stalled": ("False", "AsExpected"),
            },
        ),
        (
            {"phase": Phase.PENDING, "serving": False},
            {
                "Ready": ("False", "Deploying"),
                "Progressing": ("True", "RolloutInProgress"),
                "Degraded": ("False", "AsExpected"),
                "Reconciling": ("True", "RolloutInProgress"),
                "Stalled": ("False", "AsExpected"),
            },
        ),
        (
            {"phase": Phase.ROLLED_BACK, "previous_degraded": Wanted.true("SmokeTestFailed", "HTTP 500")},
            {
                "Ready": ("True", "Serving"),
                "Progressing": ("False", "RolledBack"),
                "Degraded": ("True", "SmokeTestFailed"),
                "Reconciling": ("False", "RolledBack"),
                "Stalled": ("True", "SmokeTestFailed"),
            },
        ),
        (
            {"phase": Phase.SUCCEEDED, "serving": False},
            {
                "Ready": ("False", "NoReadyPods"),
                "Progressing": ("False", "RolloutComplete"),
                "Degraded": ("False", "AsExpected"),
                "Reconciling": ("False", "RolloutComplete"),
                "Stalled": ("False", "AsExpected"),
            },
        ),
        (
            {"phase": Phase.PAUSED, "pause_reason": PauseReason.AWAITING_PROMOTION},
            {
                "Ready": ("True", "Serving"),
                "Progressing": ("False", "AwaitingPromotion"),
                "Degraded": ("False", "AsExpected"),
                "Reconciling": ("True", "AwaitingPromotion"),
                "Stalled": ("False", "AsExpected"),
            },
        ),
        (
            {"phase": Phase.DEGRADED},
            {
                "Ready": ("True", "Serving"),
                "Progressing": ("False", "ProgressDeadlineExceeded"),
                "Degraded": ("True", "ProgressDeadlineExceeded"),
                "Reconciling": ("False", "ProgressDeadlineExceeded"),
                "Stalled": ("True", "ProgressDeadlineExceeded"),
            },
        ),
    ],
)
def test_derive(facts: dict[str, object], expected: dict[str, tuple[str, str]]) -> None:
    assert derived(**facts) == expected


def test_a_spec_that_cannot_be_read_is_stalled_not_reconciling() -> None:
    from modelrollout.core import invalid
    before = {"conditions": [{"type": "Ready", "status": "True", "reason": "Serving", "lastTransitionTime": "x"},
                             {"type": "Reconciling", "status": "False", "reason": "RolloutComplete",
                              "lastTransitionTime": "2025-01-30T09:00:00Z"}]}
    out = invalid.status(before, 4, "spec.replicas: not a number", T0)
    by_type = {c["type"]: c for c in out["conditions"]}
    assert {k: c["status"] for k, c in by_type.items()} == {
        "Ready": "True", "Degraded": "True", "Stalled": "True", "Reconciling": "False"}
    assert by_type["Stalled"]["message"] == "spec.replicas: not a number"
    assert by_type["Stalled"]["observedGeneration"] == 4
    assert by_type["Reconciling"]["lastTransitionTime"] == "2025-01-30T09:00:00Z"  # its status held
    assert by_type["Stalled"]["lastTransitionTime"] == "2025-01-30T10:00:00Z"
