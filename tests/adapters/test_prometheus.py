"""The Prometheus adapter against the world's real Prometheus and real model servers."""

from __future__ import annotations

import dataclasses
import datetime
import http.server
import json
import math
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
import yaml

from e2e.cluster import world as local_world
from e2e.fixtures import loopback
from e2e.fixtures.world import Kubectl, Prometheus, WorldInfo, eventually
from modelrollout import errors
from modelrollout.adapters import telemetry
from modelrollout.adapters.metrics import presets, prometheus, queries, scraping
from modelrollout.api import analyses

pytestmark = pytest.mark.cluster
ERROR_RATE = presets.lookup(analyses.Preset.GENERIC, "error-rate")
P99 = presets.lookup(analyses.Preset.GENERIC, "p99-latency")
assert ERROR_RATE is not None and P99 is not None


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


def tracks(source: prometheus.PrometheusSource, namespace: str, name: str,
           since: datetime.datetime) -> prometheus.Tracks:
    """The window as the operator reads it: the step and the lag from the measured scrape interval."""
    scrape = source.scrape(namespace, name, [ERROR_RATE])  # type: ignore[list-item]
    step = scraping.step(scrape, None)
    return prometheus.Tracks(namespace, name, "old", "new", "canary", since, datetime.datetime.now(datetime.UTC),
                             datetime.timedelta(seconds=step), lag=datetime.timedelta(seconds=scrape.lag),
                             interval=scrape.window(step))


def closed_intervals(source: prometheus.PrometheusSource, namespace: str, name: str,
                     since: datetime.datetime) -> int:
    baseline, closed = tracks(source, namespace, name, since).grid()
    return int((closed - baseline) // scrape_step())


def scrape_step() -> float:
    return float(local_world.scrape_interval())


@pytest.fixture(scope="module")
def traffic(kubectl: Kubectl, prometheus_: Prometheus,
            world: WorldInfo) -> Iterator[tuple[str, datetime.datetime]]:
    """Two 'ModelDeployments' (a and b), each with two revisions serving traffic; b's new one fails 20 %."""
    namespace = f"prometheus-adapter-{uuid.uuid4().hex[:5]}"
    kubectl("create", "namespace", namespace)
    since = datetime.datetime.now(datetime.UTC)
    objects = (servers(namespace, "a", "old", 20) + servers(namespace, "a", "new", 20)
               + servers(namespace, "b", "old", 20) + servers(namespace, "b", "new", 20, FAULT_ERROR_RATE="0.2"))
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects))
    query = f'count(model_requests_total{{namespace="{namespace}"}} > 0)'
    eventually(lambda: (prometheus_.scalar(query) or 0) >= 4, 120, what="four revisions scraped with traffic")
    source = prometheus.PrometheusSource(world.prometheus_url)
    eventually(lambda: closed_intervals(source, namespace, "a", since) >= 4, 180, interval=2,
               what="four closed intervals")
    yield namespace, since
    kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.fixture(scope="module")
def prometheus_(world: WorldInfo) -> Prometheus:
    return Prometheus(world.prometheus_url)


def same(x: float, y: float) -> bool:
    """Equal values, or both missing."""
    return (math.isnan(x) and math.isnan(y)) or x == y


def total(values: Iterable[float]) -> float:
    """The sum of the values that are there (intervals without data are nan)."""
    return sum(v for v in values if not math.isnan(v))


def range_queries() -> float:
    return float(telemetry.PROMETHEUS_QUERIES.labels("range")._value.get())


def test_the_scrape_interval_is_measured_and_confirmed_by_the_targets(
        world: WorldInfo, traffic: tuple[str, datetime.datetime]) -> None:
    namespace, _ = traffic
    found = prometheus.PrometheusSource(world.prometheus_url).scrape(namespace, "a", [ERROR_RATE])  # type: ignore[list-item]
    interval = scrape_step()
    assert found == scraping.Scrape(interval, min(10.0, interval - 1), "samples and targets")


