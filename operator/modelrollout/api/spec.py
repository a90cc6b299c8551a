"""ModelDeploymentSpec: what the user asks for, and the rules that tie its sections together.

The sections live in their own modules (`pods`, `routing`, `strategies`, `analyses`); this one
holds the small ones and the spec itself, whose rules need more than one section: a shadow needs
a provider that can mirror and an A/B test one that can route by header, the Service's named port
must exist in the template, analyses need an analysis section and must outlast one interval, an
A/B test's goal must be a higher-is-better metric of the analysis, and the GPU budget must cover
what the strategy runs beside the stable pods.

A change of `model` or `template` is a new revision and starts a rollout; everything else
(replicas, analysis settings, ...) applies in place.
"""

from __future__ import annotations

import enum
import math

import pydantic

from modelrollout.api import analyses, durations, pods, routing, strategies, wire
from modelrollout.api import notifications as receivers  # the module's name is the field's


class Model(wire.Object):
    """The model the server loads. The operator passes it to every container as MODEL_NAME,
    MODEL_VERSION and MODEL_URI, so changing it alone, with the same image, is a new revision."""

    name: str = pydantic.Field(min_length=1, max_length=253)
    """The model's name, e.g. fraud-scorer."""

    version: str = pydantic.Field(min_length=1, max_length=128)
    """The model's version, e.g. 2.3.0; shown in status.history."""

    uri: str | None = pydantic.Field(default=None, min_length=1, max_length=2048)
    """Where the server loads the weights from, e.g. s3://models/fraud/2.3.0."""


class Toleration(wire.OpenObject):
    """A pod toleration (core/v1 Toleration)."""

    key: str | None = pydantic.Field(default=None, max_length=317)
    """The taint key, e.g. nvidia.com/gpu."""

    operator: str | None = pydantic.Field(default=None, max_length=16)
    """Equal or Exists."""

    value: str | None = pydantic.Field(default=None, max_length=63)
    """The taint value, with Equal."""

    effect: str | None = pydantic.Field(default=None, max_length=32)
    """NoSchedule, PreferNoSchedule or NoExecute; empty matches all."""


class GpuPool(wire.Object):
    """The accelerator node pool the model runs on, and how many extra accelerators a rollout may take."""

    node_selector: dict[str, str] = pydantic.Field(min_length=1, max_length=16)
    """Labels of the pool's nodes, e.g. {modelrollout.io/pool: a100}; added to the pods' nodeSelector."""

    resource: str = pydantic.Field(
        default="nvidia.com/gpu", pattern=r"^[a-z0-9.-]+/[a-zA-Z0-9._-]+$", max_length=253
    )
    """The extended resource to count, e.g. nvidia.com/gpu or amd.com/gpu."""

    max_extra_gpus: int = pydantic.Field(default=0, ge=0, le=4096, alias="maxExtraGPUs")
    """Accelerators a rollout may use beyond the stable pods'. 0 (the default): new pods replace
    old ones step by step (dynamic stable scale), so a canary needs no spare accelerator.
    Blue-green, shadow and A/B test run the new revision beside the old one and need enough for it."""

    tolerations: list[Toleration] | None = pydantic.Field(default=None, max_length=16)
    """Tolerations added to the pods, e.g. for the pool's taint."""


class HttpMethod(enum.StrEnum):
    GET = "GET"
    POST = "POST"


class SmokeTest(wire.Object):
    """One request sent to the new revision before it receives any traffic; a failure rolls back."""

    path: str = pydantic.Field(pattern=r"^/", max_length=2048)
    """The request path, e.g. /v1/predict."""

    method: HttpMethod | None = None
    """GET or POST; default POST when there is a body, else GET."""

    headers: dict[str, str] | None = pydantic.Field(default=None, max_length=16)
    """Request headers."""

    body: wire.AnyJSON = None
    """A JSON request body."""

    expect_status: int = pydantic.Field(default=200, ge=100, le=599)
    """The expected HTTP status."""

    expect_json: dict[str, wire.AnyJSON] | None = pydantic.Field(default=None, max_length=16, alias="expectJSON")
    """Expected values in the JSON response, by dotted path (list items by index):
    {"prediction.label": "fraud", "scores.0": 0.5}."""

    timeout: durations.Duration = "10s"
    """Timeout of the request."""


