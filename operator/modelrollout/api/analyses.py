"""spec.analysis: what evidence decides a rollout, and where it comes from.

Each metric can carry two kinds of gate, and needs at least one: an `slo`, an absolute bound
on the new revision alone, and a `compare`, a judgement of the new revision against the stable
one with a tolerated margin in the worse direction. Presets hold ready-made queries for common
model servers, so most metrics are just a name; a custom metric brings its own query template
and says what kind of series it returns, because the judge differs per kind.
"""

from __future__ import annotations

import datetime
import enum
import re

import pydantic

from modelrollout.api import durations, wire

MIN_INTERVAL = datetime.timedelta(seconds=5)


class Preset(enum.StrEnum):
    """Ready-made queries for a model server's metrics.

    generic: model_requests_total{code}, model_request_duration_seconds, model_prediction_score and
    model_input_feature, as any server can export them with a Prometheus client library. vllm,
    triton, kserve: the metrics those servers export.
    """

    GENERIC = "generic"
    VLLM = "vllm"
    TRITON = "triton"
    KSERVE = "kserve"


class MetricKind(enum.StrEnum):
    """What a query returns per track, which decides how it is judged.

    counts: a counter's raw value, best summed by pod (e.g. failed requests:
    sum by (pod) (x_total{...})); the operator takes its exact increase per step; judged as a rate
    against the preset's request counter. histogram: a histogram's raw bucket counters by le (and
    pod); judged on the distribution. gauge: one value per track; judged against its slo.
    """

    COUNTS = "counts"
    HISTOGRAM = "histogram"
    GAUGE = "gauge"


class Direction(enum.StrEnum):
    """Which way is worse for a metric: up, down, or any change (e.g. the model's output drifting)."""

    LOWER_IS_BETTER = "lower-is-better"
    HIGHER_IS_BETTER = "higher-is-better"
    EITHER = "either"


class SecretKeyRef(wire.Object):
    """A key of a Secret in the ModelDeployment's namespace."""

    name: str = pydantic.Field(min_length=1, max_length=253)
    """The Secret's name."""

    key: str = pydantic.Field(default="token", min_length=1, max_length=253)
    """The key within the Secret."""


class SecretRef(wire.Object):
    """A Secret in the ModelDeployment's namespace, read by its standard keys."""

    name: str = pydantic.Field(min_length=1, max_length=253)
    """The Secret's name."""


class CaSecretRef(SecretKeyRef):
    """A key of a Secret holding a CA bundle in PEM."""

    key: str = pydantic.Field(default="ca.crt", min_length=1, max_length=253)
    """The key within the Secret."""


