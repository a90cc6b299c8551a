"""Whole rollouts through the simulated world: one scenario per strategy and per way a rollout ends."""

from __future__ import annotations

import datetime

from modelrollout.api import commands, labels, verdicts
from modelrollout.api.status import ConditionType, Outcome, PauseReason, Phase
from modelrollout.core import revisions
from tests.core import world

Verdict = verdicts.Verdict
Track = labels.Track
Verb = commands.Verb


def started(spec_changes: dict[str, object] | None = None, **options: object) -> world.World:
    """A world whose first version is deployed and ready."""
    w = world.World(world.make_spec(**options))  # type: ignore[arg-type]
    w.settle()
    assert w.status.phase is Phase.SUCCEEDED
    return w


def condition(w: world.World, kind: ConditionType) -> tuple[str, str]:
    found = w.status.condition(kind)
    assert found is not None
    return found.status.value, found.reason


def test_first_version_is_pending_until_ready_then_succeeded() -> None:
    w = world.World(world.make_spec())
    first = w.tick()
    assert first.status.phase is Phase.PENDING
    assert [(x.track, x.replicas) for x in first.workloads] == [(Track.STABLE, 4)]
    assert first.status.stable_spec is not None and first.status.stable_spec.revision == revisions.of_spec(w.spec)
    assert condition(w, ConditionType.READY) == ("False", "Deploying")
    w.settle()
    assert w.status.phase is Phase.SUCCEEDED
    assert condition(w, ConditionType.READY) == ("True", "Serving")
    assert w.outcomes() == [(revisions.of_spec(w.spec), Outcome.PROMOTED)]


def test_replicas_apply_in_place_without_a_rollout() -> None:
    w = started()
    w.change(replicas=6)
    made = w.tick()
    assert [(x.track, x.replicas) for x in made.workloads] == [(Track.STABLE, 6)]
    assert made.status.phase is Phase.SUCCEEDED and made.status.canary_revision is None


def test_canary_walks_its_steps_and_promotes() -> None:
    w = started()
    old = w.stable
    w.change(version="2.0.0")
    new = revisions.of_spec(w.spec)
    w.settle()
    assert w.stable == new and w.status.phase is Phase.SUCCEEDED
    assert w.outcomes()[-1] == (new, Outcome.PROMOTED)
    assert old not in w.pods and w.pods[new].desired == 4
    weights = [made.traffic.canary_weight for made in w.decisions if made.traffic.candidate_revision == new]
    assert weights == sorted(weights[: weights.index(50) + 1]) + weights[weights.index(50) + 1 :]
    assert {25, 50} <= set(weights)
    reasons = w.reasons()
    assert reasons.count("StepStarted") == 4 and "AnalysisPassed" in reasons and "Promoted" in reasons


def test_canary_rolls_back_on_a_failed_analysis() -> None:
    w = started(rollback_delay="1m")
    old = w.stable
    w.change(version="2.0.0")
    new = revisions.of_spec(w.spec)
    w.judge = world.failing_for(new)
    w.run(until=lambda world_: world_.status.phase is Phase.ROLLED_BACK)
    made = w.decisions[-1]
    assert made.traffic.canary_weight == 0 and made.traffic.candidate_revision is None
    assert (made.workloads[0].revision, made.workloads[0].replicas) == (old, 4)
    assert any(x.revision == new and x.until is not None for x in made.workloads)  # kept for the delay
    assert new in w.status.rejected_revisions
    assert condition(w, ConditionType.DEGRADED) == ("True", "AnalysisFailed")
    assert condition(w, ConditionType.READY) == ("True", "Serving")
    assert w.status.history[-1].outcome is Outcome.ROLLED_BACK and "error-rate" not in w.status.history[-1].reason
    assert "RolledBack" in w.reasons()
    w.settle()
    assert old is not None and new not in w.pods and w.pods[old].desired == 4
    assert w.status.phase is Phase.ROLLED_BACK and "held back" in (w.status.message or "")
    for _ in range(20):  # the rejected revision is not rolled out again
        assert w.tick().status.canary_revision is None


def test_a_new_revision_during_a_rollout_restarts_from_stable() -> None:
    w = started()
    w.change(version="2.0.0")
    second = revisions.of_spec(w.spec)
    w.run(until=lambda world_: (world_.status.current_step or 0) >= 2)
    w.change(version="3.0.0")
    third = revisions.of_spec(w.spec)
    made = w.tick()
    assert made.status.canary_revision == third and made.status.current_step == 0
    assert made.traffic.canary_weight == 0
    assert second not in {x.revision for x in made.workloads}
    assert (second, Outcome.SUPERSEDED) in w.outcomes()
    w.settle()
    assert w.stable == third


