"""decide() one behaviour at a time: invalid specs, commands, holds, timing, conditions and restarts."""

from __future__ import annotations

import dataclasses
import datetime

from modelrollout.api import commands, labels, strategies, verdicts
from modelrollout.api import status as api_status
from modelrollout.api.status import ConditionType, Outcome, PauseReason, Phase
from modelrollout.core import observation, progression, revisions
from tests.core import world

Track = labels.Track
Verb = commands.Verb


def started(**options: object) -> world.World:
    w = world.World(world.make_spec(**options))  # type: ignore[arg-type]
    w.settle()
    return w


def in_rollout(**options: object) -> world.World:
    w = started(**options)
    w.change(version="2.0.0")
    return w


def test_a_spec_problem_degrades_and_holds_the_world() -> None:
    w = in_rollout()
    w.run(until=lambda x: x.status.canary_weight == 25)
    seen = w.observe()
    problem = "the API server refused the Deployment: spec.template.spec.containers[0].image: Required value"
    seen = observation.Observation(seen.now, seen.generation, seen.revisions, seen.pool, spec_problem=problem)
    made = progression.decide(w.spec, w.status, seen)
    assert made.status.phase is Phase.DEGRADED and made.status.message == problem
    degraded = made.status.condition(ConditionType.DEGRADED)
    assert degraded is not None and (degraded.status.value, degraded.reason) == ("True", "InvalidSpec")
    assert [(x.revision, x.replicas) for x in made.workloads] == [(w.stable, 4), (w.status.canary_revision, 1)]
    assert made.traffic.canary_weight == 25 and [e.reason for e in made.events] == ["InvalidSpec"]
    again = progression.decide(w.spec, made.status, seen)
    assert again.events == ()  # the same problem is not announced twice
    w.status = made.status
    w.settle()  # the problem went away: the rollout carries on
    assert w.stable == revisions.of_spec(w.spec)


def test_a_spec_the_core_cannot_plan_degrades_instead_of_crashing() -> None:
    spec = world.make_spec()
    broken = spec.model_copy(
        update={"strategy": strategies.Strategy.model_construct(type=strategies.StrategyType.CANARY)}
    )
    made = progression.decide(broken, api_status.ModelDeploymentStatus(), world.World(spec).observe())
    assert made.status.phase is Phase.DEGRADED and "canary" in (made.status.message or "")
    assert made.workloads == ()


def test_a_command_is_handled_once() -> None:
    w = in_rollout(steps=[{"setWeight": 25}, {"pause": {}}])
    w.run(until=lambda x: x.status.pause_reason is PauseReason.AWAITING_PROMOTION)
    w.command = commands.Command(verb=Verb.PROMOTE, id="same")
    w.tick()
    assert w.status.phase is Phase.PROMOTING
    w.command = commands.Command(verb=Verb.PROMOTE, id="same")  # the annotation stays in place
    made = w.tick()
    assert not [e for e in made.events if e.reason.startswith("Command")]
    assert w.status.last_command is not None and w.status.last_command.id == "same"


def test_an_unparsable_command_is_announced_and_changes_nothing() -> None:
    w = started()
    seen = w.observe()
    seen = observation.Observation(
        seen.now, seen.generation, seen.revisions, seen.pool, command_error="'promot' is not a verb"
    )
    made = progression.decide(w.spec, w.status, seen)
    assert [(e.type.value, e.reason) for e in made.events] == [("Warning", "CommandRefused")]
    assert made.status.last_command is None and made.status.phase is Phase.SUCCEEDED


def test_commands_without_a_rollout_are_refused() -> None:
    w = started()
    for verb in (Verb.PROMOTE, Verb.PROMOTE_FULL, Verb.ABORT, Verb.PAUSE, Verb.RESUME, Verb.RETRY, Verb.UNDO):
        w.send(verb)
        ack = w.status.last_command
        assert ack is not None and ack.verb is verb and not ack.accepted, verb
    assert w.status.phase is Phase.SUCCEEDED


