"""Reading metric samples per track from Prometheus (prometheus-api-client, a blocking client).

Each metric is read with range queries from the start of the analysis to now, one point per
`step`, each point the increase over the step before it: per-interval increments for the
stable and the candidate revision, aligned on the same timestamps. The judges recompute from
these series every tick, so nothing statistical is kept between ticks and a restarted
operator reaches the same verdict.

A failed query, a non-numeric value, several series where one was expected, a series that is
NaN at every point, or a candidate's series that stopped while stable's goes on (a stale
series: its pods are no longer scraped) is not data: the samples carry an `error` naming the
query and the answer, and the verdict becomes ERROR. An empty answer is "no data yet" unless
the series does not exist at all, which is reported with the name of the missing series.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime
import json
import math
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import prometheus_api_client
import requests
from prometheus_api_client import exceptions as prometheus_errors

from modelrollout import errors
from modelrollout.adapters import telemetry
from modelrollout.adapters.metrics import presets, queries
from modelrollout.core.analysis import samples

_SERIES_NAME = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{")
_PARSE_ERROR = re.compile(r"\d+:\d+: parse error: .*")
_ANSWER = re.compile(r"\((b['\"].*['\"])\)$", re.DOTALL)
"""The body prometheus-api-client quotes in its exception: HTTP Status Code 400 (b'{...}')."""
PARSED_CACHE = 1024
"""Queries whose parse result a source remembers (a query's syntax does not change)."""
DEFAULT_LOOKBACK = datetime.timedelta(hours=3)
"""How far back the shared per-tick queries reach; an analysis that began earlier reads its own."""
Points = dict[float, float]
STALE_STEPS = 3
"""Steps the candidate's series may end before stable's before it counts as stale (a scrape or
two may lag; three missed steps in a row mean its pods are gone)."""


@dataclasses.dataclass(frozen=True)
class Tls:
    """How to check the Prometheus server's certificate."""

    insecure_skip_verify: bool = False
    ca_file: str | None = None


@dataclasses.dataclass(frozen=True)
class Tracks:
    """The two sides of a comparison and the window to read."""

    namespace: str
    name: str
    stable_revision: str
    candidate_revision: str
    candidate_track: str
    start: datetime.datetime
    end: datetime.datetime
    step: datetime.timedelta

    def context(self, track: str, revision: str) -> queries.Context:
        return queries.Context(self.namespace, self.name, track, revision, f"{int(self.step.total_seconds())}s")

    def sides(self) -> Sequence[tuple[str, str]]:
        """(track, revision) of stable, then of the candidate."""
        return [("stable", self.stable_revision), (self.candidate_track, self.candidate_revision)]


class PrometheusSource:
    """One Prometheus server; shared by every ModelDeployment that names the same address."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0, tls: Tls | None = None,
                 lookback: datetime.timedelta = DEFAULT_LOOKBACK) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self.url = url
        self.timeout = timeout
        self.lookback = lookback
        self._batches: dict[tuple[str, float, float], list[dict[str, Any]]] = {}
        self._parsed: dict[str, str | None] = {}
        self._batch_lock = threading.Lock()
        tls = tls or Tls()
        session = requests.Session()
        session.verify = tls.ca_file or not tls.insecure_skip_verify
        self.client = prometheus_api_client.PrometheusConnect(
            url=url, headers=headers, disable_ssl=tls.insecure_skip_verify, session=session)

    def _range(self, query: str, tracks: Tracks) -> list[dict[str, Any]]:
        start = tracks.start + tracks.step  # the first point covers the first whole step
        if start > tracks.end:
            return []
        try:
            with telemetry.QUERY_SECONDS.time():
                result: list[dict[str, Any]] = self.client.custom_query_range(
                    query, start_time=start, end_time=tracks.end, step=f"{int(tracks.step.total_seconds())}s",
                    timeout=self.timeout)
        except (prometheus_errors.PrometheusApiClientException, requests.RequestException, ValueError) as error:
            telemetry.QUERY_ERRORS.inc()
            raise errors.MetricUnavailable(f"query {query!r} failed: {error}") from None
        return result

    def instant(self, query: str) -> list[dict[str, Any]]:
        try:
            with telemetry.QUERY_SECONDS.time():
                result: list[dict[str, Any]] = self.client.custom_query(query, timeout=self.timeout)
        except (prometheus_errors.PrometheusApiClientException, requests.RequestException, ValueError) as error:
            telemetry.QUERY_ERRORS.inc()
            raise errors.MetricUnavailable(f"query {query!r} failed: {error}") from None
        return result

    def parse_error(self, query: str) -> str | None:
        """Prometheus's parse error for `query`; None when it parses, or when Prometheus cannot be asked.

        The query is evaluated at time 0, where no data is, so asking costs Prometheus nothing.
        """
        if query in self._parsed:
            return self._parsed[query]
        try:
            self.client.custom_query(query, params={"time": "0"}, timeout=self.timeout)
            found = None
        except prometheus_errors.PrometheusApiClientException as error:
            match = _PARSE_ERROR.search(_error_text(error))
            if match is None:
                return None  # another failure: not about the query's syntax, and maybe passing
            found = f"Prometheus cannot parse it: {match.group(0)}"
        except (requests.RequestException, ValueError):
            return None
        if len(self._parsed) >= PARSED_CACHE:
            self._parsed.clear()
        self._parsed[query] = found
        return found

    def gauge(self, query: str, tracks: Tracks) -> float:
        """The one value an instant query answers; MetricUnavailable saying what was wrong otherwise."""
        answer = self.instant(query)
        if not answer:
            missing = self.missing_series(query, tracks)
            raise errors.MetricUnavailable(missing or f"query {query!r} answered an empty vector: no sample in the "
                                                      "lookback window (a stale series, or none scraped yet)")
        if len(answer) > 1:
            raise errors.MetricUnavailable(_several(query, answer))
        raw = (answer[0].get("value") or [None, None])[1]
        value = _number(query, raw)
        if math.isnan(value):
            raise errors.MetricUnavailable(f"query {query!r} answered NaN (no samples in the interval, "
                                           "or a division by zero)")
        return value

    @staticmethod
    def _single(query: str, series: list[dict[str, Any]]) -> Points:
        """The one series a per-track query must return, as {timestamp: value}."""
        if len(series) > 1:
            raise errors.MetricUnavailable(_several(query, series))
        return _points(query, series[0]["values"]) if series else {}

    @staticmethod
    def _by_le(query: str, series: list[dict[str, Any]]) -> dict[float, Points]:
        out: dict[float, Points] = {}
        for item in series:
            le = item.get("metric", {}).get("le")
            if le is None:
                raise errors.MetricUnavailable(f"histogram query {query!r} returned a series without le: "
                                               f"{item.get('metric')}; group it with sum by (le)")
            out[_bound(le, query)] = _points(query, item["values"])
        return out

    def _batch(self, template: str, tracks: Tracks) -> list[dict[str, Any]] | None:
        """The shared answer of a batched query for the step-aligned window ending now, or None when
        this rollout's analysis began before the shared window (it then reads its own series)."""
        step = tracks.step.total_seconds()
        end = math.floor(tracks.end.timestamp() / step) * step
        start = end - self.lookback.total_seconds()
        if tracks.start.timestamp() < start or end <= tracks.start.timestamp():
            return None
        query = queries.render(template, queries.Context("", "", "", "", f"{int(step)}s"))
        key = (query, end, step)
        with self._batch_lock:
            if key not in self._batches:
                window = dataclasses.replace(
                    tracks, start=datetime.datetime.fromtimestamp(start - step, datetime.UTC),
                    end=datetime.datetime.fromtimestamp(end, datetime.UTC))
                self._batches = {k: v for k, v in self._batches.items() if k[1] >= end}  # drop older ticks
                self._batches[key] = self._range(query, window)
            return self._batches[key]

    @staticmethod
    def _picked(series: list[dict[str, Any]], tracks: Tracks, revision: str, query: str) -> list[dict[str, Any]]:
        """The series of one revision out of a batched answer, trimmed to the analysis window."""
        first = tracks.start.timestamp() + tracks.step.total_seconds()
        out = []
        for item in series:
            labels = item.get("metric", {})
            if (labels.get("namespace"), labels.get("modeldeployment"), labels.get("revision")) == (
                    tracks.namespace, tracks.name, revision):
                values = [v for v in item.get("values", []) if float(v[0]) >= first - 1e-6]
                out.append({"metric": labels, "values": values})
        return out

    def _track_series(self, template: str, batch: str | None, tracks: Tracks, track: str,
                      revision: str) -> list[dict[str, Any]]:
        shared = self._batch(batch, tracks) if batch else None
        if shared is not None:
            return self._picked(shared, tracks, revision, batch or "")
        return self._range(queries.render(template, tracks.context(track, revision)), tracks)

    def missing_series(self, query: str, tracks: Tracks) -> str | None:
        """If the metric a query reads does not exist for this ModelDeployment, says which one."""
        match = _SERIES_NAME.search(query)
        if match is None:
            return None
        name = match.group(1)
        selector = f'namespace="{tracks.namespace}",modeldeployment="{tracks.name}"'
        if self.instant(f"count({name}{{{selector}}})"):
            return None
        return f"no series {name}{{{selector}}} in Prometheus: does the model server export it?"

    def counts(self, metric: presets.PresetMetric, tracks: Tracks) -> samples.CountSamples:
        assert metric.exposure is not None
        try:
            per_track = []
            for track, revision in tracks.sides():
                exposure = self._single(metric.exposure, self._track_series(
                    metric.exposure, metric.batch_exposure, tracks, track, revision))
                events = self._single(metric.query, self._track_series(
                    metric.query, metric.batch, tracks, track, revision))
                per_track.append((exposure, events))
            _fresh(metric.exposure, [set(exposure) for exposure, _ in per_track], tracks)
            if not per_track[0][0] and not per_track[1][0]:
                missing = self.missing_series(queries.render(metric.exposure, tracks.context("stable", "")), tracks)
                if missing:
                    return samples.CountSamples(metric.name, error=missing)
        except errors.MetricUnavailable as error:
            return samples.CountSamples(metric.name, error=str(error))
        (stable_n, stable_e), (canary_n, canary_e) = per_track
        times = sorted(set(stable_n) | set(canary_n))
        intervals = tuple(
            samples.CountInterval(
                stable_requests=stable_n.get(t, math.nan), stable_events=_events(stable_e, stable_n, t),
                canary_requests=canary_n.get(t, math.nan), canary_events=_events(canary_e, canary_n, t),
                end=t)
            for t in times)
        return samples.CountSamples(metric.name, intervals)

    def histogram(self, metric: presets.PresetMetric, tracks: Tracks) -> samples.HistogramSamples:
        try:
            sides = [self._by_le(metric.query, self._track_series(metric.query, metric.batch, tracks, track, revision))
                     for track, revision in tracks.sides()]
            if not sides[0] and not sides[1]:
                missing = self.missing_series(queries.render(metric.query, tracks.context("stable", "")), tracks)
                if missing:
                    return samples.HistogramSamples(metric.name, (math.inf,), error=missing)
            _fresh(metric.query, [{t for points in side.values() for t in points} for side in sides], tracks)
        except errors.MetricUnavailable as error:
            return samples.HistogramSamples(metric.name, (math.inf,), error=str(error))
        bounds = sorted(set(sides[0]) | set(sides[1]))
        if not bounds:
            return samples.HistogramSamples(metric.name, (math.inf,))
        if bounds[-1] != math.inf:
            return samples.HistogramSamples(metric.name, (math.inf,),
                                            error=f"histogram {metric.name}: no +Inf bucket in {bounds}")
        times = sorted({t for side in sides for points in side.values() for t in points})
        intervals = []
        for t in times:
            stable = samples.buckets_from_cumulative([sides[0].get(b, {}).get(t, math.nan) for b in bounds])
            canary = samples.buckets_from_cumulative([sides[1].get(b, {}).get(t, math.nan) for b in bounds])
            intervals.append(samples.HistogramInterval(stable, canary, end=t))
        return samples.HistogramSamples(metric.name, tuple(bounds), tuple(intervals))


def _events(events: Points, exposure: Points, t: float) -> float:
    """An events series is absent while nothing bad happened: 0 where requests were counted."""
    return events.get(t, 0.0 if t in exposure else math.nan)


def _bound(le: str, query: str) -> float:
    try:
        return math.inf if le in ("+Inf", "Inf") else float(le)
    except ValueError:
        raise errors.MetricUnavailable(f"query {query!r}: bucket bound le={le!r} is not a number") from None


def _error_text(error: Exception) -> str:
    """The `error` field of the answer quoted in a prometheus-api-client exception, else its text."""
    quoted = _ANSWER.search(str(error))
    try:
        answer = json.loads(ast.literal_eval(quoted.group(1))) if quoted else None
    except (ValueError, SyntaxError):
        answer = None
    return str(answer.get("error", "")) if isinstance(answer, dict) else str(error)


def _several(query: str, series: list[dict[str, Any]]) -> str:
    labels = [s.get("metric", {}) for s in series[:3]]
    return (f"query {query!r} returned {len(series)} series where one was expected (first: {labels}); "
            "aggregate it with sum(...)")


def _number(query: str, raw: Any) -> float:
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise errors.MetricUnavailable(f"query {query!r} answered a non-numeric value {raw!r}") from None


def _points(query: str, values: Sequence[Sequence[Any]]) -> Points:
    out = {float(stamp): _number(query, raw) for stamp, raw in values}
    if out and all(math.isnan(v) for v in out.values()):
        raise errors.MetricUnavailable(f"query {query!r} answered NaN at all {len(out)} points "
                                       "(a division by zero?)")
    return out


def _fresh(query: str, stamps: Sequence[set[float]], tracks: Tracks) -> None:
    """Raises if the candidate's series ended STALE_STEPS steps or more before stable's: its pods
    are no longer scraped, and judging the data it left would pass a version nobody sees. (Stable's
    series may end: at weight 100 with no room to spare its last pod goes.)"""
    stable, candidate = stamps
    if not stable or not candidate:
        return
    behind = max(stable) - max(candidate)
    if behind >= STALE_STEPS * tracks.step.total_seconds():
        stopped = datetime.datetime.fromtimestamp(max(candidate), datetime.UTC).strftime("%H:%M:%SZ")
        raise errors.MetricUnavailable(
            f"query {query!r}: the {tracks.candidate_track} series stopped at {stopped}, {behind:.0f} s before "
            "stable's (stale: are its pods still scraped?)")


def sources_key(url: str, token: str | None) -> tuple[str, str | None]:
    return (url.rstrip("/"), token)


class Sources:
    """One PrometheusSource per (address, credential), shared across ModelDeployments."""

    def __init__(self, timeout: float = 10.0, tls: Tls | None = None) -> None:
        self.timeout = timeout
        self.tls = tls or Tls()
        self._sources: dict[tuple[str, str | None], PrometheusSource] = {}

    def get(self, url: str, token: str | None = None) -> PrometheusSource:
        key = sources_key(url, token)
        if key not in self._sources:
            self._sources[key] = PrometheusSource(key[0], token, self.timeout, self.tls)
        return self._sources[key]

    def known(self) -> Mapping[tuple[str, str | None], PrometheusSource]:
        return dict(self._sources)
