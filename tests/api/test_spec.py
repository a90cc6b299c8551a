"""Parsing ModelDeployments: defaults, aliases, the canary step union, and the examples."""

import pathlib
from typing import Any

import pydantic
import pytest
import yaml

from modelrollout.api import analyses, resources, routing, spec, strategies

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
VALID = [path for path in sorted((ROOT / "tests" / "api" / "valid").glob("*.yaml")) if path.stem != "status"]
"""ModelDeployments of the valid corpus (status.yaml is a status, read by test_status.py)."""

MINIMAL: dict[str, Any] = {
    "apiVersion": "modelrollout.io/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "scorer", "namespace": "ml", "generation": 3},
    "spec": {
        "model": {"name": "scorer", "version": "1.0.0"},
        "template": {
            "spec": {
                "containers": [{"name": "server", "image": "img:1", "ports": [{"name": "http", "containerPort": 8080}]}]
            }
        },
        "traffic": {"provider": "ReplicaRatio"},
        "strategy": {"type": "Canary", "canary": {"steps": [{"setWeight": 50}]}},
    },
}


def _with(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(yaml.safe_dump(MINIMAL))
    body["spec"].update(changes)
    return body


def test_defaults() -> None:
    md = resources.ModelDeployment.model_validate(MINIMAL)
    assert md.metadata.name == "scorer" and md.metadata.generation == 3
    assert md.spec.replicas == 1
    assert md.spec.traffic.port == 80 and md.spec.traffic.target_port == "http"
    assert md.spec.rollback == spec.Rollback(automatic=True, scale_down_delay="0s")
    assert md.spec.progress_deadline == "15m"
    assert md.spec.revision_history_limit == 10
    assert md.spec.gpu_pool is None and md.spec.analysis is None and md.spec.smoke_test is None
    assert md.status.phase is None and md.status.history == []


def test_section_defaults() -> None:
    analysis = analyses.Analysis()
    assert (analysis.interval, analysis.preset, analysis.alpha, analysis.min_requests) == ("30s", "generic", 0.01, 100)
    assert analysis.failure_limits == analyses.FailureLimits(consecutive_errors=4, inconclusive=2)
    assert analysis.prometheus is None and analysis.metrics is None
    assert analyses.Compare() == analyses.Compare(direction=analyses.Direction.LOWER_IS_BETTER, tolerance=0.1)
    blue_green = strategies.BlueGreen()
    assert (blue_green.auto_promote, blue_green.scale_down_delay, blue_green.preview_replicas) == (True, "30s", None)
    shadow = strategies.Shadow(duration="5m")
    assert (shadow.mirror_percent, shadow.then) == (100, strategies.Handover.CANARY)
    ab_test = strategies.ABTest.model_validate({"match": [{"headers": {"x-cohort": "b"}}], "duration": "30m",
                                                "goal": "conversion"})
    assert (ab_test.minimum_effect, ab_test.on_win, ab_test.replicas) == (0.02, strategies.OnWin.PROMOTE, None)
    pool = spec.GpuPool(node_selector={"pool": "a100"})
    assert (pool.resource, pool.max_extra_gpus) == ("nvidia.com/gpu", 0)
    smoke = spec.SmokeTest(path="/v1/predict")
    assert (smoke.expect_status, smoke.timeout, smoke.method) == (200, "10s", None)


def test_steps_parse_into_their_own_types() -> None:
    steps = [{"setWeight": 5}, {"pause": {}}, {"pause": {"duration": "2m"}}, {"analyze": {"duration": "5m"}}]
    canary = strategies.Canary.model_validate({"steps": steps})
    assert canary.steps == [
        strategies.SetWeight(set_weight=5),
        strategies.Pause(pause=strategies.PauseSpec()),
        strategies.Pause(pause=strategies.PauseSpec(duration="2m")),
        strategies.Analyze(analyze=strategies.AnalyzeSpec(duration="5m")),
    ]
    assert canary.model_dump(exclude_none=True) == {"steps": steps}


@pytest.mark.parametrize("step", [{}, {"setWeight": 5, "pause": {}}, {"set_weight": 5, "setWeight": 5}, {"mirror": 5}])
def test_a_step_has_exactly_one_action(step: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError, match="exactly one of setWeight, pause or analyze"):
        strategies.Canary.model_validate({"steps": [step]})


def test_python_names_and_wire_names() -> None:
    pool = spec.GpuPool.model_validate({"nodeSelector": {"p": "l4"}, "maxExtraGPUs": 2})
    assert pool == spec.GpuPool(node_selector={"p": "l4"}, max_extra_gpus=2)
    wire = {"nodeSelector": {"p": "l4"}, "resource": "nvidia.com/gpu", "maxExtraGPUs": 2}
    assert pool.model_dump(exclude_none=True) == wire
    traffic = routing.Traffic.model_validate({"provider": "GatewayAPI", "gatewayAPI": {"parentRefs": [{"name": "gw"}]}})
    assert traffic.gateway_api is not None and traffic.gateway_api.parent_refs[0].kind == "Gateway"
    smoke = spec.SmokeTest.model_validate({"path": "/p", "expectJSON": {"label": 1}})
    assert smoke.expect_json == {"label": 1}


def test_spec_is_frozen() -> None:
    md = resources.ModelDeployment.model_validate(MINIMAL)
    with pytest.raises(pydantic.ValidationError):
        md.spec.replicas = 3  # type: ignore[misc]


def test_pod_template_keeps_unknown_fields() -> None:
    body = _with()
    container = body["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "A", "value": "1"}]
    body["spec"]["template"]["spec"]["nodeSelector"] = {"disk": "ssd"}
    md = resources.ModelDeployment.model_validate(body)
    dumped = md.spec.template.model_dump(mode="json", exclude_none=True)
    assert dumped["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]
    assert dumped["spec"]["nodeSelector"] == {"disk": "ssd"}


def test_gpu_arithmetic() -> None:
    body = _with(
        replicas=5,
        gpuPool={"nodeSelector": {"pool": "a100"}, "maxExtraGPUs": 8},
        strategy={"type": "Shadow", "shadow": {"duration": "2m", "mirrorPercent": 30, "then": "Manual"}},
        traffic={"provider": "Istio", "istio": {"hosts": ["m"]}},
        analysis={},
    )
    containers = body["spec"]["template"]["spec"]["containers"]
    containers[0]["resources"] = {"limits": {"nvidia.com/gpu": 2}}
    containers.append({"name": "sidecar", "image": "s:1", "resources": {"requests": {"nvidia.com/gpu": "1"}}})
    md = resources.ModelDeployment.model_validate(body)
    assert md.spec.gpus_per_pod() == 3
    assert md.spec.shadow_replicas() == 2  # ceil(5 * 30 / 100)
    assert md.spec.preview_replicas() == 5
    assert md.spec.ab_test_replicas() == 0  # no A/B test


def test_ab_test_replicas_default_to_replicas() -> None:
    ab_test = {"match": [{"cookie": {"name": "cohort", "value": "b"}}], "duration": "5m", "goal": "conversion"}
    metrics = [{"name": "conversion", "compare": {"direction": "higher-is-better"}}]
    body = _with(
        replicas=3,
        strategy={"type": "ABTest", "abTest": ab_test},
        traffic={"provider": "Istio", "istio": {"hosts": ["m"]}},
        analysis={"metrics": metrics},
    )
    assert resources.ModelDeployment.model_validate(body).spec.ab_test_replicas() == 3
    body["spec"]["strategy"]["abTest"]["replicas"] = 1
    assert resources.ModelDeployment.model_validate(body).spec.ab_test_replicas() == 1


@pytest.mark.parametrize("name", ["x cohort", "x:cohort", "", "x" * 257])
def test_a_header_name_is_a_token(name: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="a header name is an HTTP token"):
        strategies.CohortMatch.model_validate({"headers": {name: "b"}})


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_the_valid_corpus_parses_and_round_trips(path: pathlib.Path) -> None:
    body = yaml.safe_load(path.read_text())
    md = resources.ModelDeployment.model_validate(body)
    assert md.metadata.name == path.stem
    assert resources.ModelDeployment.model_validate(md.body()) == md
    assert md.spec.model_dump(mode="json", exclude_unset=True) == body["spec"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_parse_and_round_trip(path: pathlib.Path) -> None:
    body = yaml.safe_load(path.read_text())
    md = resources.ModelDeployment.model_validate(body)
    assert md.metadata.name == path.stem
    assert not md.metadata.annotations  # examples name nothing of the e2e world
    again = resources.ModelDeployment.model_validate(md.body())
    assert again == md
    containers = md.spec.template.spec.containers
    assert containers[0].image == "registry.example/modelserver:1.0"
    assert {(p.name, p.container_port) for p in containers[0].ports or ()} == {("http", 8080)}
    if md.spec.gpu_pool is not None:
        assert md.spec.gpu_pool.node_selector["modelrollout.io/pool"] in {"a100", "l4"}
        tolerations = body["spec"]["template"]["spec"]["tolerations"]
        assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"} in tolerations


def test_every_strategy_and_provider_has_an_example() -> None:
    names = {path.stem for path in EXAMPLES}
    assert names >= {
        "canary-gateway-api", "canary-istio", "canary-replica-ratio", "blue-green", "shadow",
        "canary-manual", "canary-gpu-no-surge", "ab-test",
    }
    parsed = [resources.ModelDeployment.model_validate(yaml.safe_load(p.read_text())).spec for p in EXAMPLES]
    assert {s.strategy.type for s in parsed} == set(strategies.StrategyType)
    assert {s.traffic.provider for s in parsed} == set(routing.Provider)
    manual = next(s for s, p in zip(parsed, EXAMPLES, strict=True) if p.stem == "canary-manual")
    assert manual.strategy.canary is not None
    assert strategies.Pause(pause=strategies.PauseSpec()) in manual.strategy.canary.steps
    no_surge = next(s for s, p in zip(parsed, EXAMPLES, strict=True) if p.stem == "canary-gpu-no-surge")
    assert no_surge.gpu_pool is not None and no_surge.gpu_pool.max_extra_gpus == 0
    shadow = next(s for s, p in zip(parsed, EXAMPLES, strict=True) if p.stem == "shadow")
    assert shadow.strategy.after_shadow is strategies.StrategyType.CANARY
    assert shadow.traffic.provider is routing.Provider.GATEWAY_API