def test_promote_does_not_skip_a_step_that_waits_for_pods() -> None:
    w = in_rollout()
    made = w.tick()  # setWeight 25: its pod is not ready yet
    assert made.status.current_step == 0
    w.send(Verb.PROMOTE)
    ack = w.status.last_command
    assert ack is not None and not ack.accepted and "promote-full" in ack.message


def test_pause_during_promotion_and_resume() -> None:
    w = in_rollout(steps=[{"setWeight": 50}], max_extra=0)
    w.gpus = 4
    w.run(until=lambda x: x.status.phase is Phase.PROMOTING)
    w.send(Verb.PAUSE)
    assert w.status.phase is Phase.PAUSED
    w.run(ticks=10)
    assert w.status.phase is Phase.PAUSED and w.stable != revisions.of_spec(w.spec)
    w.send(Verb.RESUME)
    w.settle()
    assert w.stable == revisions.of_spec(w.spec)


def test_the_requeue_is_the_next_deadline_capped_at_the_interval() -> None:
    w = in_rollout(steps=[{"setWeight": 25}, {"pause": {"duration": "45s"}}])
    w.run(until=lambda x: x.status.pause_reason is PauseReason.STEP)
    assert w.decisions[-1].requeue_after == datetime.timedelta(seconds=30)  # the analysis interval
    made = w.tick()
    assert made.requeue_after == datetime.timedelta(seconds=15)  # the pause ends
    assert all(progression.MIN_REQUEUE <= m.requeue_after <= datetime.timedelta(seconds=30) for m in w.decisions)


def test_condition_transition_times_move_only_with_their_status() -> None:
    w = in_rollout()
    w.run(ticks=3)
    ready = w.status.condition(ConditionType.READY)
    assert ready is not None
    w.run(ticks=5)
    later = w.status.condition(ConditionType.READY)
    assert later is not None and later.last_transition_time == ready.last_transition_time
    assert later.observed_generation == w.generation == w.status.observed_generation


def test_after_a_restart_the_window_comes_from_the_status() -> None:
    w = in_rollout()
    w.run(until=lambda x: x.decisions[-1].analysis is not None)
    asked = w.decisions[-1].analysis
    assert progression.window(w.spec, w.status, w.now) == asked
    assert asked is not None and asked.candidate_track is Track.CANARY
    assert asked.since == w.status.analysis_started_at


def test_the_analysis_window_is_final_at_the_end_of_an_analyze_step() -> None:
    w = in_rollout()
    w.run(until=lambda x: x.decisions[-1].analysis is not None and x.decisions[-1].analysis.final)
    end = (w.status.step_started_at or world.T0) + datetime.timedelta(minutes=5)
    assert w.now == end


def test_a_new_version_while_the_first_deploys_replaces_it() -> None:
    w = world.World(world.make_spec())
    w.tick()
    first = w.stable
    w.change(version="2.0.0")
    made = w.tick()
    assert made.status.phase is Phase.PENDING and w.stable == revisions.of_spec(w.spec) != first
    assert [x.revision for x in made.workloads] == [w.stable]
    w.settle()
    assert w.outcomes() == [(w.stable, Outcome.PROMOTED)]


def test_pods_pending_for_capacity_hold_and_never_fail() -> None:
    w = in_rollout(progressDeadline="1m")
    w.tick()
    candidate = w.status.canary_revision or ""
    seen = w.observe()
    pending = {**seen.revisions, candidate: observation.Pods(desired=1, ready=0, unschedulable=1)}
    late = seen.now + datetime.timedelta(hours=1)
    made = progression.decide(w.spec, w.status, observation.Observation(late, seen.generation, pending, seen.pool))
    assert made.status.canary_revision == candidate and made.status.phase is Phase.PROGRESSING
    progressing = made.status.condition(ConditionType.PROGRESSING)
    assert progressing is not None and progressing.reason == "InsufficientCapacity"
    assert progressing.message.startswith("1 canary pod Pending: needs 1 more nvidia.com/gpu")
    assert "InsufficientCapacity" in [e.reason for e in made.events]
    crashing = {**seen.revisions, candidate: observation.Pods(desired=1, ready=0, crashing=1, restarts=9)}
    made = progression.decide(w.spec, w.status, observation.Observation(late, seen.generation, crashing, seen.pool))
    assert made.status.phase is Phase.ROLLED_BACK  # the same wait with crash-looping pods fails


