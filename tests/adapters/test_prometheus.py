"""The Prometheus adapter against the world's real Prometheus and real model servers."""

from __future__ import annotations

import datetime
import http.server
import json
import math
import threading
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
import yaml

from e2e.fixtures.world import Kubectl, Prometheus, WorldInfo, eventually
from modelrollout import errors
from modelrollout.adapters import telemetry
from modelrollout.adapters.metrics import presets, prometheus, queries
from modelrollout.api import analyses

pytestmark = pytest.mark.cluster
STEP = datetime.timedelta(seconds=10)


def servers(namespace: str, name: str, revision: str, rps: int, **env: str) -> list[dict[str, Any]]:
    labels = {"modelrollout.io/name": name, "modelrollout.io/revision": revision, "modelrollout.io/track": "stable"}
    container = {"name": "server", "image": "registry.example/modelserver:1.0", "ports": [{"containerPort": 8080}],
                 "env": [{"name": k, "value": v} for k, v in env.items()]}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"{name}-{revision}"},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": f"{name}-{revision}", "annotations": {"e2e.modelrollout.io/rps": str(rps)}},
         "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}},
    ]


@pytest.fixture(scope="module")
def traffic(kubectl: Kubectl, prometheus: Prometheus) -> Iterator[tuple[str, datetime.datetime]]:
    """Two 'ModelDeployments' (a and b), each with two revisions serving traffic; b's new one fails 20 %."""
    namespace = f"prometheus-adapter-{uuid.uuid4().hex[:5]}"
    kubectl("create", "namespace", namespace)
    objects = (servers(namespace, "a", "old", 20) + servers(namespace, "a", "new", 20)
               + servers(namespace, "b", "old", 20) + servers(namespace, "b", "new", 20, FAULT_ERROR_RATE="0.2"))
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects))
    query = f'count(model_requests_total{{namespace="{namespace}"}} > 0)'
    eventually(lambda: (prometheus.scalar(query) or 0) >= 4, 90, what="four revisions scraped with traffic")
    # On the step grid, so that a rollout's own queries and the shared ones sample the same instants.
    now = datetime.datetime.now(datetime.UTC).timestamp()
    since = datetime.datetime.fromtimestamp(now - now % STEP.total_seconds(), datetime.UTC)
    eventually(lambda: datetime.datetime.now(datetime.UTC) - since > datetime.timedelta(seconds=45), 60,
               what="45 s of data")
    yield namespace, since
    kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def tracks(namespace: str, name: str, since: datetime.datetime) -> prometheus.Tracks:
    return prometheus.Tracks(namespace, name, "old", "new", "canary", since, datetime.datetime.now(datetime.UTC), STEP)


def same(x: float, y: float) -> bool:
    """Equal values, or both missing (a scrape gap reads as nan in both answers)."""
    return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-9)


def total(values: Iterable[float]) -> float:
    """The sum of the values that are there (scrape gaps are nan)."""
    return sum(v for v in values if not math.isnan(v))


def queries_made() -> float:
    return next(s.value for s in telemetry.QUERY_SECONDS.collect()[0].samples if s.name.endswith("_count"))