class Rollback(wire.Object):
    """What happens when the new revision fails."""

    automatic: bool = True
    """Roll back by itself on a failed SLO or a measured regression. false: pause instead and let a
    person promote or abort, a mode to build trust in the judges before letting them act."""

    scale_down_delay: durations.Duration = "0s"
    """How long the failed pods keep running after a rollback (for a look at them); they hold their GPUs."""


_WHOLE = "string({0}).matches('^[0-9]+$')"
_AMOUNT = "(string({0}).matches('^[0-9]+$') ? int(string({0})) : 0)"
_LIMIT = "c.resources.limits[self.gpuPool.resource]"
_REQUEST = "c.resources.requests[self.gpuPool.resource]"
_GPU_PER_POD = (
    "self.template.spec.containers.map(c, !has(c.resources) ? 0 : "
    "has(c.resources.limits) && self.gpuPool.resource in c.resources.limits ? "
    + _AMOUNT.format(_LIMIT)
    + " : has(c.resources.requests) && self.gpuPool.resource in c.resources.requests ? "
    + _AMOUNT.format(_REQUEST)
    + " : 0).sum()"
)
_MIRRORS = wire.Rule(
    cel="self.strategy.type != 'Shadow' || self.traffic.provider != 'ReplicaRatio'",
    message="strategy Shadow mirrors requests, which provider ReplicaRatio cannot do: use GatewayAPI or Istio",
    field_path=".traffic.provider",
)
_COHORT_ROUTED = wire.Rule(
    cel="self.strategy.type != 'ABTest' || self.traffic.provider != 'ReplicaRatio'",
    message=(
        "strategy ABTest routes a cohort by header or cookie, which provider ReplicaRatio cannot do: "
        "use GatewayAPI or Istio"
    ),
    field_path=".traffic.provider",
)
_PORT_EXISTS = wire.Rule(
    cel=(
        "type(self.traffic.targetPort) != string || self.template.spec.containers.exists(c, "
        "has(c.ports) && c.ports.exists(p, has(p.name) && p.name == self.traffic.targetPort))"
    ),
    message="no container of the template declares a port with this name",
    message_expression="'no container of the template declares a port named ' + string(self.traffic.targetPort)",
    field_path=".traffic.targetPort",
)
_ANALYZE_NEEDS_ANALYSIS = wire.Rule(
    cel="!has(self.strategy.canary) || !self.strategy.canary.steps.exists(s, has(s.analyze)) || has(self.analysis)",
    message="analyze steps need the analysis section",
    field_path=".analysis",
    reason=wire.Reason.REQUIRED,
)
_PREVIEW_NEEDS_ANALYSIS = wire.Rule(
    cel=(
        "!has(self.strategy.blueGreen) || !(has(self.strategy.blueGreen.prePromotionAnalysis) || "
        "has(self.strategy.blueGreen.postPromotionAnalysis)) || has(self.analysis)"
    ),
    message="blueGreen.prePromotionAnalysis and postPromotionAnalysis need the analysis section",
    field_path=".analysis",
    reason=wire.Reason.REQUIRED,
)
_SHADOW_NEEDS_ANALYSIS = wire.Rule(
    cel="self.strategy.type != 'Shadow' || has(self.analysis)",
    message="strategy Shadow judges the mirrored traffic and needs the analysis section",
    field_path=".analysis",
    reason=wire.Reason.REQUIRED,
)
_AB_TEST_NEEDS_ANALYSIS = wire.Rule(
    cel="self.strategy.type != 'ABTest' || has(self.analysis)",
    message="strategy ABTest judges the challenger on its goal and needs the analysis section",
    field_path=".analysis",
    reason=wire.Reason.REQUIRED,
)
_GOAL_IS_A_METRIC = wire.Rule(
    cel=(
        "!has(self.strategy.abTest) || !has(self.analysis) || (has(self.analysis.metrics) && "
        "self.analysis.metrics.exists(m, m.name == self.strategy.abTest.goal))"
    ),
    message="abTest.goal must name a metric of analysis.metrics",
    message_expression="'abTest.goal ' + self.strategy.abTest.goal + ' names no metric of analysis.metrics'",
    field_path=".strategy.abTest.goal",
)
_GOAL_HIGHER_IS_BETTER = wire.Rule(
    cel=(
        "!has(self.strategy.abTest) || !has(self.analysis) || !has(self.analysis.metrics) || "
        "self.analysis.metrics.all(m, m.name != self.strategy.abTest.goal || "
        "(has(m.compare) && has(m.compare.direction) && m.compare.direction == 'higher-is-better'))"
    ),
    message="the goal metric must have compare with direction higher-is-better: the challenger wins by raising it",
    field_path=".strategy.abTest.goal",
)
_ANALYZE_OUTLASTS_INTERVAL = wire.Rule(
    cel=(
        "!has(self.analysis) || !has(self.strategy.canary) || self.strategy.canary.steps.all(s, "
        "!has(s.analyze) || duration(s.analyze.duration) >= duration(self.analysis.interval))"
    ),
    message="every analyze step must last at least one analysis.interval",
    field_path=".strategy.canary.steps",
)
_SHADOW_OUTLASTS_INTERVAL = wire.Rule(
    cel=(
        "!has(self.analysis) || !has(self.strategy.shadow) || "
        "duration(self.strategy.shadow.duration) >= duration(self.analysis.interval)"
    ),
    message="shadow.duration must last at least one analysis.interval",
    field_path=".strategy.shadow.duration",
)
_AB_TEST_OUTLASTS_INTERVAL = wire.Rule(
    cel=(
        "!has(self.analysis) || !has(self.strategy.abTest) || "
        "duration(self.strategy.abTest.duration) >= duration(self.analysis.interval)"
    ),
    message="abTest.duration must last at least one analysis.interval",
    field_path=".strategy.abTest.duration",
)
_GPU_ASKED = wire.Rule(
    cel=(
        "!has(self.gpuPool) || self.template.spec.containers.exists(c, has(c.resources) && "
        "((has(c.resources.limits) && self.gpuPool.resource in c.resources.limits) || "
        "(has(c.resources.requests) && self.gpuPool.resource in c.resources.requests)))"
    ),
    message="no container of the template asks for this resource (e.g. resources.limits: {nvidia.com/gpu: 1})",
    field_path=".gpuPool.resource",
)
_WHOLE_GPUS = wire.Rule(
    cel=(
        "!has(self.gpuPool) || self.template.spec.containers.all(c, !has(c.resources) || ("
        "(!has(c.resources.limits) || !(self.gpuPool.resource in c.resources.limits) || "
        + _WHOLE.format(_LIMIT)
        + ") && (!has(c.resources.requests) || !(self.gpuPool.resource in c.resources.requests) || "
        + _WHOLE.format(_REQUEST)
        + ")))"
    ),
    message="accelerators are whole devices: the template must ask for a whole number of them, like 1 or 2",
    field_path=".gpuPool.resource",
)
WRITTEN = "written"
"""Validation context key: check as the API server does when the object is written (not scaled)."""
UNLESS_SCALED = (
    "(oldSelf.hasValue() && oldSelf.value().strategy == self.strategy"
    " && has(oldSelf.value().gpuPool) == has(self.gpuPool)"
    " && (!has(self.gpuPool) || oldSelf.value().gpuPool == self.gpuPool)) || "
)
"""The rules that read spec.replicas are checked when the object is created and when its strategy
or gpuPool changes, never on a write that leaves both alone: `kubectl scale`, an HPA or KEDA (and
an apply that omits replicas while they manage it) must work in every phase. The operator fits
what such a change asks for to the budget (a preview too big for it is promoted like a canary, a
challenger waits with InsufficientCapacity, a size above replicas is cut to it)."""
_PREVIEW_FITS = wire.Rule(
    cel=(
        UNLESS_SCALED +
        "!has(self.gpuPool) || !has(self.strategy.blueGreen) || "
        "self.gpuPool.maxExtraGPUs >= " + _GPU_PER_POD + " * (has(self.strategy.blueGreen.previewReplicas) ? "
        "self.strategy.blueGreen.previewReplicas : self.replicas)"
    ),
    message=(
        "blue-green runs the preview beside the stable pods: maxExtraGPUs must cover "
        "blueGreen.previewReplicas (default replicas) times the GPUs of one pod"
    ),
    field_path=".gpuPool.maxExtraGPUs",
    optional_old_self=True,
)
_SHADOW_FITS = wire.Rule(
    cel=(
        UNLESS_SCALED +
        "!has(self.gpuPool) || !has(self.strategy.shadow) || "
        "self.gpuPool.maxExtraGPUs >= " + _GPU_PER_POD + " * (has(self.strategy.shadow.replicas) ? "
        "self.strategy.shadow.replicas : (self.replicas * self.strategy.shadow.mirrorPercent + 99) / 100)"
    ),
    message=(
        "shadow runs the new revision beside the stable pods: maxExtraGPUs must cover shadow.replicas "
        "(default replicas x mirrorPercent / 100, rounded up) times the GPUs of one pod"
    ),
    field_path=".gpuPool.maxExtraGPUs",
    optional_old_self=True,
)
_AB_TEST_FITS = wire.Rule(
    cel=(
        UNLESS_SCALED +
        "!has(self.gpuPool) || !has(self.strategy.abTest) || "
        "self.gpuPool.maxExtraGPUs >= " + _GPU_PER_POD + " * (has(self.strategy.abTest.replicas) ? "
        "self.strategy.abTest.replicas : self.replicas)"
    ),
    message=(
        "an A/B test runs the challenger beside the stable pods: maxExtraGPUs must cover abTest.replicas "
        "(default replicas) times the GPUs of one pod"
    ),
    field_path=".gpuPool.maxExtraGPUs",
    optional_old_self=True,
)
_PREVIEW_AT_MOST_REPLICAS = wire.Rule(
    cel=(
        UNLESS_SCALED +
        "!has(self.strategy.blueGreen) || !has(self.strategy.blueGreen.previewReplicas) || "
        "self.strategy.blueGreen.previewReplicas <= self.replicas"
    ),
    message="blueGreen.previewReplicas must not exceed replicas",
    field_path=".strategy.blueGreen.previewReplicas",
    optional_old_self=True,
)
_SHADOW_AT_MOST_REPLICAS = wire.Rule(
    cel=(
        UNLESS_SCALED +
        "!has(self.strategy.shadow) || !has(self.strategy.shadow.replicas) || "
        "self.strategy.shadow.replicas <= self.replicas"
    ),
    message="shadow.replicas must not exceed replicas",
    field_path=".strategy.shadow.replicas",
    optional_old_self=True,
)
_AB_TEST_AT_MOST_REPLICAS = wire.Rule(
    cel=(
        UNLESS_SCALED +
        "!has(self.strategy.abTest) || !has(self.strategy.abTest.replicas) || "
        "self.strategy.abTest.replicas <= self.replicas"
    ),
    message="abTest.replicas must not exceed replicas",
    field_path=".strategy.abTest.replicas",
    optional_old_self=True,
)


