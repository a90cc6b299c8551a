"""How often Prometheus scrapes a ModelDeployment's pods, and the step the adapter reads at.

The step is the scrape interval itself, unless the operator's `sample_step` overrides it with a
longer one. With exact differencing (`core.analysis.counters`) a step of one scrape interval
works: a step in which no new scrape landed has an increment of 0 and the next step carries
it, so totals stay exact and every interval's counts are integers. (`increase()` over a window
of one scrape answers nothing, and over two it doubles the count: that is why the old rule
asked for a step of twice the scrape interval, and why no setting suited every Prometheus.)
Measured on the e2e world at 15 s scrapes (2 pods, 40 req/s, 7.5 minutes): `increase(x[15s])`
at a 15 s step answered at none of 31 steps, `increase(x[30s])` at a 30 s step had 1.73 times
the variance of the true counts, and the exact differences at a 15 s step added up to the
counters' difference to the request (docs/analysis.md; `e2e/scenarios/test_counts.py` checks
them against the model servers' own counters).

Where the interval comes from, in this order:
1. The data: the median spacing of the raw sample timestamps of `up` for the ModelDeployment's
   targets (every target has one `up` series, written at every scrape, failed or not), or of
   the metric itself when `up` does not carry the `modeldeployment` label. The median ignores
   a missed scrape. It needs no permission, and it is what the series really hold.
2. `/api/v1/targets`, when Prometheus lets the operator ask: the configured `scrapeInterval`
   and `scrapeTimeout` of the ModelDeployment's active targets. The configured interval is
   used when it agrees with the measured one within 10 % (it is exact); otherwise the measured
   one is (it is what the data has), and the disagreement is logged. The timeout says when an
   interval is closed; without it the interval stands in for it (a timeout never exceeds it).
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import logging
import math
import re
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from modelrollout import errors
from modelrollout.adapters.metrics import http_api

LOG = logging.getLogger(__name__)
MEASURED_OVER = datetime.timedelta(minutes=10)
"""Raw samples looked at to measure the interval: ten at a 60 s scrape."""
KEPT_FOR = 600.0
"""Seconds a measured interval (and the targets list) is reused before asking again."""
AGREEMENT = 0.10
_PROMETHEUS_DURATION = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0}


@dataclasses.dataclass(frozen=True)
class Scrape:
    """How a ModelDeployment's targets are scraped, in seconds."""

    interval: float
    timeout: float | None = None
    """From /api/v1/targets; None when Prometheus would not say."""
    source: str = "samples"
    """How the interval was found: samples, targets or both."""

    @property
    def lag(self) -> float:
        """How long after a step time its value may still change; an interval is judged only after it.

        A sample is stamped when its scrape starts and is stored when the scrape ends (within
        the timeout); one more interval covers servers that store late (remote-write backends,
        a slow head append).
        """
        return (self.timeout if self.timeout is not None else self.interval) + self.interval

    def window(self, step: float) -> str:
        """The {{interval}} of a template: at least the step and about four scrapes, so that
        rate() in a gauge query always has samples to work with."""
        return f"{math.ceil(max(step, 4 * self.interval))}s"


def step(scrape: Scrape, override: datetime.timedelta | None) -> float:
    """The step of the analysis grid in seconds: the scrape interval, or a longer override.

    step(Scrape(15), None) -> 15.0; step(Scrape(15), timedelta(seconds=30)) -> 30.0
    step(Scrape(30), timedelta(seconds=15)) -> MetricUnavailable naming both
    """
    if override is None:
        return scrape.interval
    seconds = override.total_seconds()
    if seconds < scrape.interval * (1 - AGREEMENT / 10):
        raise errors.MetricUnavailable(
            f"the operator's sample step {seconds:g}s (MODELROLLOUT_SAMPLE_STEP) is shorter than the scrape "
            f"interval {scrape.interval:g}s of these pods ({scrape.source}): set it to auto, or to a multiple "
            f"of {scrape.interval:g}s")
    return seconds


def median_spacing(series: Sequence[dict[str, Any]]) -> float | None:
    """The median gap between consecutive raw samples over all series; None with no gap at all.

    median_spacing([{"values": [[0, "1"], [15, "1"], [45, "1"], [60, "1"]]}]) -> 15.0
    """
    gaps = []
    for item in series:
        stamps = sorted(float(point[0]) for point in item.get("values") or [])
        gaps += [b - a for a, b in itertools.pairwise(stamps) if b > a]
    if not gaps:
        return None
    found = statistics.median(gaps)
    return float(round(found)) if found >= 2.0 else round(found, 3)