def test_spec_back_to_stable_drops_the_candidate() -> None:
    w = started()
    w.change(version="2.0.0")
    w.run(ticks=3)
    w.change(version="1.0.0")
    made = w.tick()
    assert made.status.phase is Phase.SUCCEEDED and made.status.canary_revision is None
    assert len(made.workloads) == 1


def test_error_holds_without_promotion_or_rollback_then_carries_on() -> None:
    w = started()
    w.change(version="2.0.0")
    new = revisions.of_spec(w.spec)
    w.judge = world.always(Verdict.ERROR)
    w.run(ticks=60)
    assert w.status.phase is Phase.PAUSED and w.status.canary_revision == new
    assert condition(w, ConditionType.DEGRADED) == ("True", "MetricsUnavailable")
    assert [outcome for _, outcome in w.outcomes()] == [Outcome.PROMOTED]  # only the first version
    w.judge = world.passing
    w.settle()
    assert w.stable == new


def test_inconclusive_extends_then_pauses_for_a_person() -> None:
    w = started()
    w.change(version="2.0.0")
    w.judge = world.always(Verdict.INCONCLUSIVE)
    w.run(ticks=100)
    assert w.status.phase is Phase.PAUSED and w.status.pause_reason is PauseReason.INCONCLUSIVE
    assert w.reasons().count("AnalysisExtended") == 2
    w.send(Verb.PROMOTE)
    assert w.status.last_command is not None and w.status.last_command.accepted
    w.judge = world.passing
    w.settle()
    assert w.stable == revisions.of_spec(w.spec)


def test_failed_analysis_pauses_when_rollback_is_not_automatic() -> None:
    w = started(automatic=False)
    w.change(version="2.0.0")
    w.judge = world.failing_for(revisions.of_spec(w.spec))
    w.run(ticks=30)
    assert w.status.phase is Phase.PAUSED and w.status.pause_reason is PauseReason.FAILED_ANALYSIS
    assert condition(w, ConditionType.DEGRADED) == ("True", "AnalysisFailed")
    w.send(Verb.ABORT)
    assert w.status.phase is Phase.ROLLED_BACK and w.status.history[-1].outcome is Outcome.ABORTED


def test_smoke_test_before_any_traffic_and_its_failure_rolls_back() -> None:
    w = started(smoke=True)
    w.change(version="2.0.0")
    new = revisions.of_spec(w.spec)
    w.smoke = lambda revision: False
    w.run(until=lambda world_: world_.status.phase is Phase.ROLLED_BACK)
    assert all(made.traffic.canary_weight == 0 for made in w.decisions)
    asked = [made.smoke_test for made in w.decisions if made.smoke_test]
    assert asked == [new]
    assert "HTTP 500" in w.status.history[-1].reason
    assert condition(w, ConditionType.DEGRADED) == ("True", "SmokeTestFailed")


def test_smoke_test_result_survives_a_restart() -> None:
    w = started(smoke=True)
    w.change(version="2.0.0")
    w.run(until=lambda world_: world_.status.smoke_test is not None)
    w.restart()
    w.settle()
    assert [made.smoke_test for made in w.decisions].count(revisions.of_spec(w.spec)) == 1


def test_crash_looping_candidate_rolls_back_after_the_progress_deadline() -> None:
    w = started(progressDeadline="2m")
    w.change(version="2.0.0")
    new = revisions.of_spec(w.spec)
    w.crashing.add(new)
    w.run(until=lambda world_: world_.status.phase is Phase.ROLLED_BACK)
    assert w.now - world.T0 < datetime.timedelta(minutes=10)
    assert condition(w, ConditionType.DEGRADED) == ("True", "ProgressDeadlineExceeded")
    assert "crash-looping" in w.status.history[-1].reason
    assert "CrashLoopBackOff: back-off" in w.status.history[-1].reason, "the kubelet's reason is kept"


def test_no_surge_budget_replaces_stable_pods_one_at_a_time() -> None:
    w = started(max_extra=0, gpus=1)
    w.gpus = 4
    w.change(version="2.0.0")
    new = revisions.of_spec(w.spec)
    w.settle()
    assert w.stable == new
    for made in w.decisions:
        assert sum(x.replicas for x in made.workloads) <= 4
    assert w.pods[new].desired == 4


