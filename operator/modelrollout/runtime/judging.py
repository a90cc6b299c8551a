"""Reading a rollout's metrics from Prometheus and judging them into evidence for the core.

For each metric of spec.analysis (or the preset's default set), the query comes from the preset
or from the metric itself; its samples are read for both tracks over the window the decision
asked for, and the core's judges turn them into results. A metric that cannot be read is an
ERROR result with the query and the answer in its reason, never an exception out of a tick.
Problems that no amount of waiting fixes (an unknown preset metric, an unknown placeholder, a
missing token Secret) are spec problems: the ModelDeployment becomes Degraded.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import math

from modelrollout import errors
from modelrollout.adapters.metrics import presets, prometheus, queries, scraping
from modelrollout.api import analyses, resources, verdicts
from modelrollout.api import status as api_status
from modelrollout.core import decision, observation
from modelrollout.core.analysis import checks, results, samples, settings, slo
from modelrollout.core.analysis import judges as analysis_judges
from modelrollout.core.analysis import verdicts as analysis_verdicts
from modelrollout.runtime import shared

LOG = logging.getLogger(__name__)
EXPIRY_FLOOR_S = 60.0
"""An analysis not judged for this long (and three of its intervals) leaves the batched queries."""
UNKNOWN_STEP_S = 60
"""The {{interval}} of gauges when the scrape interval cannot be told."""


def _metrics(analysis: analyses.Analysis) -> list[analyses.Metric]:
    if analysis.metrics:
        return list(analysis.metrics)
    return [analyses.Metric.model_validate({"name": name, "compare": {}})
            for name in presets.DEFAULT_METRICS[analysis.preset]]


def _preset_metric(analysis: analyses.Analysis, metric: analyses.Metric, index: int) -> presets.PresetMetric:
    """The queries of a metric: its own, or its preset's; SpecError naming the field if neither."""
    found = presets.lookup(analysis.preset, metric.name)
    if metric.query is None:
        if found is None:
            raise errors.SpecError(
                f"spec.analysis.metrics[{index}].name: the {analysis.preset.value} preset has no metric "
                f"{metric.name!r} and no query is given; known: {', '.join(presets.known(analysis.preset))}")
        return found
    kind = metric.kind or analyses.MetricKind.GAUGE
    exposure = None
    if kind is analyses.MetricKind.COUNTS:
        requests = presets.lookup(analysis.preset, "error-rate")
        exposure = requests.exposure if requests else None
        if exposure is None:
            raise errors.SpecError(f"spec.analysis.metrics[{index}]: a custom counts metric needs the preset's "
                                   f"request counter, which the {analysis.preset.value} preset does not define")
    quantile = found.quantile if found else None
    return presets.PresetMetric(metric.name, kind, metric.query, exposure=exposure, quantile=quantile)


def spec_problem(runtime: shared.Runtime, md: resources.ModelDeployment) -> str | None:
    """What in spec.analysis cannot work whatever the cluster does; None when all is well."""
    analysis = md.spec.analysis
    if analysis is None:
        return None
    try:
        _access(runtime, md)
    except errors.SpecError as error:
        return str(error)
    probe = queries.Context("ns", "name", "stable", "rev", "30s")
    try:
        for index, metric in enumerate(_metrics(analysis)):
            found = _preset_metric(analysis, metric, index)
            if metric.query is not None:  # the presets' queries are known to render and parse
                try:
                    rendered = queries.render(metric.query, probe)
                except errors.SpecError as error:
                    return f"spec.analysis.metrics[{index}].query: {error}"
                unparsable = source(runtime, md).parse_error(rendered)
                if unparsable:
                    return f"spec.analysis.metrics[{index}].query: {unparsable}"
            if metric.compare and metric.compare.tolerance >= 1.0:
                return f"spec.analysis.metrics[{index}].compare.tolerance must be below 1 to be judged"
            if metric.compare and found.kind is analyses.MetricKind.GAUGE:
                return (f"spec.analysis.metrics[{index}]: {metric.name} is a gauge, which is judged against its "
                        "slo only; remove compare")
    except errors.SpecError as error:
        return str(error)
    return None