def parse_prometheus_duration(text: str) -> float | None:
    """Seconds in a Prometheus duration ("15s", "1m30s", "500ms"); None if it is not one."""
    parts = _PROMETHEUS_DURATION.findall(text or "")
    if not parts or "".join(f"{n}{u}" for n, u in parts) != text:
        return None
    return sum(int(n) * _UNITS[u] for n, u in parts)


def configured(targets: Sequence[dict[str, Any]], namespace: str, name: str) -> tuple[float, float] | None:
    """(scrapeInterval, scrapeTimeout) of this ModelDeployment's active targets: the longest of each."""
    found = []
    for target in targets:
        labels = target.get("labels") or {}
        if labels.get("namespace") == namespace and labels.get("modeldeployment") == name:
            interval = parse_prometheus_duration(str(target.get("scrapeInterval", "")))
            timeout = parse_prometheus_duration(str(target.get("scrapeTimeout", "")))
            if interval:
                found.append((interval, timeout if timeout is not None else interval))
    if not found:
        return None
    return max(i for i, _ in found), max(t for _, t in found)


def combine(measured: float | None, said: tuple[float, float] | None) -> Scrape | None:
    """One Scrape from what the samples show and what the targets say (either may be missing)."""
    if said is None:
        return Scrape(measured) if measured else None
    interval, timeout = said
    if measured is None:
        return Scrape(interval, timeout, "targets")
    if abs(measured - interval) <= AGREEMENT * interval:
        return Scrape(interval, timeout, "samples and targets")
    LOG.warning("the samples are %.3g s apart but the targets say %.3g s; using the samples", measured, interval)
    return Scrape(measured, min(timeout, measured), "samples")


class Intervals:
    """Measured scrape intervals per ModelDeployment, kept for KEPT_FOR seconds."""

    def __init__(self, api: http_api.Api, clock: Callable[[], float] = time.monotonic) -> None:
        self._api = api
        self._clock = clock
        self._lock = threading.Lock()
        self._found: dict[tuple[str, str], tuple[float, Scrape]] = {}
        self._targets: tuple[float, list[dict[str, Any]] | None] | None = None

    def of(self, namespace: str, name: str, metrics: Sequence[str]) -> Scrape:
        """The scrape of this ModelDeployment's pods; MetricUnavailable when nothing tells."""
        now = self._clock()
        with self._lock:
            kept = self._found.get((namespace, name))
        if kept is not None and now - kept[0] < KEPT_FOR:
            return kept[1]
        measured = self._measure(namespace, name, metrics)
        found = combine(measured, self._configured(namespace, name, now))
        if found is None:
            selector = f'namespace="{namespace}",modeldeployment="{name}"'
            names = ", ".join(["up", *metrics])
            raise errors.MetricUnavailable(
                f"cannot tell how often Prometheus scrapes {namespace}/{name}: no two samples of any of {names} "
                f"with {{{selector}}} in the last {int(MEASURED_OVER.total_seconds() / 60)} minutes, and no "
                "active target with those labels in /api/v1/targets")
        with self._lock:
            if len(self._found) > 10_000:
                self._found = {k: v for k, v in self._found.items() if now - v[0] < KEPT_FOR}
            self._found[(namespace, name)] = (now, found)
        return found

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._found.pop((namespace, name), None)

    def _measure(self, namespace: str, name: str, metrics: Sequence[str]) -> float | None:
        selector = f'namespace="{namespace}",modeldeployment="{name}"'
        over = f"{int(MEASURED_OVER.total_seconds())}s"
        for metric in ["up", *metrics]:
            found = median_spacing(self._api.query(f'{{__name__="{metric}",{selector}}}[{over}]'))
            if found is not None:
                return found
        return None

    def _configured(self, namespace: str, name: str, now: float) -> tuple[float, float] | None:
        """From /api/v1/targets, asked at most once per KEPT_FOR (a refusal or a failure too)."""
        with self._lock:
            kept = self._targets
        if kept is None or now - kept[0] >= KEPT_FOR:
            try:
                targets: list[dict[str, Any]] | None = self._api.targets()
            except errors.MetricUnavailable as error:
                LOG.info("not using /api/v1/targets: %s", error)
                targets = None
            kept = (now, targets)
            with self._lock:
                self._targets = kept
        return configured(kept[1], namespace, name) if kept[1] is not None else None
