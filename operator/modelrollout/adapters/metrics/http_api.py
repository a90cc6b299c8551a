"""The Prometheus HTTP API, read with a cap on the size of every answer.

One batched query reads the series of every ModelDeployment under analysis, and a custom query
can select far more than its author meant; a body read whole could take the operator's memory
with it. So every answer is streamed and counted as it arrives (after decompression), and one
that passes `max_bytes` is dropped at that point with an error saying so: an ERROR verdict for
the metrics that needed it, never an out-of-memory kill. Queries go as POST forms, because a
batched query names many ModelDeployments and would not fit in a URL.

Every request and its bytes are counted in the operator's own metrics
(`modelrollout_prometheus_queries_total`, `modelrollout_prometheus_response_bytes_total`), so
the load on Prometheus can be watched and benchmarked.

    api = Api("http://prometheus:9090", max_bytes=16 << 20)
    api.query_range('sum by (pod) (up)', start=1700000000, end=1700000600, step=15)
        -> [{"metric": {"pod": "a"}, "values": [[1700000000, "1"], ...]}, ...]
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
import ssl
import tempfile
from typing import Any

import httpx

from modelrollout import errors
from modelrollout.adapters import telemetry

# httpx logs every request at INFO: one line per query per tick would drown the operator's log.
logging.getLogger("httpx").setLevel(logging.WARNING)

DEFAULT_MAX_BYTES = 16 << 20
"""16 MiB of JSON: about 300 ModelDeployments' drift histograms for an hour at 15 s steps."""


@dataclasses.dataclass(frozen=True)
class Tls:
    """How to check the Prometheus server's certificate, and the client certificate to show it."""

    insecure_skip_verify: bool = False
    ca_file: str | None = None
    ca_pem: str | None = None
    """CA bundle in PEM, from a Secret (ca_file is the operator-wide one, mounted as a file)."""
    client_cert_pem: str | None = None
    client_key_pem: str | None = None

    def verify(self) -> ssl.SSLContext | bool:
        if self.insecure_skip_verify and self.client_cert_pem is None:
            return False
        context = ssl.create_default_context(cafile=self.ca_file, cadata=self.ca_pem)
        if self.insecure_skip_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.client_cert_pem is not None:
            _load_client_cert(context, self.client_cert_pem, self.client_key_pem or "")
        return context


def _load_client_cert(context: ssl.SSLContext, cert_pem: str, key_pem: str) -> None:
    """ssl reads a certificate chain from files only: they live in a private folder for the call."""
    with tempfile.TemporaryDirectory(prefix="modelrollout-tls-") as folder:
        cert, key = os.path.join(folder, "tls.crt"), os.path.join(folder, "tls.key")
        for path, text in ((cert, cert_pem), (key, key_pem)):
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
                out.write(text)
        try:
            context.load_cert_chain(cert, key)
        except (ssl.SSLError, ValueError) as error:
            raise errors.SpecError(f"the client certificate or key cannot be used: {error}") from None


@dataclasses.dataclass(frozen=True)
class Access:
    """How to reach one Prometheus: headers sent with every query (credentials among them) and TLS.

    Access.bearer("t").headers -> (("Authorization", "Bearer t"),)
    """

    headers: tuple[tuple[str, str], ...] = ()
    tls: Tls = Tls()

    @staticmethod
    def bearer(token: str) -> tuple[str, str]:
        return ("Authorization", f"Bearer {token}")

    @staticmethod
    def basic(username: str, password: str) -> tuple[str, str]:
        pair = base64.b64encode(f"{username}:{password}".encode()).decode()
        return ("Authorization", f"Basic {pair}")