def _check(metric: analyses.Metric, found: presets.PresetMetric, goal: str | None = None) -> checks.MetricCheck:
    """The tests of one metric; an A/B test's goal keeps only its SLO here (`compare_goal` judges it)."""
    slo_check = checks.Slo(max=metric.slo.max, min=metric.slo.min) if metric.slo else None
    comparison = None
    if metric.name == goal:
        pass
    elif metric.compare is not None and metric.compare.direction is not analyses.Direction.EITHER:
        comparison = checks.Comparison(checks.Direction(metric.compare.direction.value), metric.compare.tolerance)
    elif metric.compare is not None:  # either way is worse: judged as a change of the distribution
        comparison = checks.Comparison(checks.Direction.LOWER_IS_BETTER, metric.compare.tolerance)
    return checks.MetricCheck(metric.name, slo=slo_check, compare=comparison, quantile=found.quantile)


Headers = list[tuple[str, str]]


def _access(runtime: shared.Runtime, md: resources.ModelDeployment) -> tuple[Headers, prometheus.Tls | None]:
    """The headers (credentials among them) and TLS of the Prometheus this ModelDeployment names."""
    analysis, namespace = md.spec.analysis, md.metadata.namespace
    field = "spec.analysis.prometheus"
    if analysis is None or analysis.prometheus is None:
        default = runtime.settings.prometheus_bearer_token_secret
        if not default:
            return [], None
        home, _, name = default.rpartition("/")
        token = runtime.secret(home or None, name, runtime.settings.prometheus_bearer_token_key,
                              "MODELROLLOUT_PROMETHEUS_BEARER_TOKEN_SECRET")
        return [prometheus.Access.bearer(token)], None
    given = analysis.prometheus
    headers = [(header.name, header.value) for header in given.headers]
    if given.bearer_token_secret is not None:
        ref = given.bearer_token_secret
        headers.append(prometheus.Access.bearer(
            runtime.secret(namespace, ref.name, ref.key, f"{field}.bearerTokenSecret")))
    if given.basic_auth_secret is not None:
        name, where = given.basic_auth_secret.name, f"{field}.basicAuthSecret"
        headers.append(prometheus.Access.basic(runtime.secret(namespace, name, "username", where),
                                               runtime.secret(namespace, name, "password", where)))
    if given.tls is None:
        return headers, None
    where, ca, cert = f"{field}.tls", given.tls.ca_secret, given.tls.client_cert_secret
    tls = prometheus.Tls(
        insecure_skip_verify=given.tls.insecure_skip_verify,
        ca_file=runtime.prometheus.tls.ca_file if ca is None else None,
        ca_pem=None if ca is None else runtime.secret(namespace, ca.name, ca.key, f"{where}.caSecret"),
        client_cert_pem=None if cert is None else runtime.secret(
            namespace, cert.name, "tls.crt", f"{where}.clientCertSecret"),
        client_key_pem=None if cert is None else runtime.secret(
            namespace, cert.name, "tls.key", f"{where}.clientCertSecret"),
    )
    return headers, tls


def source(runtime: shared.Runtime, md: resources.ModelDeployment) -> prometheus.PrometheusSource:
    analysis = md.spec.analysis
    url = analysis.prometheus.address if analysis and analysis.prometheus else runtime.settings.prometheus_url
    if not url:
        raise errors.SpecError("spec.analysis.prometheus.address: not given, and the operator has no default "
                               "(MODELROLLOUT_PROMETHEUS_URL)")
    headers, tls = _access(runtime, md)
    return runtime.prometheus.get(url, headers, tls)


def _status_name(result: results.MetricResult) -> str:
    """How status.analysis names a test: the metric, with the check unless it is the comparison."""
    return result.metric if result.check in ("compare", "") else f"{result.metric} ({result.check})"


def _accepted(result: results.MetricResult) -> results.MetricResult:
    """A test whose failure a person accepted: still reported, but it decides nothing."""
    if result.verdict is not verdicts.Verdict.FAIL:
        return result
    return dataclasses.replace(result, verdict=verdicts.Verdict.PASS,
                               reason=f"failure accepted by a person's promote: {result.reason}")


