"""The `generic` preset's metric families, as the operator's queries expect them (names exact).

No per-pod labels: Prometheus adds namespace, pod, modeldeployment, track and revision from
file-based service discovery, to `model_outcomes_total` as to `model_requests_total`, so a
conversion rate per pod or track is `sum by (track) (rate(model_outcomes_total{outcome="converted"}[w]))
/ sum by (track) (rate(model_requests_total{code="200"}[w]))`. Each server owns its registry, so
tests can run several in one process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.process_collector import ProcessCollector

from e2e.modelserver import dataset

#: What Prometheus is told the body is; every Prometheus release parses this format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Factor 2^(1/4) from 7.8 ms to 2 s, where the p99s of the scenarios live, coarse outside: the
#: layout docs/analysis.md recommends, which resolves a latency regression of 19 % (Python's
#: defaults resolve only 33-50 % near 65 ms, where a +50 % regression could not fail).
DURATION_BUCKETS = (0.001, 0.0025, 0.005, *(round(2.0 ** (k / 4), 6) for k in range(-28, 5)), 5.0, 10.0)
SCORE_BUCKETS = tuple(round(i / 20, 2) for i in range(1, 21))
#: Standardised inputs: most mass within +-3, with room for the data's long right tails.
FEATURE_BUCKETS = (-3.0, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0)
#: Only the first few features get a histogram, to keep series per pod small.
WATCHED_FEATURES = dataset.FEATURE_NAMES[:4]


class ServerMetrics:
    """The four families, the outcome counter and process metrics (RSS, CPU) in a registry of
    their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "model_requests", "Prediction requests served, by HTTP status code.",
            ["code"], registry=self.registry,
        )
        self.duration = Histogram(
            "model_request_duration_seconds", "Prediction request latency.",
            buckets=DURATION_BUCKETS, registry=self.registry,
        )
        self.score = Histogram(
            "model_prediction_score", "The model's output score P(class 1), one per predicted row.",
            buckets=SCORE_BUCKETS, registry=self.registry,
        )
        self.feature = Histogram(
            "model_input_feature", "Standardised input values of the first features, one per row.",
            ["feature"], buckets=FEATURE_BUCKETS, registry=self.registry,
        )
        self._feature_children = [self.feature.labels(feature=name) for name in WATCHED_FEATURES]
        self.outcomes = Counter(
            "model_outcomes", "Answered predictions that led to an outcome (converted: OUTCOME_RATE of them).",
            ["outcome"], registry=self.registry,
        )
        # Created now so the series exists at 0 before the first conversion (or with no OUTCOME_RATE).
        self.converted = self.outcomes.labels(outcome="converted")

    def observe_rows(self, z_rows: list[list[float]], scores: list[float]) -> None:
        """Records the standardised inputs and output scores of predicted rows."""
        for row in z_rows:
            for child, value in zip(self._feature_children, row, strict=False):
                child.observe(value)
        for s in scores:
            self.score.observe(s)

    def exposition(self) -> bytes:
        """The Prometheus text format of everything registered."""
        return generate_latest(self.registry)