def test_one_query_per_step_serves_every_rollout_and_matches_their_own(
        world: WorldInfo, traffic: tuple[str, datetime.datetime]) -> None:
    namespace, since = traffic
    assert ERROR_RATE is not None
    shared = prometheus.PrometheusSource(world.prometheus_url)
    first = tracks(shared, namespace, "a", since)
    before = range_queries()
    a = shared.counts(ERROR_RATE, first)
    b = shared.counts(ERROR_RATE, dataclasses.replace(first, name="b"))
    assert range_queries() - before == 4  # each rollout's window, read once: requests and errors
    assert a.error is None and b.error is None, (a.error, b.error)

    eventually(lambda: tracks(shared, namespace, "a", since).grid()[1] > first.grid()[1], 60, interval=1,
               what="the next closed step")
    later = tracks(shared, namespace, "a", since)
    before = range_queries()
    a = shared.counts(ERROR_RATE, later)
    assert range_queries() - before == 2  # one query per counter for both rollouts, for the new step only
    b = shared.counts(ERROR_RATE, dataclasses.replace(later, name="b"))
    assert range_queries() - before == 2, "the second rollout was answered from what the first fetched"

    own = prometheus.PrometheusSource(world.prometheus_url).counts(ERROR_RATE, dataclasses.replace(later, name="b"))
    assert own.error is None and len(b.intervals) == len(own.intervals) >= 5
    for mine, theirs in zip(own.intervals, b.intervals, strict=True):
        assert same(mine.canary_requests, theirs.canary_requests) and same(mine.canary_events, theirs.canary_events)
        assert same(mine.stable_requests, theirs.stable_requests)
    assert {(p.pod.split("-")[1], p.canary) for p in b.pods} == {("old", False), ("new", True)}
    canary_errors = total(i.canary_events for i in b.intervals) / total(i.canary_requests for i in b.intervals)
    stable_errors = total(i.stable_events for i in b.intervals) / total(i.stable_requests for i in b.intervals)
    assert 0.1 < canary_errors < 0.3 and stable_errors < 0.02
    assert total(i.canary_events for i in a.intervals) == 0
    counts = [v for i in b.intervals for v in (i.canary_requests, i.stable_requests) if not math.isnan(v)]
    assert all(v == int(v) for v in counts), "exact counts are integers"


def test_increase_over_one_scrape_answers_nothing_where_exact_steps_count_every_request(
        world: WorldInfo, traffic: tuple[str, datetime.datetime], prometheus_: Prometheus) -> None:
    """Why the step can be the scrape interval, but only with exact differences."""
    namespace, since = traffic
    assert ERROR_RATE is not None
    source = prometheus.PrometheusSource(world.prometheus_url)
    window = tracks(source, namespace, "a", since)
    baseline, closed = window.grid()
    step = scrape_step()
    extrapolated = source.api.query_range(
        f'sum by (pod) (increase(model_requests_total{{namespace="{namespace}",modeldeployment="a"}}[{int(step)}s]))',
        baseline + step, closed, step)
    assert extrapolated == [], "increase() over one scrape interval holds one sample per window"
    found = source.counts(ERROR_RATE, window)
    selector = f'namespace="{namespace}",modeldeployment="a"'
    at = {t: prometheus_.scalar(f"sum(model_requests_total{{{selector}}} @ {t})") or 0.0 for t in (baseline, closed)}
    exact = sum(v for p in found.pods for v in p.requests if not math.isnan(v))
    assert exact == at[closed] - at[baseline] > 0


def test_a_histogram_comes_with_its_buckets_per_pod(world: WorldInfo, traffic: tuple[str, datetime.datetime]) -> None:
    namespace, since = traffic
    assert P99 is not None
    source = prometheus.PrometheusSource(world.prometheus_url)
    found = source.histogram(P99, tracks(source, namespace, "a", since))
    assert found.error is None and found.bounds[-1] == math.inf and len(found.bounds) > 5
    assert sum(sum(i.canary) for i in found.intervals if not any(math.isnan(v) for v in i.canary)) > 100
    assert len(found.pods) == 2 and all(len(p.buckets) == len(found.intervals) for p in found.pods)


def test_an_answer_too_large_is_an_error_that_says_so(world: WorldInfo, traffic: tuple[str, datetime.datetime]) -> None:
    namespace, since = traffic
    assert P99 is not None
    source = prometheus.PrometheusSource(world.prometheus_url, max_bytes=4096)
    window = prometheus.Tracks(namespace, "a", "old", "new", "canary", since, datetime.datetime.now(datetime.UTC),
                               datetime.timedelta(seconds=scrape_step()))
    found = source.histogram(P99, window)
    assert found.error is not None and "larger than the operator reads" in found.error, found.error


def test_a_missing_series_is_named(world: WorldInfo, traffic: tuple[str, datetime.datetime]) -> None:
    namespace, since = traffic
    metric = presets.lookup(analyses.Preset.VLLM, "time-to-first-token")
    assert metric is not None
    source = prometheus.PrometheusSource(world.prometheus_url)
    found = source.histogram(metric, tracks(source, namespace, "a", since))
    assert found.error is not None and "vllm:time_to_first_token_seconds_bucket" in found.error