def test_one_batched_query_serves_every_rollout_and_matches_their_own(
        world: WorldInfo, traffic: tuple[str, datetime.datetime]) -> None:
    namespace, since = traffic
    metric = presets.lookup(analyses.Preset.GENERIC, "error-rate")
    assert metric is not None and metric.batch is not None
    shared = prometheus.PrometheusSource(world.prometheus_url)
    own = prometheus.PrometheusSource(world.prometheus_url, lookback=datetime.timedelta(seconds=0))

    before = queries_made()
    a = shared.counts(metric, tracks(namespace, "a", since))
    after_a = queries_made()
    b = shared.counts(metric, tracks(namespace, "b", since))
    assert queries_made() == after_a, "the second rollout was answered from the shared queries"
    assert after_a - before == 2  # events and requests, for every rollout and revision at once

    b_own = own.counts(metric, tracks(namespace, "b", since))
    assert a.error is None and b.error is None and b_own.error is None
    assert len(b.intervals) >= 3
    shared_by_end = {i.end: i for i in b.intervals}
    common = [i for i in b_own.intervals if i.end in shared_by_end]
    assert common, (b.intervals, b_own.intervals)
    for mine in common:
        theirs = shared_by_end[mine.end]
        assert same(mine.canary_requests, theirs.canary_requests)
        assert same(mine.canary_events, theirs.canary_events)
    canary_errors = total(i.canary_events for i in b.intervals) / total(i.canary_requests for i in b.intervals)
    stable_errors = total(i.stable_events for i in b.intervals) / total(i.stable_requests for i in b.intervals)
    assert 0.1 < canary_errors < 0.3 and stable_errors < 0.02
    assert total(i.canary_events for i in a.intervals) == 0


def test_a_histogram_comes_with_its_buckets(world: WorldInfo, traffic: tuple[str, datetime.datetime]) -> None:
    namespace, since = traffic
    metric = presets.lookup(analyses.Preset.GENERIC, "p99-latency")
    assert metric is not None
    found = prometheus.PrometheusSource(world.prometheus_url).histogram(metric, tracks(namespace, "a", since))
    assert found.error is None and found.bounds[-1] == math.inf and len(found.bounds) > 5
    assert sum(sum(i.canary) for i in found.intervals if not any(math.isnan(v) for v in i.canary)) > 100


def test_a_missing_series_is_named(world: WorldInfo, traffic: tuple[str, datetime.datetime]) -> None:
    namespace, since = traffic
    metric = presets.lookup(analyses.Preset.VLLM, "time-to-first-token")
    assert metric is not None
    found = prometheus.PrometheusSource(world.prometheus_url).histogram(metric, tracks(namespace, "a", since))
    assert found.error is not None and "vllm:time_to_first_token_seconds_bucket" in found.error


def test_an_unreachable_prometheus_is_an_error_not_an_exception(namespace: str) -> None:
    metric = presets.lookup(analyses.Preset.GENERIC, "error-rate")
    assert metric is not None
    since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=2)
    found = prometheus.PrometheusSource("http://127.0.0.1:9", timeout=2).counts(metric, tracks(namespace, "a", since))
    assert found.error is not None and "failed" in found.error


def requests_of(namespace: str, name: str) -> str:
    return f'sum(increase(model_requests_total{{namespace="{namespace}",modeldeployment="{name}",' \
           'revision="{{revision}}"}[{{interval}}]))'


@pytest.mark.parametrize("query, answer", [
    ("{requests} / 0 * 0", "answered NaN"),
    ('model_requests_total{{namespace="{namespace}"}}', "series where one was expected"),
    ('sum(model_requests_total{{namespace="{namespace}",revision="no-such-revision"}})', "empty vector"),
    ('sum(vllm:num_requests_running{{namespace="{namespace}",modeldeployment="a"}})',
     "no series vllm:num_requests_running"),
])
def test_a_gauge_that_is_not_one_number_says_what_it_got(
        world: WorldInfo, traffic: tuple[str, datetime.datetime], query: str, answer: str) -> None:
    namespace, since = traffic
    side = tracks(namespace, "a", since)
    rendered = queries.render(query.format(namespace=namespace, requests=requests_of(namespace, "a")),
                              side.context("canary", "new"))
    with pytest.raises(errors.MetricUnavailable) as caught:
        prometheus.PrometheusSource(world.prometheus_url).gauge(rendered, side)
    message = str(caught.value)
    assert answer in message, message
    assert repr(rendered) in message or answer.startswith("no series"), message  # that one names the series


def test_a_gauge_reads_the_one_value(world: WorldInfo, traffic: tuple[str, datetime.datetime]) -> None:
    namespace, since = traffic
    side = tracks(namespace, "a", since)
    rendered = queries.render(requests_of(namespace, "a"), side.context("canary", "new"))
    assert prometheus.PrometheusSource(world.prometheus_url).gauge(rendered, side) > 0


