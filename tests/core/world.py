"""A small pure simulator of the cluster and Prometheus, to drive `progression.decide` through whole rollouts.

`World` plays the handlers: it builds an Observation from its pods, GPU pool, judge and smoke
test, calls `decide`, checks the invariants every decision must keep, and carries the decision
out. Pods are scheduled when the pool has room for them (after scale-downs freed GPUs, as the
handlers apply scale-downs last) and become ready one tick later, unless their revision
crash-loops. Time moves by the decision's requeue_after. `restart()` forgets the last decision,
as an operator restart does: the next analysis window then comes from the status alone.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from typing import Any

from modelrollout.api import commands, labels, verdicts
from modelrollout.api import spec as api_spec
from modelrollout.api import status as api_status
from modelrollout.core import capacity, decision, observation, phases, progression

T0 = datetime.datetime(2025, 1, 30, 10, 0, tzinfo=datetime.UTC)

Judge = Callable[[decision.AnalysisWindow, "World"], verdicts.Verdict]


def make_spec(
    *,
    strategy: str = "Canary",
    replicas: int = 4,
    version: str = "1.0.0",
    steps: list[dict[str, Any]] | None = None,
    gpus: int | None = 1,
    max_extra: int = 2,
    provider: str = "GatewayAPI",
    analysis: bool = True,
    smoke: bool = False,
    automatic: bool = True,
    rollback_delay: str = "0s",
    blue_green: dict[str, Any] | None = None,
    shadow: dict[str, Any] | None = None,
    ab_test: dict[str, Any] | None = None,
    **extra: Any,
) -> api_spec.ModelDeploymentSpec:
    """A valid spec; keyword arguments pick the parts a test cares about."""
    container: dict[str, Any] = {
        "name": "server",
        "image": "registry.example/scorer:1.4",
        "ports": [{"name": "http", "containerPort": 8080}],
    }
    if gpus is not None:
        container["resources"] = {"limits": {"nvidia.com/gpu": gpus}}
    body: dict[str, Any] = {
        "replicas": replicas,
        "model": {"name": "fraud-scorer", "version": version},
        "template": {"spec": {"containers": [container]}},
        "traffic": {"provider": provider},
        "strategy": {"type": strategy},
        "rollback": {"automatic": automatic, "scaleDownDelay": rollback_delay},
        **extra,
    }
    if provider == "GatewayAPI":
        body["traffic"]["gatewayAPI"] = {"parentRefs": [{"name": "gw"}]}
    elif provider == "Istio":
        body["traffic"]["istio"] = {"hosts": ["scorer"]}
    if gpus is not None:
        body["gpuPool"] = {"nodeSelector": {"modelrollout.io/pool": "a100"}, "maxExtraGPUs": max_extra}
    if analysis:
        body["analysis"] = {"interval": "30s", "metrics": [{"name": "error-rate", "slo": {"max": 0.01}}]}
    if smoke:
        body["smokeTest"] = {"path": "/v1/predict", "body": {"features": [0.1]}}
    canary_steps = steps or [
        {"setWeight": 25},
        {"analyze": {"duration": "5m"}},
        {"setWeight": 50},
        {"pause": {"duration": "2m"}},
    ]
    handover = (shadow or {}).get("then", "Canary") if strategy == "Shadow" else None
    if strategy == "Canary" or handover == "Canary":
        body["strategy"]["canary"] = {"steps": canary_steps}
    if strategy == "BlueGreen" or handover == "BlueGreen":
        body["strategy"]["blueGreen"] = blue_green or {}
    if strategy == "Shadow":
        body["strategy"]["shadow"] = {"mirrorPercent": 50, "duration": "10m", **(shadow or {})}
    if strategy == "ABTest":
        body["strategy"]["abTest"] = {"match": [{"headers": {"x-cohort": "b"}}], "duration": "20m",
                                      "goal": "conversion", **(ab_test or {})}
        body["analysis"]["metrics"].append({"name": "conversion", "compare": {"direction": "higher-is-better"}})
    return api_spec.ModelDeploymentSpec.model_validate(body)


def passing(window: decision.AnalysisWindow, world: World) -> verdicts.Verdict:
    """A judge that passes at the final look and is inconclusive before it."""
    return verdicts.Verdict.PASS if window.final else verdicts.Verdict.INCONCLUSIVE


def always(verdict: verdicts.Verdict) -> Judge:
    return lambda window, world: verdict


def failing_for(revision: str) -> Judge:
    """FAIL for one revision, PASS at final looks for the others."""

    def judge(window: decision.AnalysisWindow, world: World) -> verdicts.Verdict:
        if window.candidate_revision == revision:
            return verdicts.Verdict.FAIL
        return passing(window, world)

    return judge


@dataclasses.dataclass
class Revision:
    desired: int = 0
    scheduled: int = 0
    ready: int = 0


class InvariantBroken(AssertionError):
    pass


@dataclasses.dataclass
class World:
    spec: api_spec.ModelDeploymentSpec
    status: api_status.ModelDeploymentStatus = dataclasses.field(default_factory=api_status.ModelDeploymentStatus)
    now: datetime.datetime = T0
    gpus: int | None = 64
    """Allocatable GPUs in the pool; None: no pool observed."""
    others: int = 0
    """GPUs taken by other workloads in the pool."""
    judge: Judge = passing
    goal: Judge | None = None
    """An A/B test's goal verdict (PASS a win, FAIL a loss); None outside A/B tests."""
    smoke: Callable[[str], bool] = lambda revision: True
    crashing: set[str] = dataclasses.field(default_factory=set)
    generation: int = 1
    pods: dict[str, Revision] = dataclasses.field(default_factory=dict)
    last: decision.Decision | None = None
    decisions: list[decision.Decision] = dataclasses.field(default_factory=list)
    check_budget: bool = True
    command: commands.Command | None = None

    # --- observing -------------------------------------------------------------------------

    def per_pod(self) -> int:
        return self.spec.gpus_per_pod()

    def held(self) -> int:
        return sum(item.scheduled for item in self.pods.values()) * self.per_pod()

    def pool(self) -> observation.Pool | None:
        if self.spec.gpu_pool is None or self.gpus is None:
            return None
        return observation.Pool(self.gpus, self.held() + self.others, held=self.held(), name="a100")

    def observe(self) -> observation.Observation:
        for revision, item in self.pods.items():
            if revision not in self.crashing:
                item.ready = item.scheduled
        asked = self.last
        window = asked.analysis if asked is not None else progression.window(self.spec, self.status, self.now)
        evidence = None
        if window is not None:
            goal = self.goal(window, self) if self.goal is not None else None
            evidence = observation.Evidence(
                window, self.judge(window, self), reason=f"judged {window.candidate_revision}",
                goal=goal, goal_reason=f"conversion: {goal.value if goal else ''} (ratio 1.5, CS [1.2, 1.8])",
            )
        smoke = None
        if asked is not None and asked.smoke_test is not None:
            passed = self.smoke(asked.smoke_test)
            smoke = api_status.SmokeResult(
                revision=asked.smoke_test, passed=passed, message="HTTP 200" if passed else "HTTP 500", at=self.now
            )
        revisions = {
            revision: observation.Pods(
                desired=item.desired,
                ready=item.ready,
                unschedulable=item.desired - item.scheduled,
                crashing=(item.scheduled - item.ready) if revision in self.crashing else 0,
                restarts=5 if revision in self.crashing else 0,
                waiting="CrashLoopBackOff: back-off 40s restarting container" if revision in self.crashing else "",
            )
            for revision, item in self.pods.items()
        }
        command, self.command = self.command, None
        return observation.Observation(
            now=self.now,
            generation=self.generation,
            revisions=revisions,
            pool=self.pool(),
            smoke_test=smoke,
            evidence=evidence,
            command=command,
        )

    # --- deciding ----------------------------------------------------------------------------

    def tick(self) -> decision.Decision:
        seen = self.observe()
        made = progression.decide(self.spec, self.status, seen)
        self.verify(seen, made)
        self.apply(made)
        stored = made.status.model_dump(mode="json", by_alias=True)  # as the API server keeps it
        self.status = api_status.ModelDeploymentStatus.model_validate(stored)
        self.last = made
        self.decisions.append(made)
        self.now += made.requeue_after
        return made

    def run(self, ticks: int = 200, until: Callable[[World], bool] | None = None) -> World:
        for _ in range(ticks):
            self.tick()
            if until is not None and until(self):
                break
        return self

    def settle(self, ticks: int = 400) -> World:
        """Tick until nothing moves: no rollout, no pods waiting, no scale-down pending."""

        def quiet(world: World) -> bool:
            st = world.status
            return (
                st.phase in (api_status.Phase.SUCCEEDED, api_status.Phase.ROLLED_BACK)
                and not st.scale_downs
                and all(item.ready == item.desired for item in world.pods.values())
            )

        return self.run(ticks, quiet)

    def restart(self) -> None:
        """The operator restarts: the last decision is forgotten, only the status remains."""
        self.last = None

    def send(self, verb: commands.Verb, **fields: Any) -> decision.Decision:
        self.command = commands.Command(verb=verb, id=f"{verb.value}-{len(self.decisions)}", **fields)
        return self.tick()

    def change(self, **changes: Any) -> None:
        """Edit the spec (a new model version starts a rollout)."""
        body = self.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        for key, value in changes.items():
            if key == "version":
                body["model"]["version"] = value
            else:
                body[key] = value
        self.spec = api_spec.ModelDeploymentSpec.model_validate(body)
        self.generation += 1

    # --- applying -----------------------------------------------------------------------------

    def apply(self, made: decision.Decision) -> None:
        wanted = {workload.revision: workload.replicas for workload in made.workloads}
        for revision in list(self.pods):
            if revision not in wanted:
                del self.pods[revision]
        for revision, replicas in wanted.items():
            item = self.pods.setdefault(revision, Revision())
            item.desired = replicas
            item.scheduled = min(item.scheduled, replicas)
            item.ready = min(item.ready, replicas)
        self.schedule()

    def schedule(self) -> None:
        per_pod = self.per_pod()
        for item in self.pods.values():
            while item.scheduled < item.desired:
                if self.gpus is not None and per_pod and self.held() + self.others + per_pod > self.gpus:
                    break
                item.scheduled += 1

    # --- invariants ---------------------------------------------------------------------------

    def verify(self, seen: observation.Observation, made: decision.Decision) -> None:
        before, after = self.status.phase, made.status.phase
        assert after is not None
        if not phases.allowed(before, after):
            raise InvariantBroken(f"{before} -> {after} is not an allowed transition ({made.status.message})")
        traffic = made.traffic
        candidate = seen.pods(traffic.candidate_revision)
        if traffic.canary_weight > 0 and candidate.ready == 0:
            raise InvariantBroken(f"weight {traffic.canary_weight} on a candidate with no ready pod")
        if traffic.mirror_percent > 0 and candidate.ready == 0:
            raise InvariantBroken(f"mirror {traffic.mirror_percent} to a candidate with no ready pod")
        if traffic.cohort and candidate.ready == 0:
            raise InvariantBroken("an A/B cohort routed to a challenger with no ready pod")
        budget = capacity.budget(self.spec, seen.pool)
        stable_ready = seen.pods(traffic.stable_revision).ready
        if budget.cap >= 2 and traffic.canary_weight < 100 and stable_ready == 0 and candidate.ready:
            raise InvariantBroken("stable has weight but no ready pod")  # with one pod of room, a reload is a gap
        if self.check_budget:
            planned = sum(workload.replicas for workload in made.workloads)
            if planned > budget.cap:
                raise InvariantBroken(f"{planned} pods planned, budget {budget.cap}: {made.workloads}")
        revisions = [workload.revision for workload in made.workloads]
        if len(revisions) != len(set(revisions)):
            raise InvariantBroken(f"a revision listed twice: {made.workloads}")
        if made.workloads[0].track is not labels.Track.STABLE or made.workloads[0].revision != traffic.stable_revision:
            raise InvariantBroken("the first workload is the stable revision")

    # --- reading -------------------------------------------------------------------------------

    @property
    def stable(self) -> str | None:
        return self.status.stable_revision

    def outcomes(self) -> list[tuple[str, api_status.Outcome]]:
        return [(entry.revision, entry.outcome) for entry in self.status.history]

    def reasons(self) -> list[str]:
        return [event.reason for made in self.decisions for event in made.events]
