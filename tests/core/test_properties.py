"""Properties of `decide` over random specs and random observation sequences.

Two drivers. The *chaos* driver feeds observations that need not follow from the last decision
(pods appear and vanish, verdicts and smoke results arrive at random, commands come at any
time, the spec changes), as a cluster under stress or a confused handler could; every decision
must still keep the invariants. The *world* driver runs a consistent simulated cluster to check
outcomes: rollbacks end at 100 % stable, ERROR never promotes or rolls back, rejected revisions
stay rejected, a new revision restarts from stable, and a restart reaches the same outcome.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from typing import Any

import hypothesis
from hypothesis import strategies as st

from modelrollout.api import commands, labels, verdicts
from modelrollout.api import status as api_status
from modelrollout.api.status import Outcome, Phase
from modelrollout.core import capacity, decision, observation, phases, progression, revisions
from tests.core import world

Verdict = verdicts.Verdict
EXAMPLES = int(os.environ.get("MODELROLLOUT_CORE_EXAMPLES", "60"))
"""Examples per property; raise it to search harder (the suite has passed 2000)."""
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
)


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments for `world.make_spec`: every strategy, provider and budget."""
    strategy = draw(st.sampled_from(["Canary", "BlueGreen", "Shadow"]))
    provider = draw(
        st.sampled_from(["GatewayAPI", "Istio"] if strategy == "Shadow" else ["GatewayAPI", "ReplicaRatio"])
    )
    replicas = draw(st.integers(1, 5))
    gpus = draw(st.sampled_from([None, 1, 2]))
    kind: dict[str, Any] = {}
    if strategy == "Canary":
        weights = sorted(draw(st.lists(st.integers(1, 100), min_size=1, max_size=3)))
        steps: list[dict[str, Any]] = []
        for weight in weights:
            steps.append({"setWeight": weight})
            steps.append(
                draw(st.sampled_from([{"analyze": {"duration": "1m"}}, {"pause": {"duration": "1m"}}, {"pause": {}}]))
            )
        kind["steps"] = steps
    if strategy == "BlueGreen" or strategy == "Shadow":
        section = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "autoPromote": st.booleans(),
                    "previewReplicas": st.integers(1, replicas),
                    "prePromotionAnalysis": st.just({"duration": "1m"}),
                },
            )
        )
        if draw(st.booleans()):
            section.update(postPromotionAnalysis={"duration": "1m"}, scaleDownDelay="2m")
        else:
            section["scaleDownDelay"] = draw(st.sampled_from(["0s", "1m"]))
        kind["blue_green"] = section
    if strategy == "Shadow":
        then = draw(st.sampled_from(["Canary", "BlueGreen", "Manual"]))
        kind["shadow"] = {"then": then, "duration": "1m", "replicas": draw(st.integers(1, replicas))}
        if then != "BlueGreen":
            del kind["blue_green"]
    beside = [kind.get("blue_green", {}).get("previewReplicas", replicas)] if "blue_green" in kind else []
    beside += [kind["shadow"]["replicas"]] if "shadow" in kind else []
    least = (gpus or 0) * max(beside, default=0)  # what the schema asks of maxExtraGPUs
    return {
        "strategy": strategy,
        "provider": provider,
        "replicas": replicas,
        "gpus": gpus,
        "max_extra": draw(st.integers(least, least + 4)),
        "smoke": draw(st.booleans()),
        "automatic": draw(st.booleans()),
        "rollback_delay": draw(st.sampled_from(["0s", "1m"])),
        "progressDeadline": "3m",
        **kind,
    }


def check(
    before: api_status.ModelDeploymentStatus, seen: observation.Observation, made: decision.Decision, spec: Any
) -> api_status.ModelDeploymentStatus:
    """The invariants of every decision; returns the status as the API server would store it."""
    after = made.status.phase
    assert after is not None and phases.allowed(before.phase, after), f"{before.phase} -> {after}"
    traffic = made.traffic
    assert 0 <= traffic.canary_weight <= 100 and 0 <= traffic.mirror_percent <= 100
    candidate = seen.pods(traffic.candidate_revision)
    if traffic.canary_weight or traffic.mirror_percent:
        assert candidate.ready > 0, "traffic to a candidate without ready pods"
    if after is not Phase.DEGRADED:
        budget = capacity.budget(spec, seen.pool)
        assert sum(item.replicas for item in made.workloads) <= budget.cap
        assert made.workloads[0].track is labels.Track.STABLE
    assert made.requeue_after >= progression.MIN_REQUEUE
    assert made.requeue_after <= progression.DEFAULT_INTERVAL
    stored = api_status.ModelDeploymentStatus.model_validate(made.status.model_dump(mode="json", by_alias=True))
    assert stored.observed_generation == seen.generation
    return stored