def test_replica_ratio_weights_follow_ready_pods() -> None:
    w = started(provider="ReplicaRatio", steps=[{"setWeight": 25}, {"pause": {"duration": "1m"}}])
    w.change(version="2.0.0")
    w.run(until=lambda world_: world_.status.phase is Phase.PAUSED)
    made = w.decisions[-1]
    assert [(x.track, x.replicas) for x in made.workloads] == [(Track.STABLE, 3), (Track.CANARY, 1)]
    assert made.status.canary_weight == 25
    w.settle()
    assert w.stable == revisions.of_spec(w.spec)


def test_blue_green_with_room_previews_then_switches_and_keeps_the_old_pods() -> None:
    w = started(strategy="BlueGreen", max_extra=4, blue_green={"scaleDownDelay": "5m"})
    old = w.stable
    w.change(version="2.0.0")
    new = revisions.of_spec(w.spec)
    w.run(until=lambda world_: world_.stable == new)
    made = w.decisions[-1]
    assert made.traffic.stable_revision == new and made.traffic.canary_weight == 0
    before = [m for m in w.decisions if m.traffic.candidate_revision == new]
    assert all(m.traffic.canary_weight == 0 for m in before)  # no user traffic before the switch
    assert [(x.revision, x.replicas) for x in made.workloads] == [(new, 4), (old, 4)]
    w.settle()
    assert old not in w.pods


def test_blue_green_without_room_holds_with_the_missing_gpus() -> None:
    w = started(strategy="BlueGreen", max_extra=8, gpus=2)
    w.gpus = 12
    w.change(version="2.0.0")
    made = w.run(ticks=5).decisions[-1]
    assert made.status.phase is Phase.PROGRESSING
    progressing = made.status.condition(ConditionType.PROGRESSING)
    assert progressing is not None and progressing.reason == "InsufficientCapacity"
    assert progressing.message == "needs 8 more nvidia.com/gpu, 4 free in pool a100: 4 missing"
    assert len(made.workloads) == 2 and made.workloads[1].replicas == 0
    w.gpus = 16
    w.settle()
    assert w.stable == revisions.of_spec(w.spec)


def test_blue_green_abort_during_the_delay_switches_back_at_once() -> None:
    w = started(strategy="BlueGreen", max_extra=4, blue_green={"scaleDownDelay": "10m"})
    old = w.stable
    w.change(version="2.0.0")
    new = revisions.of_spec(w.spec)
    w.run(until=lambda world_: world_.stable == new)
    made = w.send(Verb.ABORT)
    assert made.traffic.stable_revision == old and made.status.phase is Phase.ROLLED_BACK
    assert new in made.status.rejected_revisions


def test_blue_green_post_promotion_failure_switches_back() -> None:
    w = started(
        strategy="BlueGreen",
        max_extra=4,
        blue_green={"scaleDownDelay": "10m", "postPromotionAnalysis": {"duration": "2m"}},
    )
    old = w.stable
    w.change(version="2.0.0")
    new = revisions.of_spec(w.spec)
    w.run(until=lambda world_: world_.stable == new)
    assert w.status.phase is Phase.PROMOTING
    w.judge = world.failing_for(new)
    w.run(until=lambda world_: world_.status.phase is Phase.ROLLED_BACK)
    assert w.stable == old and new in w.status.rejected_revisions


def test_blue_green_manual_waits_for_promote() -> None:
    w = started(strategy="BlueGreen", max_extra=4, blue_green={"autoPromote": False})
    w.change(version="2.0.0")
    w.run(ticks=20)
    assert w.status.phase is Phase.PAUSED and w.status.pause_reason is PauseReason.AWAITING_PROMOTION
    w.send(Verb.PROMOTE)
    w.settle()
    assert w.stable == revisions.of_spec(w.spec)


def test_shadow_mirrors_then_hands_over_to_canary() -> None:
    w = started(strategy="Shadow", provider="Istio", max_extra=4)
    w.change(version="2.0.0")
    new = revisions.of_spec(w.spec)
    w.settle()
    assert w.stable == new
    tracks = [m.traffic.candidate_track for m in w.decisions if m.traffic.candidate_revision == new]
    assert tracks[0] is Track.SHADOW and tracks[-1] is Track.CANARY
    mirrored = [m for m in w.decisions if m.traffic.mirror_percent]
    assert mirrored and all(m.traffic.mirror_percent == 50 and m.traffic.canary_weight == 0 for m in mirrored)
    assert "Handover" in w.reasons()


