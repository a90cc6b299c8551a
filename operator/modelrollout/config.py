"""OperatorConfig: the operator's own settings, read once from the environment at start-up.

Settings are per operator process; everything about one model lives in its ModelDeployment.
Each field reads `MODELROLLOUT_<FIELD>` (upper case), e.g. `MODELROLLOUT_PROMETHEUS_URL`.

Why not pydantic-settings: the reading is `from_env` below, a dozen lines, and pydantic validates
every value as it would there. pydantic-settings would add a dependency and, for the one list,
parse `MODELROLLOUT_NAMESPACES=a,b` as JSON unless each such field is marked `NoDecode`; an
empty variable meaning "unset" would need its `env_ignore_empty` too.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping

import pydantic

from modelrollout.api import durations

ENV_PREFIX = "MODELROLLOUT_"


class OperatorConfig(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, use_attribute_docstrings=True, extra="forbid")

    prometheus_url: str | None = None
    """The Prometheus a ModelDeployment uses when spec.analysis.prometheus is not given."""

    prometheus_timeout: durations.Duration = "10s"
    """Timeout of one Prometheus query, unless the ModelDeployment sets its own."""

    prometheus_insecure_skip_verify: bool = False
    """Do not verify the Prometheus server's TLS certificate (for test setups only)."""

    prometheus_ca_file: str | None = None
    """A CA bundle to verify the Prometheus server's TLS certificate with."""

    prometheus_bearer_token_secret: str | None = None
    """`namespace/name` of a Secret whose key holds a bearer token for the default Prometheus;
    read at each query, so a rotated token is picked up without a restart."""

    prometheus_bearer_token_key: str = "token"
    """The key of that Secret."""

    sample_step: str = pydantic.Field(default="auto", pattern=f"^auto$|{durations.PATTERN}")
    """Resolution of the counters the judges read: `auto`, the scrape interval of each
    ModelDeployment's pods (measured from the data; exact differencing needs no more), or a
    duration at least as long, best a multiple of it (a shorter one is an Error naming both)."""

    prometheus_max_response_bytes: int = pydantic.Field(default=16 << 20, ge=1 << 16)
    """The largest Prometheus answer the operator reads (bytes, after decompression); a larger one
    is dropped as it streams in and the metric is an Error saying so, never an out-of-memory kill."""

    idle_interval: durations.Duration = "60s"
    """How often a ModelDeployment with no rollout in progress is looked at (changes wake it at once)."""

    kube_qps: float = pydantic.Field(default=20.0, gt=0)
    """Requests a second the operator makes to the API server, at most, on average (client-side)."""

    kube_burst: int = pydantic.Field(default=30, ge=1)
    """Requests it may make at once above `kube_qps`."""

    analysis_threads: int = pydantic.Field(default=8, ge=1, le=256)
    """Threads for ticks that read Prometheus or call a model server (analyses, smoke tests). They
    wait on the network, often on one batched fetch together; kept apart from the threads that
    move steps, so a slow Prometheus never delays a step whose pods just turned Ready."""

    pod_address_annotation: str | None = None
    """A pod annotation holding host:port to reach the model server for the smoke test, for
    development clusters whose pod IPs the operator cannot reach; default: pod IP and port."""

    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty: all (cluster-wide)."""

    listen_host: str = "0.0.0.0"
    """Address the metrics and health endpoints listen on (127.0.0.1 when run outside a pod)."""

    metrics_port: int = 8080
    """Port of the operator's own /metrics (0: off)."""

    health_port: int = 8081
    """Port of the liveness endpoint /healthz (0: off)."""

    webhook_url: str | None = None
    """Receives a JSON POST on every step, promotion and rollback (optional)."""

    leader_election: bool = True
    """Act only while holding the Lease below, so that replicas can stand by (false: act at once,
    alone; never run two replicas so)."""

    lease_name: str = "modelrollout-leader"
    """The coordination.k8s.io Lease the replicas compete for."""

    lease_namespace: str = "default"
    """Its namespace: the release's (the chart sets it from the downward API)."""

    leader_identity: str | None = None
    """This replica's name in the Lease's holderIdentity (the chart sets the pod name); default:
    the host name. A random suffix is always added, so a restarted process is a new holder."""

    lease_duration: durations.Duration = "12s"
    """How long a holder that stopped renewing keeps the Lease before a follower takes it over;
    the failover time after a crash is at most this plus one retry period."""

    lease_renew_deadline: durations.Duration = "8s"
    """The leader stops writing this long after the start of its last successful renewal, so a
    leader cut off from the API server is silent before any follower may take over."""

    lease_retry_period: durations.Duration = "2s"
    """How often the leader renews and a follower looks at the Lease (each attempt times out
    after this long)."""

    log_format: str = pydantic.Field(default="json", pattern="^(json|text)$")
    """json: one JSON object per line, with the ModelDeployment and revision; text: for people."""

    log_level: str = "INFO"
    """Logging level: DEBUG, INFO, WARNING or ERROR."""

    @pydantic.field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError(f"log level {value!r} is not one of DEBUG, INFO, WARNING, ERROR")
        return level

    @pydantic.model_validator(mode="after")
    def _lease_timing(self) -> OperatorConfig:
        duration, renew, retry = (durations.parse_duration(v) for v in (
            self.lease_duration, self.lease_renew_deadline, self.lease_retry_period))
        if not retry < renew < duration:
            raise ValueError(f"lease timing must be retry period ({self.lease_retry_period}) < renew deadline "
                             f"({self.lease_renew_deadline}) < lease duration ({self.lease_duration})")
        return self

    def duration(self, value: str) -> datetime.timedelta:
        return durations.parse_duration(value)

    def step_override(self) -> datetime.timedelta | None:
        """sample_step as a duration, or None for auto."""
        return None if self.sample_step == "auto" else durations.parse_duration(self.sample_step)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OperatorConfig:
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name in cls.model_fields:
            raw = environ.get(ENV_PREFIX + name.upper())
            if raw is None or raw == "":
                continue
            values[name] = tuple(n.strip() for n in raw.split(",") if n.strip()) if name == "namespaces" else raw
        return cls.model_validate(values)
