"""Ready-made queries for common model servers, so most metrics are just a name.

Each preset metric says how to read it per track: a `counts` metric has an events query (what
is bad: failed requests) and an exposure query (all requests) so that a rate can be compared;
a `histogram` metric has a bucket query grouped by `le`. Every query is a template rendered
per track with the track's revision, and selects the series by the `modeldeployment`,
`namespace` and `revision` target labels (the chart's PodMonitor puts them there).

Counts and histograms are read as raw counters per pod, never through `increase()`: the
adapter differences them itself on its step grid, which gives exact integers (`increase()`
extrapolates, and over a window of two scrapes doubles the count). The form is

    max by (pod) (sum by (pod, track) (model_requests_total{<selector>}))

`sum by (pod, track)` adds a pod's series (one per status code) before differencing, so the
first error of a new code is counted in full; `max by (pod)` bridges the moment the operator
moves a pod to another track: Prometheus keeps the old target's series for about one scrape
after the new one starts, and summing both would double the pod's counter for a step.
`queries.batched` turns these templates into one query for every ModelDeployment under
analysis at once.

Presets:
- generic: what any server exports with a Prometheus client library (and the e2e model server).
- vllm: vLLM's `vllm:` metrics (time to first token, time per output token, end-to-end latency,
  request success by finish reason).
- triton: Triton's `nv_inference_*` counters.
- kserve: KServe's Python model server histograms.
GPU guardrails from the DCGM exporter (utilization, framebuffer used) are gauges selected by
pod name, since DCGM labels series with the pod, not with our labels.
"""

from __future__ import annotations

import dataclasses

from modelrollout.api import analyses

SELECT = 'namespace="{{namespace}}",modeldeployment="{{name}}",revision="{{revision}}"'


@dataclasses.dataclass(frozen=True)
class PresetMetric:
    name: str
    kind: analyses.MetricKind
    query: str
    """counts: the events counter per pod; histogram: the bucket counters by pod and le; gauge: one value."""
    exposure: str | None = None
    """counts: all requests per pod, the denominator of the rate."""
    quantile: float | None = None
    """histogram: the quantile an SLO on this metric bounds (p99-latency: 0.99)."""
    description: str = ""


def _counter(metric: str, extra: str = "", by: str = "pod") -> str:
    """A raw counter summed per pod (and `le`), with the pod's track moves bridged."""
    selector = SELECT + ("," + extra if extra else "")
    return f"max by ({by}) (sum by ({by}, track) ({metric}{{{selector}}}))"


def _increase(metric: str) -> str:
    """For gauges only: a ratio of two of these cancels `increase()`'s extrapolation."""
    return f"sum(increase({metric}{{{SELECT}}}[{{{{interval}}}}]))"


def _counts(name: str, metric: str, bad: str, description: str) -> PresetMetric:
    return PresetMetric(name, analyses.MetricKind.COUNTS, _counter(metric, bad), exposure=_counter(metric),
                        description=description)


def _latency(name: str, bucket_metric: str, quantile: float | None, description: str) -> PresetMetric:
    return PresetMetric(name, analyses.MetricKind.HISTOGRAM, _counter(bucket_metric, by="pod, le"),
                        quantile=quantile, description=description)


def _generic() -> dict[str, PresetMetric]:
    metrics = [
        _counts("error-rate", "model_requests_total", 'code=~"5.."', "share of requests answered 5xx"),
        _latency("p99-latency", "model_request_duration_seconds_bucket", 0.99, "request latency, 99th percentile"),
        _latency("p50-latency", "model_request_duration_seconds_bucket", 0.50, "request latency, median"),
        _latency("latency", "model_request_duration_seconds_bucket", None, "request latency distribution"),
        _latency("prediction-drift", "model_prediction_score_bucket", None, "distribution of model scores"),
        _latency("input-drift", "model_input_feature_bucket", None, "distribution of input features"),
        PresetMetric("conversion", analyses.MetricKind.COUNTS,
                     _counter("model_outcomes_total", 'outcome="converted"'),
                     exposure=_counter("model_requests_total", 'code="200"'),
                     description="share of answered requests that convert (an A/B test's goal)"),
    ]
    return {m.name: m for m in metrics}


def _vllm() -> dict[str, PresetMetric]:
    metrics = [
        _counts("error-rate", "vllm:request_success_total", 'finished_reason="abort"', "share of requests aborted"),
        _latency("time-to-first-token", "vllm:time_to_first_token_seconds_bucket", 0.99, "TTFT, 99th percentile"),
        _latency("time-per-output-token", "vllm:time_per_output_token_seconds_bucket", 0.99,
                 "TPOT, 99th percentile"),
        _latency("p99-latency", "vllm:e2e_request_latency_seconds_bucket", 0.99, "end-to-end latency, p99"),
    ]
    return {m.name: m for m in metrics}


def _triton() -> dict[str, PresetMetric]:
    metrics = [
        PresetMetric("error-rate", analyses.MetricKind.COUNTS, _counter("nv_inference_request_failure"),
                     exposure=_counter("", '__name__=~"nv_inference_request_success|nv_inference_request_failure"'),
                     description="share of failed inferences"),
        PresetMetric("mean-latency", analyses.MetricKind.GAUGE,
                     f"{_increase('nv_inference_request_duration_us')} / {_increase('nv_inference_count')} / 1e6",
                     description="mean request latency in seconds"),
    ]
    return {m.name: m for m in metrics}


def _kserve() -> dict[str, PresetMetric]:
    metrics = [
        _latency("p99-latency", "request_predict_seconds_bucket", 0.99, "predict latency, p99"),
        _latency("preprocess-latency", "request_preprocess_seconds_bucket", 0.99, "preprocess latency, p99"),
    ]
    return {m.name: m for m in metrics}


_GPU_POD = 'namespace="{{namespace}}",pod=~"{{name}}-{{revision}}-.*"'
GUARDRAILS = {
    "gpu-utilization": PresetMetric("gpu-utilization", analyses.MetricKind.GAUGE,
                                    f"avg(DCGM_FI_DEV_GPU_UTIL{{{_GPU_POD}}})", description="GPU utilization %"),
    "gpu-memory-used": PresetMetric("gpu-memory-used", analyses.MetricKind.GAUGE,
                                    f"max(DCGM_FI_DEV_FB_USED{{{_GPU_POD}}})", description="framebuffer used, MiB"),
}

PRESETS: dict[analyses.Preset, dict[str, PresetMetric]] = {
    analyses.Preset.GENERIC: _generic(),
    analyses.Preset.VLLM: _vllm(),
    analyses.Preset.TRITON: _triton(),
    analyses.Preset.KSERVE: _kserve(),
}

DEFAULT_METRICS: dict[analyses.Preset, tuple[str, ...]] = {
    analyses.Preset.GENERIC: ("error-rate", "p99-latency"),
    analyses.Preset.VLLM: ("error-rate", "time-to-first-token"),
    analyses.Preset.TRITON: ("error-rate", "mean-latency"),
    analyses.Preset.KSERVE: ("p99-latency",),
}


def lookup(preset: analyses.Preset, name: str) -> PresetMetric | None:
    return PRESETS[preset].get(name) or GUARDRAILS.get(name)


def known(preset: analyses.Preset) -> list[str]:
    return sorted([*PRESETS[preset], *GUARDRAILS])