def test_counts_that_are_nan_everywhere_are_an_error_naming_the_query(
        world: WorldInfo, traffic: tuple[str, datetime.datetime]) -> None:
    namespace, since = traffic
    preset = presets.lookup(analyses.Preset.GENERIC, "error-rate")
    assert preset is not None
    broken = presets.PresetMetric("ratio", analyses.MetricKind.COUNTS, requests_of(namespace, "a") + " / 0 * 0",
                                  exposure=preset.exposure)
    found = prometheus.PrometheusSource(world.prometheus_url).counts(broken, tracks(namespace, "a", since))
    assert found.error is not None and "NaN at all" in found.error and "/ 0 * 0" in found.error


def test_a_track_whose_series_stopped_is_stale_not_quiet(
        world: WorldInfo, kubectl: Kubectl, traffic: tuple[str, datetime.datetime]) -> None:
    namespace, _ = traffic
    kubectl("apply", "-n", namespace, "-f", "-",
            input=yaml.safe_dump_all(servers(namespace, "c", "old", 10) + servers(namespace, "c", "new", 10)))
    since = datetime.datetime.now(datetime.UTC)
    metric = presets.lookup(analyses.Preset.GENERIC, "error-rate")
    assert metric is not None
    source = prometheus.PrometheusSource(world.prometheus_url, lookback=datetime.timedelta(seconds=0))

    def both_sides() -> bool:
        found = source.counts(metric, tracks(namespace, "c", since))
        return found.error is None and total(i.canary_requests for i in found.intervals) > 0 \
            and total(i.stable_requests for i in found.intervals) > 0
    eventually(both_sides, 90, interval=2, what="both revisions of c counted")

    kubectl("delete", "deployment", "c-new", "-n", namespace)

    def stale() -> str | None:
        return source.counts(metric, tracks(namespace, "c", since)).error
    error = eventually(stale, 90, interval=2, what="the canary's series called stale")
    assert "the canary series stopped" in error and "before stable's (stale" in error, error


class _BrokenPrometheus(http.server.BaseHTTPRequestHandler):
    """Speaks the Prometheus HTTP API, but its values are not numbers."""

    def do_GET(self) -> None:
        ranged = self.path.startswith("/api/v1/query_range")
        point = [datetime.datetime.now(datetime.UTC).timestamp(), "twelve"]
        result = [{"metric": {}, ("values" if ranged else "value"): [point] if ranged else point}]
        body = json.dumps({"status": "success", "data": {"resultType": "matrix" if ranged else "vector",
                                                         "result": result}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def broken_prometheus() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BrokenPrometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_non_numeric_answer_is_an_error_quoting_it(broken_prometheus: str) -> None:
    metric = presets.lookup(analyses.Preset.GENERIC, "error-rate")
    assert metric is not None
    since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=2)
    side = tracks("ns", "a", since)
    source = prometheus.PrometheusSource(broken_prometheus, lookback=datetime.timedelta(seconds=0))
    found = source.counts(metric, side)
    assert found.error is not None and "non-numeric value 'twelve'" in found.error
    with pytest.raises(errors.MetricUnavailable, match="non-numeric value 'twelve'"):
        source.gauge("sum(up)", side)


def test_prometheus_says_where_a_query_does_not_parse(world: WorldInfo) -> None:
    source = prometheus.PrometheusSource(world.prometheus_url)
    assert source.parse_error('sum(rate(model_requests_total{revision="r"}[30s]))') is None
    problem = source.parse_error('avg(rate(model_prediction_score_sum{revision="r"}[30s])')
    assert problem is not None and "parse error" in problem and "1:" in problem, problem
    assert prometheus.PrometheusSource("http://127.0.0.1:9", timeout=2).parse_error("sum(") is None  # cannot tell
