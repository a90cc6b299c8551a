"""Reaching a Prometheus behind auth and TLS, over real HTTPS: headers, basic auth, a CA from a
Secret and a client certificate; a refused credential is an error that names the status."""

from __future__ import annotations

import base64
import http.server
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.cluster import pki
from e2e.fixtures import loopback
from modelrollout import errors
from modelrollout.adapters.metrics import http_api

USER, PASSWORD, TENANT = "operator", "s3cret", "team-a"


class _GuardedPrometheus(http.server.BaseHTTPRequestHandler):
    """Answers an empty vector to a request with the right basic auth and tenant header, else 401."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != expected or self.headers.get("X-Scope-OrgID") != TENANT:
            body = b"Unauthorized\n"
            self.send_response(401)
        else:
            body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}).encode()
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pki.loopback_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def server(certificates: Path) -> Iterator[str]:
    """An HTTPS server on loopback that wants a client certificate signed by the same CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates / "server.crt", certificates / "server.key")
    context.load_verify_locations(certificates / "ca.crt")
    context.verify_mode = ssl.CERT_REQUIRED
    with loopback.serve(_GuardedPrometheus, tls=context) as url:
        yield url


def _tls(certificates: Path, client: bool = True) -> http_api.Tls:
    return http_api.Tls(
        ca_pem=(certificates / "ca.crt").read_text(),
        client_cert_pem=(certificates / "client.crt").read_text() if client else None,
        client_key_pem=(certificates / "client.key").read_text() if client else None,
    )


def test_headers_basic_auth_and_client_certificate_reach_it(server: str, certificates: Path) -> None:
    access = http_api.Access((("X-Scope-OrgID", TENANT), http_api.Access.basic(USER, PASSWORD)),
                             _tls(certificates))
    assert http_api.Api(server, access, timeout=5).query("up") == []


def test_a_wrong_password_names_the_status_and_the_secrets(server: str, certificates: Path) -> None:
    access = http_api.Access((("X-Scope-OrgID", TENANT), http_api.Access.basic(USER, "wrong")), _tls(certificates))
    with pytest.raises(http_api.PrometheusError) as refused:
        http_api.Api(server, access, timeout=5).query("up")
    assert refused.value.status == 401
    assert "HTTP 401" in str(refused.value) and "spec.analysis.prometheus" in str(refused.value)


def test_a_missing_tenant_header_is_refused(server: str, certificates: Path) -> None:
    access = http_api.Access((http_api.Access.basic(USER, PASSWORD),), _tls(certificates))
    with pytest.raises(http_api.PrometheusError, match="HTTP 401"):
        http_api.Api(server, access, timeout=5).query("up")


def test_without_the_ca_the_server_is_not_trusted(server: str, certificates: Path) -> None:
    access = http_api.Access((("X-Scope-OrgID", TENANT), http_api.Access.basic(USER, PASSWORD)))
    with pytest.raises(errors.MetricUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        http_api.Api(server, access, timeout=5).query("up")


def test_without_a_client_certificate_the_handshake_fails(server: str, certificates: Path) -> None:
    access = http_api.Access((("X-Scope-OrgID", TENANT), http_api.Access.basic(USER, PASSWORD)),
                             _tls(certificates, client=False))
    with pytest.raises(errors.MetricUnavailable, match="failed"):
        http_api.Api(server, access, timeout=5).query("up")


def test_a_key_that_does_not_match_is_a_spec_error(certificates: Path) -> None:
    tls = http_api.Tls(client_cert_pem=(certificates / "client.crt").read_text(),
                       client_key_pem=(certificates / "server.key").read_text())
    with pytest.raises(errors.SpecError, match="client certificate"):
        tls.verify()
