"""Which moments of a rollout a tick passed through, from the status before and after it."""

from __future__ import annotations

from typing import Any

from modelrollout.api import notifications
from modelrollout.api import status as api_status
from modelrollout.core import notices

Moment = notifications.Moment
Phase = api_status.Phase


def status(**fields: Any) -> api_status.ModelDeploymentStatus:
    return api_status.ModelDeploymentStatus.model_validate(fields)


SERVING = status(phase="Succeeded", stableRevision="a")
STEP_0 = status(phase="Progressing", stableRevision="a", canaryRevision="b", currentStep=0)
STEP_1 = status(phase="Progressing", stableRevision="a", canaryRevision="b", currentStep=1)


def test_a_new_revision_starts_a_rollout() -> None:
    assert notices.moments(SERVING, STEP_0) == [Moment.STARTED]


def test_a_step_moves() -> None:
    assert notices.moments(STEP_0, STEP_1) == [Moment.STEP]


def test_nothing_changed_is_no_moment() -> None:
    assert notices.moments(STEP_1, STEP_1) == []


def test_a_pause_is_told_once() -> None:
    paused = status(phase="Paused", stableRevision="a", canaryRevision="b", currentStep=1, pauseReason="Command")
    assert notices.moments(STEP_1, paused) == [Moment.PAUSED]
    assert notices.moments(paused, paused) == []


def test_promoted_rolled_back_and_degraded_are_phases_entered() -> None:
    assert notices.moments(STEP_1, status(phase="Succeeded", stableRevision="b")) == [Moment.PROMOTED]
    assert notices.moments(STEP_1, status(phase="RolledBack", stableRevision="a")) == [Moment.ROLLED_BACK]
    assert notices.moments(SERVING, status(phase="Degraded", stableRevision="a")) == [Moment.DEGRADED]
    assert notices.moments(SERVING, SERVING) == []


def test_each_route_gets_the_moments_it_asked_for() -> None:
    routes = [
        notifications.Notification.model_validate({"urlSecret": {"name": "all"}}),
        notifications.Notification.model_validate({"urlSecret": {"name": "bad"}, "events": ["RolledBack", "Degraded"]}),
        notifications.Notification.model_validate({"urlSecret": {"name": "done"}, "events": ["Promoted"]}),
    ]
    assert notices.wanted(routes, [Moment.STARTED]) == [(0, [Moment.STARTED])]
    assert notices.wanted(routes, [Moment.ROLLED_BACK]) == [(0, [Moment.ROLLED_BACK]), (1, [Moment.ROLLED_BACK])]
    assert notices.wanted(routes, []) == []