def test_manual_pause_resume_gives_the_step_its_time_back() -> None:
    w = started(steps=[{"setWeight": 25}, {"pause": {"duration": "10m"}}])
    w.change(version="2.0.0")
    w.run(until=lambda world_: world_.status.pause_reason is PauseReason.STEP)
    started_at = w.status.step_started_at
    assert started_at is not None
    w.send(Verb.PAUSE)
    assert w.status.pause_reason is PauseReason.COMMAND
    w.run(ticks=30)  # 15 minutes paused: the timer does not run
    assert w.status.pause_reason is PauseReason.COMMAND and w.status.current_step == 1
    w.send(Verb.RESUME)
    assert w.status.step_started_at is not None and w.status.step_started_at > started_at
    assert w.status.pause_reason is PauseReason.STEP
    w.settle()
    assert w.stable == revisions.of_spec(w.spec)


def test_promote_full_and_commands_for_another_revision_are_refused() -> None:
    w = started()
    w.change(version="2.0.0")
    w.run(ticks=3)
    w.send(Verb.PROMOTE_FULL, revision="0000000000")
    assert w.status.last_command is not None and not w.status.last_command.accepted
    w.send(Verb.PROMOTE_FULL)
    assert w.status.phase is Phase.PROMOTING
    w.settle()
    assert w.stable == revisions.of_spec(w.spec)


def test_abort_then_retry_then_undo() -> None:
    w = started()
    first = w.stable
    w.change(version="2.0.0")
    second = revisions.of_spec(w.spec)
    w.run(ticks=4)
    w.send(Verb.ABORT)
    assert w.status.phase is Phase.ROLLED_BACK and second in w.status.rejected_revisions
    w.settle()
    w.send(Verb.RETRY)
    assert w.status.canary_revision == second
    w.settle()
    assert w.stable == second
    w.send(Verb.UNDO)
    assert w.status.canary_revision == first and second in w.status.rejected_revisions
    assert "held back" in (w.status.last_command.message if w.status.last_command else "")
    w.settle()
    assert w.stable == first and w.status.phase is Phase.SUCCEEDED
    assert "held back" in (w.status.message or "")
    for _ in range(10):
        assert w.tick().status.canary_revision is None


def test_a_preview_too_big_for_the_budget_is_promoted_like_a_canary() -> None:
    w = started(strategy="BlueGreen", replicas=4, max_extra=2, blue_green={"previewReplicas": 2})
    w.gpus = 6
    w.change(version="2.0.0")
    new = revisions.of_spec(w.spec)
    w.run(until=lambda world_: world_.stable == new)
    tracks = [m.traffic.candidate_track for m in w.decisions if m.traffic.candidate_revision == new]
    assert tracks[0] is Track.PREVIEW and tracks[-1] is Track.CANARY
    switch = next(m for m in w.decisions if m.traffic.stable_revision == new)
    serving = switch.status.tracks.stable if switch.status.tracks else None
    assert serving is not None and (serving.revision, serving.ready) == (new, 4)  # no switch onto 2 pods
    assert all(sum(x.replicas for x in m.workloads) <= 6 for m in w.decisions)


def test_scaled_to_zero_when_serving_runs_no_pod_and_stays_succeeded() -> None:
    w = started()
    w.change(replicas=0)
    made = w.tick()
    assert [(x.track, x.replicas) for x in made.workloads] == [(Track.STABLE, 0)]
    assert made.status.phase is Phase.SUCCEEDED and made.status.replicas == 0
    assert "scaled to zero" in made.status.message
    w.change(replicas=3)
    w.settle()
    assert w.pods[w.stable].desired == 3 and w.status.canary_revision is None


