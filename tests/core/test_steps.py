"""Plans and stances: what each strategy asks for, and what is in effect at each step."""

from __future__ import annotations

import datetime

import pytest

from modelrollout.api import labels, strategies
from modelrollout.core import progression, steps
from modelrollout.core.strategies import blue_green, canary, shadow
from tests.core import world

Track = labels.Track
MINUTE = datetime.timedelta(minutes=1)
T0 = world.T0


def test_canary_plan_keeps_the_users_steps() -> None:
    section = strategies.Canary.model_validate(
        {"steps": [{"setWeight": 10}, {"analyze": {"duration": "5m"}}, {"pause": {}}, {"pause": {"duration": "2m"}}]}
    )
    assert canary.plan(section) == (
        steps.SetWeight(10),
        steps.Analyze(5 * MINUTE),
        steps.Pause(None),
        steps.Pause(2 * MINUTE),
    )


@pytest.mark.parametrize(
    "section, can_mirror, expected",
    [
        ({}, True, (steps.Preview(4),)),
        (
            {"prePromotionAnalysis": {"duration": "5m"}},
            True,
            (steps.Preview(4), steps.Mirror(100, 4, Track.PREVIEW), steps.Analyze(5 * MINUTE, Track.PREVIEW)),
        ),
        (
            {"autoPromote": False, "prePromotionAnalysis": {"duration": "5m"}},
            False,
            (steps.Preview(4), steps.Analyze(5 * MINUTE, Track.PREVIEW), steps.Pause(None, Track.PREVIEW)),
        ),
    ],
)
def test_blue_green_plan(section: dict[str, object], can_mirror: bool, expected: steps.Plan) -> None:
    assert blue_green.plan(strategies.BlueGreen.model_validate(section), 4, can_mirror) == expected


@pytest.mark.parametrize(
    "then, expected",
    [
        ("Canary", (steps.Mirror(50, 2), steps.Analyze(30 * MINUTE, Track.SHADOW))),
        ("Manual", (steps.Mirror(50, 2), steps.Analyze(30 * MINUTE, Track.SHADOW), steps.Pause(None, Track.SHADOW))),
    ],
)
def test_shadow_plan(then: str, expected: steps.Plan) -> None:
    section = strategies.Shadow.model_validate({"mirrorPercent": 50, "duration": "30m", "then": then})
    assert shadow.plan(section, 2) == expected


def test_a_shadow_hands_over_to_the_next_strategy_s_plan() -> None:
    spec = world.make_spec(strategy="Shadow", provider="Istio", max_extra=4, steps=[{"setWeight": 50}])
    assert progression.plan(spec) == (
        steps.Mirror(50, 2),
        steps.Analyze(10 * MINUTE, Track.SHADOW),
        steps.SetWeight(50),
    )


PLAN = (steps.SetWeight(10), steps.Analyze(5 * MINUTE), steps.SetWeight(50))
HANDOVER = (
    steps.Mirror(50, 2),
    steps.Analyze(MINUTE, Track.SHADOW),
    steps.Preview(4),
    steps.Pause(None, Track.PREVIEW),
)


@pytest.mark.parametrize(
    "plan, index, expected",
    [
        (PLAN, 1, steps.Stance(Track.CANARY, weight=10, step=steps.Analyze(5 * MINUTE))),
        (PLAN, 3, steps.Stance(Track.CANARY, weight=50, promoting=True)),
        (HANDOVER, 1, steps.Stance(Track.SHADOW, mirror=50, replicas=2, step=steps.Analyze(MINUTE, Track.SHADOW))),
        (HANDOVER, 3, steps.Stance(Track.PREVIEW, replicas=4, step=steps.Pause(None, Track.PREVIEW))),
        (HANDOVER, 4, steps.Stance(Track.PREVIEW, replicas=4, promoting=True)),
    ],
)
def test_stance(plan: steps.Plan, index: int, expected: steps.Stance) -> None:
    assert steps.stance(plan, index) == expected


def test_a_stance_outside_the_plan_is_an_error() -> None:
    with pytest.raises(IndexError):
        steps.stance(PLAN, 4)


@pytest.mark.parametrize(
    "step, extensions, expected",
    [
        (steps.Pause(2 * MINUTE), 0, T0 + 2 * MINUTE),
        (steps.Analyze(5 * MINUTE), 2, T0 + 15 * MINUTE),
        (steps.Pause(2 * MINUTE), 2, T0 + 2 * MINUTE),  # only analyses are extended
        (steps.SetWeight(5), 0, None),
        (steps.Pause(None), 0, None),
    ],
)
def test_deadline(step: steps.Step, extensions: int, expected: datetime.datetime | None) -> None:
    assert steps.deadline(step, T0, extensions) == expected


@pytest.mark.parametrize(
    "step, expected",
    [
        (steps.SetWeight(25), "setWeight 25"),
        (steps.Pause(None), "pause until promoted"),
        (steps.Pause(90 * datetime.timedelta(seconds=1)), "pause 1m30s"),
        (steps.Mirror(100, 2), "mirror 100% to 2 shadow pods"),
        (steps.Preview(4), "preview on 4 pods"),
        (steps.Analyze(5 * MINUTE), "analyze 5m"),
        (None, "promotion"),
    ],
)
def test_describe(step: steps.Step | None, expected: str) -> None:
    assert steps.describe(step) == expected
