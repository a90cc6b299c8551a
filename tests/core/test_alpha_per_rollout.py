"""One alpha per rollout: the phases that judge afresh share it, and a promote past a failure mints none."""

from __future__ import annotations

import dataclasses

import pytest

from modelrollout.api import commands, verdicts
from modelrollout.api import status as api_status
from modelrollout.api.status import PauseReason
from modelrollout.core import decision, revisions
from modelrollout.core.progression import turns
from tests.core import world
from tests.core.test_rollouts import started

Verb = commands.Verb


@pytest.mark.parametrize("options, phases", [
    ({}, ("canary",)),
    ({"strategy": "BlueGreen", "max_extra": 4}, ("preview",)),
    ({"strategy": "BlueGreen", "max_extra": 4,
      "blue_green": {"scaleDownDelay": "10m", "postPromotionAnalysis": {"duration": "2m"}}},
     ("preview", "post-promotion")),
    ({"strategy": "Shadow", "provider": "Istio", "max_extra": 4}, ("shadow", "canary")),
])
def test_the_phases_of_a_rollout_share_its_alpha(options, phases):
    spec = world.make_spec(**options)
    assert turns.analysis_phases(spec) == phases
    assert turns.alpha_share(spec) == pytest.approx(1.0 / len(phases))


def test_every_window_of_a_shadow_then_canary_rollout_runs_at_half_alpha():
    w = started(strategy="Shadow", provider="Istio", max_extra=4)
    w.change(version="2.0.0")
    w.settle()
    asked = [made.analysis for made in w.decisions if made.analysis is not None]
    tracks = {window.candidate_track.value for window in asked}
    assert tracks == {"shadow", "canary"}
    assert {window.alpha_share for window in asked} == {0.5}


def test_a_promote_past_a_failed_analysis_keeps_the_evidence_and_accepts_only_the_failed_test():
    w = started(automatic=False)
    w.change(version="2.0.0")
    w.judge = world.failing_for(revisions.of_spec(w.spec))
    w.run(ticks=30)
    assert w.status.pause_reason is PauseReason.FAILED_ANALYSIS
    since = w.status.analysis_started_at
    judged = [api_status.MetricResult(metric=name, verdict=verdict, at=w.now) for name, verdict in (
        ("error-rate", verdicts.Verdict.FAIL), ("p99-latency", verdicts.Verdict.PASS))]
    w.status = w.status.model_copy(update={"analysis": judged})
    w.judge = world.passing  # what the handlers judge once the failed test is accepted
    w.send(Verb.PROMOTE)
    assert w.status.last_command is not None and w.status.last_command.accepted
    assert w.status.analysis_started_at == since  # the window, and so every other test's evidence, goes on
    assert w.status.analysis_accepted == ["error-rate"]
    window = turns.window(w.spec, w.status, w.now)
    assert window is not None and window.accepted == frozenset({"error-rate"})
    w.settle()
    assert w.stable == revisions.of_spec(w.spec) and w.status.analysis_accepted == []


class _WarnedWorld(world.World):
    """Every evidence carries a p99 result whose buckets are too coarse for its tolerance."""

    def observe(self):  # type: ignore[no-untyped-def]
        seen = super().observe()
        if seen.evidence is None:
            return seen
        entry = api_status.MetricResult(metric="p99-latency", verdict=verdicts.Verdict.PASS, at=self.now,
                                        warning="p99 tolerance 10%: these buckets can only show a regression beyond x2")
        evidence = dataclasses.replace(seen.evidence, metrics=[entry])
        return dataclasses.replace(seen, evidence=evidence)


def test_buckets_too_coarse_is_said_once_as_a_warning_event():
    w = _WarnedWorld(world.make_spec())
    w.settle()
    w.change(version="2.0.0")
    w.settle()
    warned = [event for made in w.decisions for event in made.events if event.reason == "BucketsTooCoarse"]
    assert len(warned) == 1 and warned[0].type is decision.EventType.WARNING
    assert "beyond x2" in warned[0].message