def test_scaled_to_zero_mid_canary_pauses_judges_nothing_then_resumes_the_step() -> None:
    w = started(steps=[{"setWeight": 50}, {"analyze": {"duration": "5m"}}])
    old = w.stable
    w.change(version="2.0.0")
    new = revisions.of_spec(w.spec)
    w.run(until=lambda world_: world_.status.current_step == 1)
    w.change(replicas=0)
    w.judge = world.failing_for(new)  # a verdict asked for now would roll back: none may be
    made = w.tick()
    assert [x.replicas for x in made.workloads[:2]] == [0, 0] and made.analysis is None
    assert (made.status.phase, made.status.pause_reason) == (Phase.PAUSED, PauseReason.SCALED_TO_ZERO)
    assert condition(w, ConditionType.PROGRESSING) == ("False", "ScaledToZero")
    w.run(ticks=40)  # past the step's 5 minutes and the progress deadline: nothing fails
    assert (w.status.phase, w.status.canary_revision, w.status.current_step) == (Phase.PAUSED, new, 1)
    assert w.outcomes()[-1] == (old, Outcome.PROMOTED) and "ScaledToZero" in w.reasons()
    w.judge = world.passing
    w.change(replicas=4)
    resumed = w.tick()
    assert resumed.status.pause_reason is None and "Resumed" in w.reasons()
    assert resumed.status.step_started_at is not None and resumed.status.step_started_at >= made.status.step_started_at
    w.settle()
    assert w.stable == new and w.pods[new].desired == 4


def test_a_pause_that_needs_a_person_outlives_a_scale_to_zero() -> None:
    w = started(steps=[{"setWeight": 25}, {"pause": {"duration": "10m"}}])
    w.change(version="2.0.0")
    w.run(until=lambda world_: world_.status.pause_reason is PauseReason.STEP)
    w.send(Verb.PAUSE)
    w.change(replicas=0)
    w.run(ticks=5)
    assert w.status.pause_reason is PauseReason.COMMAND
    w.change(replicas=4)
    w.run(ticks=5)
    assert w.status.pause_reason is PauseReason.COMMAND and w.status.phase is Phase.PAUSED


def test_a_scale_up_beyond_the_pool_runs_what_fits_and_reports_the_rest() -> None:
    w = started()
    w.gpus = 6  # the pool: 4 GPUs held by the stable pods, 2 free
    w.change(replicas=9)
    made = w.tick()
    assert [(x.track, x.replicas) for x in made.workloads] == [(Track.STABLE, 6)]
    assert made.status.phase is Phase.SUCCEEDED
    assert condition(w, ConditionType.PROGRESSING) == ("True", "InsufficientCapacity")
    assert "6 fit, 3 missing" in made.status.message and "InsufficientCapacity" in w.reasons()
    w.run(ticks=10)
    assert w.pods[w.stable].desired == 6 and all(item.scheduled == item.desired for item in w.pods.values())
    w.gpus = 12  # GPUs freed elsewhere: the rest follows at the next look
    w.run(ticks=10)
    assert w.pods[w.stable].desired == 9
    assert condition(w, ConditionType.PROGRESSING) == ("False", "RolloutComplete")


def test_a_scale_up_beyond_the_pool_mid_canary_goes_on_with_what_fits() -> None:
    w = started()
    w.gpus = 6  # 4 GPUs held by the stable pods, 2 free: exactly maxExtraGPUs
    w.change(version="2.0.0")
    new = revisions.of_spec(w.spec)
    w.run(until=lambda world_: world_.status.canary_weight == 25)
    w.change(replicas=9)
    made = w.tick()
    assert sum(x.replicas for x in made.workloads) <= 6, "never more pods than the pool holds"
    assert condition(w, ConditionType.PROGRESSING) == ("True", "InsufficientCapacity")
    assert "scaling to 9 replicas: 6 fit, 3 missing" in made.status.message
    w.settle()
    assert all(sum(x.replicas for x in m.workloads) <= 6 for m in w.decisions[-200:])
    assert all(item.scheduled == item.desired for item in w.pods.values()), "no pod left Pending"
    assert w.stable == new and w.pods[new].desired == 6
    assert "6 fit, 3 missing" in w.status.message


def test_mid_blue_green_the_preview_follows_a_replicas_change() -> None:
    w = started(strategy="BlueGreen", max_extra=8, blue_green={"autoPromote": False})
    old = w.stable
    w.change(version="2.0.0")
    new = revisions.of_spec(w.spec)
    w.run(until=lambda world_: world_.status.pause_reason is PauseReason.AWAITING_PROMOTION)
    assert (w.pods[old].desired, w.pods[new].desired) == (4, 4)
    w.change(replicas=6)
    w.run(ticks=10)
    assert (w.pods[old].desired, w.pods[new].desired) == (6, 6)
    assert w.status.canary_revision == new and w.status.pause_reason is PauseReason.AWAITING_PROMOTION
