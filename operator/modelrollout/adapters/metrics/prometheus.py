"""Reading metric samples per track and per pod from Prometheus.

Counts and histograms are exact: the raw counters of each pod are read on a grid of steps (a
range query of `max by (pod) (sum by (pod, track) (counter))`, the presets' form), and each
step's increment is their difference, with Prometheus's reset rule (`core.analysis.counters`).
Extrapolating functions (`increase`, `rate`) are never applied to them. The grid:

- the step is the scrape interval of the ModelDeployment's pods (`scraping`), or the operator's
  longer `sample_step`; steps are multiples of it since the epoch, so every ModelDeployment
  read at the same step shares one grid and one batched query;
- the first interval ends one step after the baseline, the first grid time at or after the
  analysis began, so every pod alive then has a value to difference from;
- only closed intervals are judged: those ending at least `Scrape.lag` (scrape timeout plus
  scrape interval) before now, whose values can no longer change. A closed interval never
  changes, so the verdict after a restart is the one before it.

What was fetched is kept (`caching`): each tick asks only for the steps not yet fetched, in one
query for every ModelDeployment under analysis where the template allows it.

A failed query, a non-numeric value, an answer too large to read, a series that is NaN at every
point, data that ended (`assembling.check_fresh`) or a missing metric is not data: the samples
carry an `error` naming the query and the answer, and the verdict becomes ERROR. An empty
answer is "no data yet" unless the metric does not exist at all for this ModelDeployment,
which is reported with the name of the missing series.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from modelrollout import errors
from modelrollout.adapters.metrics import assembling, caching, http_api, presets, queries, scraping
from modelrollout.core.analysis import samples

_SERIES_NAME = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{")
_PARSE_ERROR = re.compile(r"\d+:\d+: parse error: .*")
PARSED_CACHE = 1024
"""Queries whose parse result a source remembers (a query's syntax does not change)."""
DEFAULT_EXPIRY = 300.0
"""Seconds an analysis not asked for keeps its place in the batched queries and the cache."""
Tls = http_api.Tls
Access = http_api.Access


@dataclasses.dataclass(frozen=True)
class Tracks:
    """The two sides of a comparison, the window to read and its grid."""

    namespace: str
    name: str
    stable_revision: str
    candidate_revision: str
    candidate_track: str
    start: datetime.datetime
    """When the analysis began."""
    end: datetime.datetime
    """Now."""
    step: datetime.timedelta
    lag: datetime.timedelta = datetime.timedelta()
    """How long after a step its value is final (`scraping.Scrape.lag`)."""
    interval: str = ""
    """The value of {{interval}} (`scraping.Scrape.window`); the step when empty."""
    expires_after: float = DEFAULT_EXPIRY

    def context(self, track: str, revision: str) -> queries.Context:
        window = self.interval or f"{math.ceil(self.step.total_seconds())}s"
        return queries.Context(self.namespace, self.name, track, revision, window)

    def sides(self) -> Sequence[tuple[str, str]]:
        """(track, revision) of stable, then of the candidate."""
        return [("stable", self.stable_revision), (self.candidate_track, self.candidate_revision)]

    def grid(self) -> tuple[float, float]:
        """(baseline, end of the last closed interval), both on the step grid; no interval when end <= baseline."""
        step = self.step.total_seconds()
        baseline = math.ceil(self.start.timestamp() / step - 1e-9) * step
        closed = math.floor((self.end - self.lag).timestamp() / step + 1e-9) * step
        return baseline, closed


class PrometheusSource:
    """One Prometheus server; shared by every ModelDeployment that names the same address."""

    def __init__(self, url: str, access: Access | None = None, timeout: float = 10.0,
                 max_bytes: int = http_api.DEFAULT_MAX_BYTES) -> None:
        self.url = url
        self.timeout = timeout
        self.api = http_api.Api(url, access, timeout, max_bytes)
        self.scrapes = scraping.Intervals(self.api)
        self.cache = caching.Cache(self.api.query_range)
        self._parsed: dict[str, str | None] = {}

    def scrape(self, namespace: str, name: str, metrics: Sequence[presets.PresetMetric]) -> scraping.Scrape:
        """How this ModelDeployment's pods are scraped (MetricUnavailable when nothing tells)."""
        names = []
        for metric in metrics:
            for query in (metric.exposure, metric.query):
                found = _SERIES_NAME.search(query or "")
                if found and found.group(1) not in names:
                    names.append(found.group(1))
        return self.scrapes.of(namespace, name, names[:3])

    def forget(self, namespace: str, name: str) -> None:
        """Drops what is kept for one ModelDeployment (its analysis ended, or it was deleted)."""
        self.cache.forget((namespace, name))
        self.scrapes.forget(namespace, name)

    def instant(self, query: str) -> list[dict[str, Any]]:
        return self.api.query(query)

    def parse_error(self, query: str) -> str | None:
        """Prometheus's parse error for `query`; None when it parses, or when Prometheus cannot be asked.

        The query is evaluated at time 0, where no data is, so asking costs Prometheus nothing.
        """
        if query in self._parsed:
            return self._parsed[query]
        try:
            self.api.query(query, at=0)
            found = None
        except http_api.PrometheusError as error:
            match = _PARSE_ERROR.search(error.detail)
            if error.error_type != "bad_data" or match is None:
                return None  # another failure: not about the query's syntax, and maybe passing
            found = f"Prometheus cannot parse it: {match.group(0)}"
        except errors.MetricUnavailable:
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
            labels = [s.get("metric", {}) for s in answer[:3]]
            raise errors.MetricUnavailable(f"query {query!r} returned {len(answer)} series where one was expected "
                                           f"(first: {labels}); aggregate it with sum(...)")
        raw = (answer[0].get("value") or [None, None])[1]
        value = _number(query, raw)
        if math.isnan(value):
            raise errors.MetricUnavailable(f"query {query!r} answered NaN (no samples in the interval, "
                                           "or a division by zero)")
        return value

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

    def _view(self, template: str, tracks: Tracks, histogram: bool) -> caching.View:
        """The cached per-pod increments of both revisions, batched when the template allows it."""
        baseline, closed = tracks.grid()
        step = tracks.step.total_seconds()
        owner = (tracks.namespace, tracks.name)
        batch = queries.batched(template)
        if batch is not None:
            wanted = caching.Wanted(owner, frozenset([tracks.stable_revision, tracks.candidate_revision]),
                                    baseline, tracks.expires_after)
            return self.cache.read(caching.FamilyKey(batch, step, histogram), wanted, closed)
        views = []
        for track, revision in tracks.sides():
            rendered = queries.render(template, tracks.context(track, revision))
            key = caching.FamilyKey(rendered, step, histogram, fixed=(tracks.namespace, tracks.name, revision))
            wanted = caching.Wanted(owner, frozenset([revision]), baseline, tracks.expires_after)
            views.append(self.cache.read(key, wanted, closed))
        return dataclasses.replace(views[0], units={**views[0].units, **views[1].units})

    def _missing(self, template: str, tracks: Tracks) -> str | None:
        return self.missing_series(queries.render(template, tracks.context("stable", tracks.stable_revision)), tracks)

    def counts(self, metric: presets.PresetMetric, tracks: Tracks) -> samples.CountSamples:
        assert metric.exposure is not None
        try:
            exposure = self._view(metric.exposure, tracks, histogram=False)
            events = self._view(metric.query, tracks, histogram=False)
            if not exposure.units:
                missing = self._missing(metric.exposure, tracks)
                if missing:
                    return samples.CountSamples(metric.name, error=missing)
            shown = queries.render(metric.exposure, tracks.context(tracks.candidate_track, tracks.candidate_revision))
            assembling.check_fresh(shown, exposure, tracks.candidate_revision, tracks.candidate_track)
        except errors.MetricUnavailable as error:
            return samples.CountSamples(metric.name, error=str(error))
        return assembling.counts(metric.name, exposure, events, tracks.candidate_revision)

    def histogram(self, metric: presets.PresetMetric, tracks: Tracks) -> samples.HistogramSamples:
        try:
            view = self._view(metric.query, tracks, histogram=True)
            if not view.units:
                missing = self._missing(metric.query, tracks)
                if missing:
                    return samples.HistogramSamples(metric.name, (math.inf,), error=missing)
            shown = queries.render(metric.query, tracks.context(tracks.candidate_track, tracks.candidate_revision))
            assembling.check_fresh(shown, view, tracks.candidate_revision, tracks.candidate_track)
        except errors.MetricUnavailable as error:
            return samples.HistogramSamples(metric.name, (math.inf,), error=str(error))
        return assembling.histogram(metric.name, view, tracks.candidate_revision)


def _number(query: str, raw: Any) -> float:
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise errors.MetricUnavailable(f"query {query!r} answered a non-numeric value {raw!r}") from None


class Sources:
    """One PrometheusSource per (address, access), shared across ModelDeployments."""

    def __init__(self, timeout: float = 10.0, tls: Tls | None = None,
                 max_bytes: int = http_api.DEFAULT_MAX_BYTES) -> None:
        self.timeout = timeout
        self.tls = tls or Tls()
        """The operator's TLS settings, for a ModelDeployment that gives none of its own."""
        self.max_bytes = max_bytes
        self._sources: dict[tuple[str, Access], PrometheusSource] = {}
        self._lock = threading.Lock()

    def get(self, url: str, headers: Sequence[tuple[str, str]] = (), tls: Tls | None = None) -> PrometheusSource:
        key = (url.rstrip("/"), Access(tuple(headers), tls or self.tls))
        with self._lock:
            if key not in self._sources:
                self._sources[key] = PrometheusSource(key[0], key[1], self.timeout, self.max_bytes)
            return self._sources[key]

    def known(self) -> Mapping[tuple[str, Access], PrometheusSource]:
        return dict(self._sources)

    def forget(self, namespace: str, name: str) -> None:
        for source in self._sources.values():
            source.forget(namespace, name)