def test_weight_goes_to_zero_when_the_candidate_loses_its_ready_pods() -> None:
    w = in_rollout(steps=[{"setWeight": 25}, {"pause": {}}])
    w.run(until=lambda x: x.status.canary_weight == 25)
    candidate = w.status.canary_revision or ""
    w.crashing.add(candidate)
    w.pods[candidate].ready = 0
    made = w.tick()
    assert made.traffic.canary_weight == 0 and made.status.canary_weight == 0


def test_shadow_then_manual_waits_for_promote_and_switches_at_once() -> None:
    w = in_rollout(strategy="Shadow", provider="Istio", max_extra=4, shadow={"then": "Manual"})
    w.run(ticks=60)
    assert w.status.pause_reason is PauseReason.AWAITING_PROMOTION
    assert w.decisions[-1].traffic.mirror_percent == 50
    w.send(Verb.PROMOTE)
    w.settle()
    assert w.stable == revisions.of_spec(w.spec)
    assert all(m.traffic.canary_weight == 0 for m in w.decisions)  # all at once: never a partial weight


def test_post_promotion_analysis_passes_and_ends() -> None:
    w = in_rollout(
        strategy="BlueGreen",
        max_extra=4,
        blue_green={"scaleDownDelay": "10m", "postPromotionAnalysis": {"duration": "2m"}},
    )
    w.run(until=lambda x: x.stable == revisions.of_spec(x.spec))
    asked = w.decisions[-1].analysis
    assert w.status.phase is Phase.PROMOTING and asked is not None and asked.candidate_track is Track.STABLE
    w.run(until=lambda x: x.status.phase is Phase.SUCCEEDED)
    assert "AnalysisPassed" in w.reasons()
    looks = [m.analysis for m in w.decisions if m.analysis and m.analysis.candidate_track is Track.STABLE]
    assert looks[-1].final


def test_undo_to_a_named_revision_and_refusals() -> None:
    w = started()
    first = w.stable
    for version in ("2.0.0", "3.0.0"):
        w.change(version=version)
        w.settle()
    w.change(version="4.0.0")
    w.tick()
    w.send(Verb.UNDO, to_revision=first)
    assert w.status.last_command is not None and not w.status.last_command.accepted  # a rollout runs
    w.settle()
    w.send(Verb.UNDO, to_revision="0123456789")
    assert w.status.last_command is not None and not w.status.last_command.accepted
    w.send(Verb.UNDO, to_revision=first)
    assert w.status.canary_revision == first
    w.settle()
    assert w.stable == first and revisions.of_spec(w.spec) in w.status.rejected_revisions
    w.send(Verb.RETRY)
    w.settle()
    assert w.stable == revisions.of_spec(w.spec)


def test_a_failed_analysis_records_the_failing_metric_and_its_values() -> None:
    w = in_rollout()
    w.run(until=lambda x: x.decisions[-1].analysis is not None)
    asked = w.decisions[-1].analysis
    assert asked is not None
    metrics = [
        api_status.MetricResult(
            metric="error-rate",
            verdict=verdicts.Verdict.FAIL,
            stable=0.01,
            canary=0.31,
            reason="canary error rate 0.31 > slo max 0.01",
            at=w.now,
        ),
        api_status.MetricResult(metric="p99-latency", verdict=verdicts.Verdict.PASS, at=w.now),
    ]
    seen = w.observe()
    failed = observation.Evidence(asked, verdicts.Verdict.FAIL, metrics, reason="failed: error-rate")
    seen = observation.Observation(seen.now, seen.generation, seen.revisions, seen.pool, evidence=failed)
    made = progression.decide(w.spec, w.status, seen)
    reason = made.status.history[-1].reason
    assert made.status.phase is Phase.ROLLED_BACK
    assert reason == "AnalysisFailed: error-rate: canary 0.31 vs stable 0.01 (canary error rate 0.31 > slo max 0.01)"
    assert [m.metric for m in made.status.analysis] == ["error-rate", "p99-latency"]
    assert any(e.type.value == "Warning" and "canary 0.31 vs stable 0.01" in e.message for e in made.events)