class Header(wire.Object):
    """An HTTP header sent with every query, e.g. X-Scope-OrgID for a Mimir, Cortex or Thanos tenant."""

    name: str = pydantic.Field(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$", max_length=256)
    """The header's name. Credentials go in bearerTokenSecret or basicAuthSecret, not here."""

    value: str = pydantic.Field(max_length=4096)
    """The header's value."""


class PrometheusTls(wire.Object):
    """How to check the Prometheus server's certificate, and the client certificate to show it."""

    ca_secret: CaSecretRef | None = None
    """A Secret with the CA bundle that signed the server's certificate (key ca.crt by default)."""

    client_cert_secret: SecretRef | None = None
    """A kubernetes.io/tls Secret (keys tls.crt and tls.key) whose certificate the client shows."""

    insecure_skip_verify: bool = False
    """Do not check the server's certificate (for tests only)."""


_ONE_CREDENTIAL = wire.Rule(
    cel="!(has(self.bearerTokenSecret) && has(self.basicAuthSecret))",
    message="give bearerTokenSecret or basicAuthSecret, not both",
)
_TLS_NEEDS_HTTPS = wire.Rule(
    cel="!has(self.tls) || self.address.startsWith('https://')",
    message="tls needs an https:// address",
)
_NO_AUTH_HEADER = wire.Rule(
    cel="!has(self.headers) || self.headers.all(h, h.name.lowerAscii() != 'authorization')",
    message="headers: the Authorization header comes from bearerTokenSecret or basicAuthSecret, "
    "so that it stays in a Secret",
)


class Prometheus(wire.Object):
    """The Prometheus to query, and how to authenticate to it."""

    model_config = pydantic.ConfigDict(json_schema_extra=wire.validations(_ONE_CREDENTIAL, _TLS_NEEDS_HTTPS,
                                                                          _NO_AUTH_HEADER))

    address: str = pydantic.Field(pattern=r"^https?://", max_length=2048)
    """Base URL, e.g. http://prometheus.monitoring:9090."""

    bearer_token_secret: SecretKeyRef | None = None
    """A Secret holding a bearer token sent with every query."""

    basic_auth_secret: SecretRef | None = None
    """A kubernetes.io/basic-auth Secret (keys username and password) for HTTP basic auth."""

    headers: list[Header] = pydantic.Field(default_factory=list, max_length=16)
    """Headers sent with every query, e.g. [{name: X-Scope-OrgID, value: team-a}]."""

    tls: PrometheusTls | None = None
    """Server CA and client certificate, for an https:// address."""

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> Prometheus:
        _ONE_CREDENTIAL.check(self.bearer_token_secret is None or self.basic_auth_secret is None)
        _TLS_NEEDS_HTTPS.check(self.tls is None or self.address.startswith("https://"))
        _NO_AUTH_HEADER.check(all(header.name.lower() != "authorization" for header in self.headers))
        return self

    timeout: durations.Duration = "10s"
    """Timeout of one query."""


_BOUNDED = wire.Rule(cel="has(self.max) || has(self.min)", message="an slo needs max, min or both")
_ORDERED = wire.Rule(
    cel="!has(self.max) || !has(self.min) || self.min <= self.max",
    message="slo.min must not be above slo.max",
)


class Slo(wire.Object):
    """An absolute bound on the new revision's value; crossing it fails the rollout whatever the stable one does."""

    model_config = pydantic.ConfigDict(json_schema_extra=wire.validations(_BOUNDED, _ORDERED))

    max: float | None = None
    """Highest acceptable value, e.g. 0.01 for an error rate."""

    min: float | None = None
    """Lowest acceptable value, e.g. 0.9 for an accuracy."""

    @pydantic.model_validator(mode="after")
    def _bounds(self) -> Slo:
        _BOUNDED.check(self.max is not None or self.min is not None)
        _ORDERED.check(self.max is None or self.min is None or self.min <= self.max)
        return self


class Compare(wire.Object):
    """A judgement of the new revision against the stable one."""

    direction: Direction = Direction.LOWER_IS_BETTER
    """Which way is worse: lower-is-better, higher-is-better or either."""

    tolerance: float = pydantic.Field(default=0.1, ge=0, le=10)
    """Tolerated relative change in the worse direction, or both ways with either (0.1: up to 10 %)."""

    # for `either`, the tolerance bounds the change both ways


_JUDGED = wire.Rule(
    cel="has(self.slo) || has(self.compare)",
    message="a metric needs slo, compare or both: otherwise nothing is judged",
)
EXTRAPOLATING = re.compile(r"(^|[^a-zA-Z0-9_:])(increase|rate|irate)\s*\(")
"""Functions that turn counters into extrapolated or per-second values (RE2 syntax, for CEL too)."""
_EXACT_COUNTS = wire.Rule(
    cel=("!has(self.query) || !has(self.kind) || self.kind == 'gauge' || "
         f"!self.query.matches('{EXTRAPOLATING.pattern.replace(chr(92), chr(92) * 2)}')"),
    message=("a counts or histogram query must return the raw counters, e.g. sum by (pod) (x_total{...}), "
             "not increase(), rate() or irate(): the operator takes exact increases itself, and extrapolated "
             "counts break the false-rollback guarantee"),
    field_path=".query",
)
_KIND_OF_QUERY = wire.Rule(
    cel="!has(self.query) || has(self.kind)",
    message="a metric with its own query must say its kind: counts, histogram or gauge",
    field_path=".kind",
    reason=wire.Reason.REQUIRED,
)


class Metric(wire.Object):
    """One metric to judge at every analysis interval."""

    model_config = pydantic.ConfigDict(json_schema_extra=wire.validations(_JUDGED, _KIND_OF_QUERY, _EXACT_COUNTS))

    name: str = pydantic.Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    """The metric's name; a name the preset defines (error-rate, p99-latency, ...) needs no query."""

    query: str | None = pydantic.Field(default=None, min_length=1, max_length=4096)
    """A PromQL template with {{namespace}}, {{name}}, {{track}}, {{revision}} and {{interval}}. A counts
    or histogram query returns raw counters (no increase() or rate()), best grouped by pod; {{interval}}
    is a range holding about four scrapes, for rate() in a gauge."""

    kind: MetricKind | None = None
    """What the query returns: counts, histogram or gauge; required with query."""

    slo: Slo | None = None
    """Absolute bounds on the new revision."""

    compare: Compare | None = None
    """Judgement against the stable revision."""

    @pydantic.model_validator(mode="after")
    def _judges_something(self) -> Metric:
        _JUDGED.check(self.slo is not None or self.compare is not None)
        _KIND_OF_QUERY.check(self.query is None or self.kind is not None)
        _EXACT_COUNTS.check(self.query is None or self.kind in (None, MetricKind.GAUGE)
                            or EXTRAPOLATING.search(self.query) is None)
        return self


class FailureLimits(wire.Object):
    """How long an analysis may go without a clear answer before a person is asked."""

    consecutive_errors: int = pydantic.Field(default=4, ge=1, le=100)
    """Intervals in a row in which a metric could not be read; one more pauses the rollout (it
    carries on by itself when the metrics return; an unreadable metric never rolls back)."""

    inconclusive: int = pydantic.Field(default=2, ge=0, le=100)
    """Times an analysis that ends without enough evidence is extended by its duration; one more
    pauses the rollout for a person to promote or abort."""


_MIN_INTERVAL = wire.Rule(
    cel=f"duration(self) >= duration('{durations.format_duration(MIN_INTERVAL)}')",
    message=f"the analysis interval must be at least {durations.format_duration(MIN_INTERVAL)}",
)


class Analysis(wire.Object):
    """How the new revision is judged: where the metrics come from, which, and how strictly."""

    prometheus: Prometheus | None = None
    """The Prometheus to query; default the operator's (its --prometheus-url setting)."""

    interval: durations.Duration = pydantic.Field(
        default="30s", json_schema_extra=wire.validations(_MIN_INTERVAL)
    )
    """How often the metrics are read and judged (at least 5s)."""

    preset: Preset = Preset.GENERIC
    """Ready-made queries for the model server: generic, vllm, triton or kserve."""

    alpha: float = pydantic.Field(default=0.01, gt=0, le=0.5)
    """Tolerated chance of rolling back a revision that is in truth no worse, over the whole analysis."""

    min_requests: int = pydantic.Field(default=100, ge=1, le=1_000_000_000)
    """Requests each track must have served before a comparison can conclude anything (at least 1:
    no verdict, Pass included, is ever given on no data)."""

    metrics: list[Metric] | None = pydantic.Field(
        default=None,
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """The metrics to judge; absent: the preset's default set (error rate and latency)."""

    failure_limits: FailureLimits = wire.defaulted(FailureLimits)
    """Limits on analyses that cannot read their metrics or cannot decide."""

    @pydantic.model_validator(mode="after")
    def _sane(self) -> Analysis:
        _MIN_INTERVAL.check(durations.parse_duration(self.interval) >= MIN_INTERVAL)
        names = [metric.name for metric in self.metrics or ()]
        if len(names) != len(set(names)):  # the CRD refuses these as a list-map with duplicate keys
            raise ValueError("metric names must be unique")
        return self
