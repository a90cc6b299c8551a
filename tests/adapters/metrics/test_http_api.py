"""The Prometheus HTTP API over real HTTP: answers too large are dropped as they stream in, and
Prometheus's own errors come back with its words."""

from __future__ import annotations

import http.server
import json
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from e2e.fixtures import loopback
from modelrollout import errors
from modelrollout.adapters import telemetry
from modelrollout.adapters.metrics import http_api

SERIES = {"metric": {"pod": "p"}, "values": [[1700000000 + i, "1"] for i in range(100)]}


class _Prometheus(http.server.BaseHTTPRequestHandler):
    """Answers with `series_count` copies of SERIES; chunked unless `declare` is set."""

    series_count = 1
    declare = True
    requests: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        form = dict(pair.split("=", 1) for pair in self.rfile.read(length).decode().split("&"))
        type(self).requests.append(form)
        if "bad" in form["query"]:
            self._send(400, {"status": "error", "errorType": "bad_data", "error": "1:4: parse error: bad"})
            return
        self._send(200, {"status": "success", "data": {"resultType": "matrix",
                                                       "result": [SERIES] * self.series_count}})

    def do_GET(self) -> None:
        self._send(403, {"status": "error", "errorType": "forbidden", "error": "not for you"})

    def _send(self, status: int, answer: dict[str, Any]) -> None:
        body = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if self.declare:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for start in range(0, len(body), 4096):
            chunk = body[start:start + 4096]
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def prometheus() -> Iterator[type[_Prometheus]]:
    handler = type("Handler", (_Prometheus,), {"requests": []})
    with loopback.serve(handler) as url:
        handler.url = url  # type: ignore[attr-defined]
        yield handler


def counted(name: str, kind: str) -> float:
    metric = getattr(telemetry, name)
    return float(metric.labels(kind)._value.get())


@pytest.mark.parametrize("declare", [True, False], ids=["content-length", "chunked"])
def test_an_answer_over_the_cap_is_an_error_that_says_so(prometheus: type[_Prometheus], declare: bool) -> None:
    prometheus.declare = declare
    prometheus.series_count = 200  # about 400 KB
    api = http_api.Api(prometheus.url, max_bytes=100_000)  # type: ignore[attr-defined]
    before = counted("PROMETHEUS_RESPONSE_BYTES", "range")
    with pytest.raises(http_api.TooLarge) as refused:
        api.query_range("sum by (pod) (x)", 1700000000, 1700000600, 15)
    message = str(refused.value)
    assert "larger than the operator reads" in message and "100000 bytes" in message
    assert "MODELROLLOUT_PROMETHEUS_MAX_RESPONSE_BYTES" in message and "sum by (pod) (x)" in message
    assert counted("PROMETHEUS_RESPONSE_BYTES", "range") - before <= 100_000 + 4096  # stopped reading
    api.close()


def test_an_answer_within_the_cap_is_read_and_counted(prometheus: type[_Prometheus]) -> None:
    prometheus.series_count = 3
    api = http_api.Api(prometheus.url)  # type: ignore[attr-defined]
    queries, read = counted("PROMETHEUS_QUERIES", "range"), counted("PROMETHEUS_RESPONSE_BYTES", "range")
    found = api.query_range("sum by (pod) (x)", 1700000000, 1700000600, 15)
    assert len(found) == 3 and found[0]["metric"] == {"pod": "p"}
    assert counted("PROMETHEUS_QUERIES", "range") == queries + 1
    assert counted("PROMETHEUS_RESPONSE_BYTES", "range") - read > 3 * 1000
    assert prometheus.requests[-1]["step"] == "15.000"  # a form: long batched queries fit
    api.close()


def test_prometheus_errors_keep_its_words(prometheus: type[_Prometheus]) -> None:
    api = http_api.Api(prometheus.url)  # type: ignore[attr-defined]
    with pytest.raises(http_api.PrometheusError) as refused:
        api.query("bad(")
    assert refused.value.error_type == "bad_data" and "parse error" in str(refused.value)
    with pytest.raises(http_api.PrometheusError, match="forbidden"):
        api.targets()
    api.close()


def test_an_unreachable_prometheus_is_unavailable() -> None:
    api = http_api.Api("http://127.0.0.1:9", timeout=2)
    with pytest.raises(errors.MetricUnavailable, match="failed: ConnectError"):
        api.query("up")