def test_stale_evidence_is_ignored() -> None:
    w = in_rollout()
    w.run(until=lambda x: x.decisions[-1].analysis is not None)
    asked = w.decisions[-1].analysis
    assert asked is not None
    stale = observation.Evidence(
        dataclasses.replace(asked, since=asked.since - datetime.timedelta(minutes=1)), verdicts.Verdict.FAIL
    )
    seen = w.observe()
    seen = observation.Observation(seen.now, seen.generation, seen.revisions, seen.pool, evidence=stale)
    assert progression.decide(w.spec, w.status, seen).status.phase is Phase.PROGRESSING


def test_a_plan_shortened_during_a_rollout_continues_at_its_last_step() -> None:
    w = in_rollout(steps=[{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}])
    w.run(until=lambda x: x.status.current_step == 3)
    w.change(strategy={"type": "Canary", "canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}})
    made = w.tick()
    assert made.status.current_step == 1 and made.status.phase is Phase.PAUSED
    assert made.status.canary_revision == revisions.of_spec(w.spec)


def test_a_first_version_without_room_says_why_then_degrades_at_the_deadline() -> None:
    w = world.World(world.make_spec(replicas=4, progressDeadline="10m"), gpus=3)
    w.run(until=lambda x: x.now - world.T0 > datetime.timedelta(minutes=1))
    assert w.status.phase is Phase.PENDING
    assert "3/4 pods ready; 1 stable pod Pending: needs 1 more nvidia.com/gpu" in (w.status.message or "")
    progressing = w.status.condition(ConditionType.PROGRESSING)
    assert progressing is not None and progressing.reason == "InsufficientCapacity"

    w.run(until=lambda x: x.now - world.T0 > datetime.timedelta(minutes=11))
    assert w.status.phase is Phase.DEGRADED and "after 10m (spec.progressDeadline)" in (w.status.message or "")
    degraded = w.status.condition(ConditionType.DEGRADED)
    assert degraded is not None and (degraded.status.value, degraded.reason) == ("True", "ProgressDeadlineExceeded")
    assert w.last is not None
    assert [(x.revision, x.replicas) for x in w.last.workloads] == [(w.status.stable_revision, 4)]  # nothing undone

    w.gpus = 4  # room at last: the first version becomes ready and the object recovers
    w.settle()
    assert w.status.phase is Phase.SUCCEEDED


def test_a_route_its_gateway_refuses_degrades_and_holds_until_accepted() -> None:
    w = in_rollout()
    w.run(until=lambda x: x.status.canary_weight == 25)
    seen = w.observe()
    problem = "HTTPRoute scorer: parent gw: Accepted is False (NoMatchingParent: no Gateway gw)"
    refused = dataclasses.replace(seen, route_problem=problem)
    made = progression.decide(w.spec, w.status, refused)
    assert made.status.phase is Phase.DEGRADED and made.status.message == problem
    degraded = made.status.condition(ConditionType.DEGRADED)
    assert degraded is not None and (degraded.status.value, degraded.reason) == ("True", "RouteNotAccepted")
    assert made.traffic.canary_weight == 25 and [e.reason for e in made.events] == ["RouteNotAccepted"]
    assert progression.decide(w.spec, made.status, refused).events == ()
    w.status = made.status
    w.settle()  # accepted again: the rollout carries on
    assert w.stable == revisions.of_spec(w.spec)