class ModelDeploymentSpec(wire.Object):
    """A model server rolled out progressively: the model and pods, how traffic reaches them, and
    how a new revision replaces the stable one."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=wire.validations(
            _MIRRORS,
            _COHORT_ROUTED,
            _PORT_EXISTS,
            _ANALYZE_NEEDS_ANALYSIS,
            _PREVIEW_NEEDS_ANALYSIS,
            _SHADOW_NEEDS_ANALYSIS,
            _AB_TEST_NEEDS_ANALYSIS,
            _GOAL_IS_A_METRIC,
            _GOAL_HIGHER_IS_BETTER,
            _ANALYZE_OUTLASTS_INTERVAL,
            _SHADOW_OUTLASTS_INTERVAL,
            _AB_TEST_OUTLASTS_INTERVAL,
            _GPU_ASKED,
            _WHOLE_GPUS,
            _PREVIEW_FITS,
            _SHADOW_FITS,
            _AB_TEST_FITS,
            _PREVIEW_AT_MOST_REPLICAS,
            _SHADOW_AT_MOST_REPLICAS,
            _AB_TEST_AT_MOST_REPLICAS,
        )
    )

    replicas: int = pydantic.Field(default=1, ge=0, le=1000)
    """Pods of the stable revision when no rollout runs; changing it applies in place. 0 stops
    every pod (traffic ends) and pauses a rollout in progress until it is scaled up again."""

    model: Model
    """The model the pods serve; a change starts a rollout."""

    template: pods.PodTemplate
    """The model server's pod template (a PodTemplateSpec); a change starts a rollout."""

    gpu_pool: GpuPool | None = pydantic.Field(default=None, alias="gpuPool")
    """The accelerator pool and the rollout's budget of extra accelerators."""

    smoke_test: SmokeTest | None = None
    """A request the new revision must answer before it receives traffic."""

    traffic: routing.Traffic
    """How requests reach the tracks."""

    strategy: strategies.Strategy
    """How a new revision replaces the stable one."""

    analysis: analyses.Analysis | None = None
    """How the new revision is judged; needed by analyze steps, blue-green analyses, shadow and A/B test."""

    rollback: Rollback = wire.defaulted(Rollback)
    """What happens when the new revision fails."""

    progress_deadline: durations.Duration = "15m"
    """How long new pods may take to become ready (model loading included) before the rollout fails."""

    revision_history_limit: int = pydantic.Field(default=10, ge=1, le=50)
    """Entries kept in status.history."""

    notifications: list[receivers.Notification] = pydantic.Field(default_factory=list, max_length=8)
    """Receivers told about the rollout's moments (Slack, Teams or a webhook), each URL from a Secret."""

    def gpus_per_pod(self) -> int:
        """Accelerators one pod asks for; 0 without a gpuPool."""
        return self.template.count(self.gpu_pool.resource) if self.gpu_pool else 0

    def preview_replicas(self) -> int:
        """Pods of a blue-green preview; never more than replicas (a scale-down may go below it)."""
        section = self.strategy.blue_green
        return min(section.preview_replicas or self.replicas, self.replicas) if section else self.replicas

    def shadow_replicas(self) -> int:
        """Pods of the new revision while shadowing."""
        section = self.strategy.shadow
        if section is None:
            return 0
        return min(section.replicas or math.ceil(self.replicas * section.mirror_percent / 100), self.replicas)

    def ab_test_replicas(self) -> int:
        """Pods of the challenger in an A/B test; never more than replicas."""
        section = self.strategy.ab_test
        if section is None:
            return 0
        return min(section.replicas or self.replicas, self.replicas)

    @pydantic.model_validator(mode="after")
    def _sections_agree(self, info: pydantic.ValidationInfo) -> ModelDeploymentSpec:
        kind = self.strategy.type
        canary, blue_green, shadow = self.strategy.canary, self.strategy.blue_green, self.strategy.shadow
        ab_test = self.strategy.ab_test
        _MIRRORS.check(kind is not strategies.StrategyType.SHADOW or self.traffic.provider.can_mirror)
        _COHORT_ROUTED.check(
            kind is not strategies.StrategyType.AB_TEST or self.traffic.provider is not routing.Provider.REPLICA_RATIO
        )
        port = self.traffic.target_port
        _PORT_EXISTS.check(
            not isinstance(port, str) or port in self.template.port_names(),
            f"no container of the template declares a port named {port}",
        )
        steps = canary.steps if canary else []
        analyze_steps = [step.analyze for step in steps if isinstance(step, strategies.Analyze)]
        has_analysis = self.analysis is not None
        _ANALYZE_NEEDS_ANALYSIS.check(not analyze_steps or has_analysis)
        _PREVIEW_NEEDS_ANALYSIS.check(
            blue_green is None
            or (blue_green.pre_promotion_analysis is None and blue_green.post_promotion_analysis is None)
            or has_analysis
        )
        _SHADOW_NEEDS_ANALYSIS.check(kind is not strategies.StrategyType.SHADOW or has_analysis)
        _AB_TEST_NEEDS_ANALYSIS.check(kind is not strategies.StrategyType.AB_TEST or has_analysis)
        if self.analysis is not None:
            if ab_test is not None:
                goals = [metric for metric in self.analysis.metrics or () if metric.name == ab_test.goal]
                _GOAL_IS_A_METRIC.check(
                    bool(goals), f"abTest.goal {ab_test.goal} names no metric of analysis.metrics"
                )
                _GOAL_HIGHER_IS_BETTER.check(all(
                    metric.compare is not None and metric.compare.direction is analyses.Direction.HIGHER_IS_BETTER
                    for metric in goals
                ))
            interval = durations.parse_duration(self.analysis.interval)
            lengths = [durations.parse_duration(step.duration) for step in analyze_steps]
            _ANALYZE_OUTLASTS_INTERVAL.check(all(length >= interval for length in lengths))
            _SHADOW_OUTLASTS_INTERVAL.check(shadow is None or durations.parse_duration(shadow.duration) >= interval)
            _AB_TEST_OUTLASTS_INTERVAL.check(
                ab_test is None or durations.parse_duration(ab_test.duration) >= interval
            )
        if self.gpu_pool is not None:
            _GPU_ASKED.check(self.template.asks_for(self.gpu_pool.resource))
            _WHOLE_GPUS.check(self.template.whole_units(self.gpu_pool.resource))
        if info.context and info.context.get(WRITTEN):
            self._fits_when_written()
        return self

    def _fits_when_written(self) -> None:
        """The twins of the rules that read spec.replicas (see UNLESS_SCALED): the API server checks
        them when the object is written, but not on a replicas change, so the operator reading a
        scaled object does not (validate with context {WRITTEN: True} to check as a write does)."""
        blue_green, shadow, ab_test = self.strategy.blue_green, self.strategy.shadow, self.strategy.ab_test
        preview = (blue_green.preview_replicas or self.replicas) if blue_green else 0
        shadowing = (shadow.replicas or math.ceil(self.replicas * shadow.mirror_percent / 100)) if shadow else 0
        challenger = (ab_test.replicas or self.replicas) if ab_test else 0
        if self.gpu_pool is not None:
            budget, per_pod = self.gpu_pool.max_extra_gpus, self.gpus_per_pod()
            needed = per_pod * preview
            _PREVIEW_FITS.check(
                blue_green is None or budget >= needed,
                f"blue-green runs the preview beside the stable pods and needs {needed} extra GPUs "
                "(blueGreen.previewReplicas, default replicas, times the GPUs of one pod)",
            )
            needed = per_pod * shadowing
            _SHADOW_FITS.check(
                shadow is None or budget >= needed,
                f"shadow runs the new revision beside the stable pods and needs {needed} extra GPUs "
                "(shadow.replicas, default replicas x mirrorPercent / 100, rounded up, times the GPUs of one pod)",
            )
            needed = per_pod * challenger
            _AB_TEST_FITS.check(
                ab_test is None or budget >= needed,
                f"an A/B test runs the challenger beside the stable pods and needs {needed} extra GPUs "
                "(abTest.replicas, default replicas, times the GPUs of one pod)",
            )
        _PREVIEW_AT_MOST_REPLICAS.check(preview <= self.replicas)
        _SHADOW_AT_MOST_REPLICAS.check(shadowing <= self.replicas)
        _AB_TEST_AT_MOST_REPLICAS.check(challenger <= self.replicas)