def _status_entry(result: results.MetricResult, now: datetime.datetime) -> api_status.MetricResult:
    entry = result.to_status()
    name = _status_name(result)
    interval = entry.get("interval")
    return api_status.MetricResult.model_validate({
        **entry, "metric": name, "at": now,
        "interval": {"lower": interval[0], "upper": interval[1]} if interval and None not in interval else None,
        "stableSamples": round(result.stable.requests), "canarySamples": round(result.canary.requests),
    })


def _gauge(source_: prometheus.PrometheusSource, metric: analyses.Metric, found: presets.PresetMetric,
           tracks: prometheus.Tracks, config: settings.AnalysisSettings) -> tuple[results.MetricResult, ...]:
    if metric.slo is None:
        return ()
    query = queries.render(found.query, tracks.context(tracks.candidate_track, tracks.candidate_revision))
    try:
        value = source_.gauge(query, tracks)
    except errors.MetricUnavailable as error:
        return (results.error(metric.name, "slo", str(error)),)
    return slo.value(metric.name, value, 1, checks.Slo(metric.slo.max, metric.slo.min), config=config)


def _tracks(runtime: shared.Runtime, md: resources.ModelDeployment, source_: prometheus.PrometheusSource,
            window: decision.AnalysisWindow, now: datetime.datetime,
            found: list[presets.PresetMetric]) -> tuple[prometheus.Tracks, str | None]:
    """The window on its step grid, and why counts and histograms cannot be read (None when they can).

    The step is the scrape interval of this ModelDeployment's pods, measured from the data
    (`scraping`), or the operator's longer sample_step.
    """
    analysis = md.spec.analysis or analyses.Analysis()
    every = runtime.settings.duration(analysis.interval).total_seconds()
    namespace, name = md.metadata.namespace or "", md.metadata.name or ""

    def tracks(step: float, lag: float, interval: str) -> prometheus.Tracks:
        return prometheus.Tracks(namespace, name, window.stable_revision, window.candidate_revision,
                                 window.candidate_track.value, window.since, now, datetime.timedelta(seconds=step),
                                 lag=datetime.timedelta(seconds=lag), interval=interval,
                                 expires_after=max(EXPIRY_FLOOR_S, 3 * every + 2 * step))
    try:
        scrape = source_.scrape(namespace, name, [f for f in found if f.kind is not analyses.MetricKind.GAUGE])
        step = scraping.step(scrape, runtime.settings.step_override())
    except errors.MetricUnavailable as error:
        return tracks(UNKNOWN_STEP_S, 0.0, f"{UNKNOWN_STEP_S}s"), str(error)
    return tracks(step, scrape.lag, scrape.window(step)), None