def test_an_unreachable_prometheus_is_an_error_not_an_exception(namespace: str) -> None:
    assert ERROR_RATE is not None
    since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=2)
    source = prometheus.PrometheusSource("http://127.0.0.1:9", timeout=2)
    window = prometheus.Tracks(namespace, "a", "old", "new", "canary", since, datetime.datetime.now(datetime.UTC),
                               datetime.timedelta(seconds=15))
    found = source.counts(ERROR_RATE, window)
    assert found.error is not None and "failed" in found.error
    with pytest.raises(errors.MetricUnavailable, match="failed"):
        source.scrape(namespace, "a", [ERROR_RATE])


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
    source = prometheus.PrometheusSource(world.prometheus_url)
    side = tracks(source, namespace, "a", since)
    rendered = queries.render(query.format(namespace=namespace, requests=requests_of(namespace, "a")),
                              side.context("canary", "new"))
    with pytest.raises(errors.MetricUnavailable) as caught:
        source.gauge(rendered, side)
    message = str(caught.value)
    assert answer in message, message
    assert repr(rendered) in message or answer.startswith("no series"), message  # that one names the series


def test_a_gauge_reads_the_one_value_over_a_window_of_several_scrapes(
        world: WorldInfo, traffic: tuple[str, datetime.datetime]) -> None:
    namespace, since = traffic
    source = prometheus.PrometheusSource(world.prometheus_url)
    side = tracks(source, namespace, "a", since)
    rendered = queries.render(requests_of(namespace, "a"), side.context("canary", "new"))
    assert f"[{int(4 * scrape_step())}s]" in rendered  # rate() in a gauge always has samples to work with
    assert source.gauge(rendered, side) > 0


def test_counts_that_are_nan_everywhere_are_an_error_naming_the_query(
        world: WorldInfo, traffic: tuple[str, datetime.datetime]) -> None:
    namespace, since = traffic
    assert ERROR_RATE is not None
    counter = f'sum by (pod) (model_requests_total{{namespace="{namespace}",revision="{{{{revision}}}}"}})'
    broken = presets.PresetMetric("ratio", analyses.MetricKind.COUNTS, counter + " / 0 * 0",
                                  exposure=ERROR_RATE.exposure)
    source = prometheus.PrometheusSource(world.prometheus_url)
    found = source.counts(broken, tracks(source, namespace, "a", since))
    assert found.error is not None and "NaN at all" in found.error and "/ 0 * 0" in found.error


def test_a_track_whose_series_stopped_is_stale_not_quiet_and_so_are_both(
        world: WorldInfo, kubectl: Kubectl, traffic: tuple[str, datetime.datetime]) -> None:
    namespace, _ = traffic
    assert ERROR_RATE is not None
    since = datetime.datetime.now(datetime.UTC)
    # c loses its canary, d both revisions: the two waits for staleness (three steps each) overlap.
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(
        servers(namespace, "c", "old", 10) + servers(namespace, "c", "new", 10)
        + servers(namespace, "d", "old", 10) + servers(namespace, "d", "new", 10)))
    source = prometheus.PrometheusSource(world.prometheus_url)

    def both_sides(name: str) -> bool:
        try:
            window = tracks(source, namespace, name, since)
        except errors.MetricUnavailable:
            return False  # not two scrapes yet: its scrape interval cannot be told
        found = source.counts(ERROR_RATE, window)
        return found.error is None and total(i.canary_requests for i in found.intervals) > 0 \
            and total(i.stable_requests for i in found.intervals) > 0
    eventually(lambda: both_sides("c") and both_sides("d"), 150, interval=2, what="both revisions of c and d counted")

    kubectl("delete", "deployment", "c-new", "d-new", "d-old", "-n", namespace)

    def stale(name: str) -> str | None:
        return source.counts(ERROR_RATE, tracks(source, namespace, name, since)).error
    error = eventually(lambda: stale("c"), 150, interval=2, what="c's canary series called stale")
    assert "the canary series stopped" in error and "before stable's (stale" in error, error

    def both_stale() -> str | None:
        found = stale("d")
        return found if found and "either revision" in found else None
    error = eventually(both_stale, 150, interval=2, what="both series of d called stale")
    assert "model_requests_total" in error and "no sample of either revision since" in error, error


class _BrokenPrometheus(http.server.BaseHTTPRequestHandler):
    """Speaks the Prometheus HTTP API, but its values are not numbers."""

    def do_POST(self) -> None:
        ranged = self.path.startswith("/api/v1/query_range")
        point = [datetime.datetime.now(datetime.UTC).timestamp() // 15 * 15, "twelve"]
        labels = {"namespace": "ns", "modeldeployment": "a", "revision": "new", "pod": "a-new-1"}
        result = [{"metric": labels, ("values" if ranged else "value"): [point] if ranged else point}]
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
    with loopback.serve(_BrokenPrometheus) as url:
        yield url


def test_a_non_numeric_answer_is_an_error_quoting_it(broken_prometheus: str) -> None:
    metric = presets.lookup(analyses.Preset.GENERIC, "error-rate")
    assert metric is not None
    since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=2)
    side = prometheus.Tracks("ns", "a", "old", "new", "canary", since, datetime.datetime.now(datetime.UTC),
                             datetime.timedelta(seconds=15))
    source = prometheus.PrometheusSource(broken_prometheus)
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