@st.composite
def observations(
    draw: st.DrawFn, made: decision.Decision | None, now: datetime.datetime, known: list[str]
) -> observation.Observation:
    revisions_ = {
        revision: observation.Pods(
            desired=(desired := draw(st.integers(0, 6))),
            ready=draw(st.integers(0, desired)),
            unschedulable=draw(st.integers(0, 2)),
            crashing=draw(st.integers(0, 1)),
        )
        for revision in known
        if draw(st.booleans())
    }
    evidence = None
    window = made.analysis if made else None
    if window is not None and draw(st.integers(0, 3)):
        if draw(st.integers(0, 5)) == 0:
            window = dataclasses.replace(window, since=window.since - datetime.timedelta(seconds=1))  # stale
        evidence = observation.Evidence(window, draw(st.sampled_from(list(Verdict))), reason="r")
    smoke = None
    if made is not None and made.smoke_test and draw(st.booleans()):
        smoke = api_status.SmokeResult(revision=made.smoke_test, passed=draw(st.booleans()), at=now)
    command = None
    if draw(st.integers(0, 5)) == 0:
        command = commands.Command(
            verb=draw(st.sampled_from(list(commands.Verb))),
            id=draw(st.text("abcdef", min_size=1, max_size=3)),
            revision=draw(st.sampled_from([None, *known])),
        )
    pool = None
    if draw(st.booleans()):
        allocatable = draw(st.integers(0, 30))
        requested = draw(st.integers(0, allocatable))
        pool = observation.Pool(allocatable, requested, held=draw(st.integers(0, requested)))
    return observation.Observation(
        now=now,
        generation=draw(st.integers(1, 3)),
        revisions=revisions_,
        pool=pool,
        smoke_test=smoke,
        evidence=evidence,
        command=command,
        spec_problem=draw(st.sampled_from([None] * 15 + ["the API server refused the Deployment"])),
    )


@SETTINGS
@hypothesis.given(specs(), st.data())
def test_random_observations_keep_every_invariant(options: dict[str, Any], data: st.DataObject) -> None:
    specs_ = [
        world.make_spec(**options),
        world.make_spec(**options, version="2.0.0"),
        world.make_spec(**options, version="3.0.0"),
    ]
    known = [revisions.of_spec(spec) for spec in specs_]
    status = api_status.ModelDeploymentStatus()
    now, made, spec = world.T0, None, specs_[0]
    for _ in range(data.draw(st.integers(5, 40))):
        if data.draw(st.integers(0, 6)) == 0:  # now and then the spec changes, or changes back
            spec = specs_[data.draw(st.integers(0, 2))]
        seen = data.draw(observations(made, now, known))
        made = progression.decide(spec, status, seen)
        status = check(status, seen, made, spec)
        now += (
            made.requeue_after if data.draw(st.booleans()) else datetime.timedelta(minutes=data.draw(st.integers(0, 3)))
        )


def judged(options: dict[str, Any]) -> dict[str, Any]:
    """The options with a pre-promotion analysis: a blue-green preview is judged by nothing else."""
    if "blue_green" not in options:
        return options
    return {**options, "blue_green": {**options["blue_green"], "prePromotionAnalysis": {"duration": "1m"}}}


def rolled_out(options: dict[str, Any], judge: world.Judge, ticks: int = 300) -> world.World:
    w = world.World(world.make_spec(**judged(options)))
    w.settle()
    w.change(version="2.0.0")
    w.judge = judge
    w.run(
        ticks,
        until=lambda x: (
            x.status.canary_revision is None
            and not x.status.scale_downs
            and x.status.phase in (Phase.SUCCEEDED, Phase.ROLLED_BACK)
        ),
    )
    return w


