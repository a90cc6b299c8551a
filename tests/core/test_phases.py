"""The phase state machine: the table reads well, every phase can be reached, and derive() maps facts."""

from __future__ import annotations

import pytest

from modelrollout.api.status import Phase
from modelrollout.core import phases


def test_every_transition_says_why() -> None:
    for (before, after), why in phases.TRANSITIONS.items():
        assert before is not after and why, (before, after)
        assert phases.why(before, after) == why


def test_every_phase_is_reachable_from_a_new_object_and_can_leave_degraded() -> None:
    reached: set[Phase | None] = {None}
    while True:
        more = {after for before, after in phases.TRANSITIONS if before in reached} - reached
        if not more:
            break
        reached |= more
    assert reached == {None, *Phase}
    assert {after for before, after in phases.TRANSITIONS if before is Phase.DEGRADED} == set(Phase) - {Phase.DEGRADED}


@pytest.mark.parametrize(
    "before, after, expected",
    [
        (Phase.PROGRESSING, Phase.PAUSED, True),
        (Phase.SUCCEEDED, Phase.PROMOTING, False),
        (Phase.PAUSED, Phase.PAUSED, True),
        (None, Phase.SUCCEEDED, False),
        (Phase.ROLLED_BACK, Phase.PROMOTING, False),
        (Phase.PENDING, Phase.PROGRESSING, False),
    ],
)
def test_allowed(before: Phase | None, after: Phase, expected: bool) -> None:
    assert phases.allowed(before, after) is expected


def test_why_refuses_a_transition_not_in_the_table() -> None:
    with pytest.raises(ValueError, match="cannot become"):
        phases.why(Phase.SUCCEEDED, Phase.PROMOTING)
    assert phases.why(Phase.PAUSED, Phase.PAUSED) == "no change"


FACTS = {
    "candidate": False,
    "paused": False,
    "promoting": False,
    "deploying": False,
    "stuck": False,
    "rolled_back": False,
}


@pytest.mark.parametrize(
    "facts, expected",
    [
        ({"candidate": True}, Phase.PROGRESSING),
        ({"candidate": True, "promoting": True}, Phase.PROMOTING),
        ({"candidate": True, "paused": True, "promoting": True}, Phase.PAUSED),
        ({"promoting": True}, Phase.PROMOTING),  # a blue-green switch judged after the fact
        ({"deploying": True}, Phase.PENDING),
        ({"deploying": True, "stuck": True}, Phase.DEGRADED),
        ({"rolled_back": True}, Phase.ROLLED_BACK),
        ({}, Phase.SUCCEEDED),
    ],
)
def test_derive(facts: dict[str, bool], expected: Phase) -> None:
    assert phases.derive(**{**FACTS, **facts}) is expected