def judge(runtime: shared.Runtime, md: resources.ModelDeployment, window: decision.AnalysisWindow,
          now: datetime.datetime) -> observation.Evidence:
    """Evidence for `window`: every metric judged; raises SpecError for unactionable specs only."""
    analysis = md.spec.analysis or analyses.Analysis()
    config = settings.AnalysisSettings(alpha=analysis.alpha, min_requests=analysis.min_requests,
                                       consecutive_error_limit=analysis.failure_limits.consecutive_errors,
                                       inconclusive_limit=analysis.failure_limits.inconclusive)
    source_ = source(runtime, md)
    metrics = _metrics(analysis)
    pairs = [(m, _preset_metric(analysis, m, i)) for i, m in enumerate(metrics)]
    tracks, unreadable = _tracks(runtime, md, source_, window, now, [found for _, found in pairs])
    contest = md.spec.strategy.ab_test if window.candidate_track.value == "canary" else None
    goal_name = contest.goal if contest is not None else None
    metric_checks = [_check(m, found, goal_name) for m, found in pairs]
    tests = len(metric_checks) + (1 if contest is not None else 0)  # the goal is one more test
    alpha = analysis_verdicts.alpha_per_test(config, metric_checks, extra=tests - len(metric_checks))
    alpha *= window.alpha_share
    found_results: list[results.MetricResult] = []
    goal_result: results.MetricResult | None = None
    for metric, found in pairs:
        if contest is not None and metric.name == contest.goal:
            goal_result = _goal(source_, found, tracks, unreadable, contest.minimum_effect, alpha, config, window)
    # Once the goal has won, the test may end now: the guardrails are judged as at a window's end
    # (no failure so far passes, unless the data show a regression not yet sure), not left to wait.
    closed = window.final or (goal_result is not None and goal_result.verdict is verdicts.Verdict.PASS)
    for (metric, found), check in zip(pairs, metric_checks, strict=True):
        if contest is not None and metric.name == contest.goal and check.slo is None:
            continue
        if found.kind is analyses.MetricKind.GAUGE:
            found_results += _gauge(source_, metric, found, tracks, config)
            continue
        series: samples.CountSamples | samples.HistogramSamples
        if found.kind is analyses.MetricKind.COUNTS:
            series = source_.counts(found, tracks) if unreadable is None \
                else samples.CountSamples(metric.name, error=unreadable)
        else:
            series = source_.histogram(found, tracks) if unreadable is None \
                else samples.HistogramSamples(metric.name, (math.inf,), error=unreadable)
        try:
            found_results += analysis_judges.judge(series, check, alpha=alpha, config=config,
                                                   window_closed=closed)
        except Exception as error:  # a judge's bug must hold the rollout, not stop the operator
            LOG.exception("judging %s failed", metric.name)
            found_results.append(results.error(metric.name, "judge", f"judging failed: {error!r}"))
    found_results = [_accepted(r) if _status_name(r) in window.accepted else r for r in found_results]
    verdict = analysis_verdicts.worst(r.verdict for r in found_results) if found_results else verdicts.Verdict.PASS
    worst = [r.reason for r in found_results if r.verdict is verdict]
    entries = [_status_entry(r, now) for r in found_results]
    if goal_result is None:
        return observation.Evidence(window=window, verdict=verdict, metrics=entries, reason="; ".join(worst[:3]))
    goal_reason = f"{goal_result.metric}: {goal_result.reason}"
    if goal_result.verdict is verdicts.Verdict.ERROR:  # an unreadable goal holds like any unreadable metric
        verdict, worst = verdicts.Verdict.ERROR, [goal_reason, *(worst if verdict is verdicts.Verdict.ERROR else [])]
    return observation.Evidence(window=window, verdict=verdict, metrics=[_status_entry(goal_result, now), *entries],
                                reason="; ".join(worst[:3]), goal=goal_result.verdict, goal_reason=goal_reason)


def _goal(source_: prometheus.PrometheusSource, found: presets.PresetMetric, tracks: prometheus.Tracks,
          unreadable: str | None, minimum_effect: float, alpha: float, config: settings.AnalysisSettings,
          window: decision.AnalysisWindow) -> results.MetricResult:
    """An A/B test's goal, judged by the superiority test; a goal must be a counts metric (a rate)."""
    if found.kind is not analyses.MetricKind.COUNTS:
        return results.error(found.name, "goal", f"the goal {found.name} is a {found.kind.value} metric; "
                             "an A/B test's goal must be counts (good outcomes per request)")
    series = source_.counts(found, tracks) if unreadable is None else samples.CountSamples(found.name, error=unreadable)
    try:
        return analysis_judges.compare_goal(series, minimum_effect, alpha=alpha, config=config,
                                            window_closed=window.final)
    except Exception as error:  # a judge's bug must hold the rollout, not stop the operator
        LOG.exception("judging the goal %s failed", found.name)
        return results.error(found.name, "goal", f"judging failed: {error!r}")


def forget(runtime: shared.Runtime, namespace: str, name: str) -> None:
    """Drops the metric data kept for a ModelDeployment whose analysis ended (or that was deleted).

    Optional: what is not asked for again is dropped by itself after a few analysis intervals.
    """
    runtime.prometheus.forget(namespace, name)