class PrometheusError(errors.MetricUnavailable):
    """Prometheus answered, with an error (`error_type` is Prometheus's errorType, e.g. bad_data)."""

    def __init__(self, message: str, error_type: str = "", detail: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.detail = detail
        self.status = status


class TooLarge(errors.MetricUnavailable):
    """The answer passed the byte cap and was dropped unread."""


class Api:
    """A blocking client of one Prometheus server; safe to share between threads."""

    def __init__(self, url: str, access: Access | None = None, timeout: float = 10.0,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        access = access or Access()
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._client = httpx.Client(base_url=self.url, headers=list(access.headers), timeout=timeout,
                                    verify=access.tls.verify())

    def query(self, query: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result (a vector, or a matrix for a range selector)."""
        form = {"query": query, "timeout": f"{round(self.timeout * 1000)}ms"}
        if at is not None:
            form["time"] = _stamp(at)
        return _result(self._call("POST", "/api/v1/query", "instant", query, form=form))

    def query_range(self, query: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """A range query's matrix: per series, the value at start, start + step, ..., up to end."""
        form = {"query": query, "start": _stamp(start), "end": _stamp(end), "step": _stamp(step),
                "timeout": f"{round(self.timeout * 1000)}ms"}
        return _result(self._call("POST", "/api/v1/query_range", "range", query, form=form))

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets with their labels, scrapeInterval and scrapeTimeout."""
        data = self._call("GET", "/api/v1/targets", "targets", "/api/v1/targets", params={"state": "active"})
        found = data.get("activeTargets") if isinstance(data, dict) else None
        return found if isinstance(found, list) else []

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, kind: str, what: str, form: dict[str, str] | None = None,
              params: dict[str, str] | None = None) -> Any:
        telemetry.PROMETHEUS_QUERIES.labels(kind).inc()
        try:
            with telemetry.QUERY_SECONDS.time(), \
                    self._client.stream(method, path, data=form, params=params) as response:
                body = self._read(response, kind, what)
        except httpx.HTTPError as error:
            telemetry.QUERY_ERRORS.inc()
            raise errors.MetricUnavailable(f"query {what!r} failed: {type(error).__name__}: {error}") from None
        except errors.MetricUnavailable:
            telemetry.QUERY_ERRORS.inc()
            raise
        try:
            answer = json.loads(body)
        except ValueError:
            telemetry.QUERY_ERRORS.inc()
            raise PrometheusError(f"query {what!r} failed: HTTP {response.status_code}{_refused(response.status_code)}"
                                  f", not JSON: {body[:200]!r}", status=response.status_code) from None
        if response.status_code >= 400 or not isinstance(answer, dict) or answer.get("status") != "success":
            telemetry.QUERY_ERRORS.inc()
            error_type = str(answer.get("errorType", "")) if isinstance(answer, dict) else ""
            detail = str(answer.get("error", "")) if isinstance(answer, dict) else str(answer)[:200]
            raise PrometheusError(f"query {what!r} failed: HTTP {response.status_code}{_refused(response.status_code)}"
                                  f" {error_type}: {detail}",
                                  error_type, detail, response.status_code)
        return answer.get("data")

    def _read(self, response: httpx.Response, kind: str, what: str) -> bytes:
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            raise self._too_large(what, f"{int(declared)} bytes declared")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            telemetry.PROMETHEUS_RESPONSE_BYTES.labels(kind).inc(len(chunk))
            if size > self.max_bytes:
                raise self._too_large(what, f"more than {size} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, what: str, seen: str) -> TooLarge:
        return TooLarge(f"query {what!r} failed: its answer is larger than the operator reads "
                        f"({seen}; the limit is {self.max_bytes} bytes, MODELROLLOUT_PROMETHEUS_MAX_RESPONSE_BYTES): "
                        "it selects too many series; narrow the query, or raise the limit")


def _refused(status: int) -> str:
    """What a 401 or 403 means here: the credentials in spec.analysis.prometheus (or the operator's)."""
    if status in (401, 403):
        return " (Prometheus refused the credentials: check spec.analysis.prometheus's Secrets)"
    return ""


def _stamp(seconds: float) -> str:
    return f"{seconds:.3f}"


def _result(data: Any) -> list[dict[str, Any]]:
    result = data.get("result") if isinstance(data, dict) else None
    if not isinstance(result, list):
        raise errors.MetricUnavailable(f"Prometheus answered without a result: {str(data)[:200]}")
    return result