@SETTINGS
@hypothesis.given(specs())
def test_a_healthy_revision_is_promoted_by_every_strategy(options: dict[str, Any]) -> None:
    w = world.World(world.make_spec(**options))
    w.settle()
    w.change(version="2.0.0")
    new = revisions.of_spec(w.spec)
    for _ in range(40):  # promote whoever waits for a person
        w.run(40, until=lambda x: x.stable == new and x.status.analysis_started_at is None)
        if w.stable == new and w.status.analysis_started_at is None:
            break
        if w.status.phase is Phase.PAUSED:
            w.send(commands.Verb.PROMOTE)
    assert w.stable == new and w.status.history[-1].outcome is Outcome.PROMOTED
    assert w.pods[new].desired == w.spec.replicas


@SETTINGS
@hypothesis.given(specs())
def test_a_rollback_ends_at_full_stable_and_the_candidate_at_zero(options: dict[str, Any]) -> None:
    options = judged({**options, "automatic": True})
    w = world.World(world.make_spec(**options))
    w.settle()
    old = w.stable
    w.change(version="2.0.0")
    new = revisions.of_spec(w.spec)
    w.judge = world.failing_for(new)
    w.run(300, until=lambda x: x.status.phase is Phase.ROLLED_BACK)
    assert w.status.phase is Phase.ROLLED_BACK, w.status.message
    made = w.decisions[-1]
    assert made.traffic.canary_weight == 0 and made.traffic.mirror_percent == 0
    assert made.workloads[0].revision == old and made.workloads[0].replicas == w.spec.replicas
    w.settle()
    assert old is not None and w.pods[old].desired == w.spec.replicas and new not in w.pods
    for _ in range(10):
        assert w.tick().status.canary_revision is None  # rejected: not rolled out again


@SETTINGS
@hypothesis.given(specs(), st.sampled_from([Verdict.ERROR]))
def test_error_never_promotes_nor_rolls_back(options: dict[str, Any], verdict: Verdict) -> None:
    w = rolled_out(options, world.always(verdict), ticks=150)
    new = revisions.of_spec(w.spec)
    assert w.stable != new
    assert Outcome.ROLLED_BACK not in [outcome for _, outcome in w.outcomes()]


@SETTINGS
@hypothesis.given(specs(), st.integers(1, 30))
def test_a_new_revision_during_a_rollout_restarts_from_stable(options: dict[str, Any], after: int) -> None:
    w = world.World(world.make_spec(**options))
    w.settle()
    stable = w.stable
    w.change(version="2.0.0")
    w.run(after)
    hypothesis.assume(w.status.canary_revision is not None)
    w.change(version="3.0.0")
    made = w.tick()
    assert made.status.canary_revision == revisions.of_spec(w.spec) and made.status.current_step == 0
    assert made.traffic.stable_revision == stable and made.traffic.canary_weight == 0
    assert made.traffic.mirror_percent == 0


@SETTINGS
@hypothesis.given(specs(), st.lists(st.integers(1, 25), min_size=1, max_size=4), st.booleans())
def test_a_restart_reaches_the_same_outcome(options: dict[str, Any], restarts: list[int], fail: bool) -> None:
    options = {**options, "automatic": True}

    def outcome(restart_at: set[int]) -> tuple[str | None, list[tuple[str, Outcome]]]:
        w = world.World(world.make_spec(**options))
        w.settle()
        w.change(version="2.0.0")
        new = revisions.of_spec(w.spec)
        w.judge = world.failing_for(new) if fail else world.passing
        for tick in range(300):
            if tick in restart_at:
                w.restart()
            w.tick()
            if w.status.phase is Phase.PAUSED and w.status.pause_reason in (
                api_status.PauseReason.AWAITING_PROMOTION,
                api_status.PauseReason.INCONCLUSIVE,
            ):
                w.send(commands.Verb.PROMOTE)
            if w.status.canary_revision is None and w.status.analysis_started_at is None and tick > 5:
                break
        return w.stable, w.outcomes()

    assert outcome(set()) == outcome(set(restarts))
