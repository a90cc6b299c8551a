"""Prometheus as teams run it: behind TLS with a client certificate and basic auth (Prometheus's
own --web.config.file), and behind a tenant header (X-Scope-OrgID, checked by a small proxy).
Credentials come from Secrets; a wrong password is an Error that names the status and holds the
rollout, and the rollout goes on once the Secret is fixed."""

from __future__ import annotations

import http.server
import os
import signal
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import bcrypt
import httpx
import pytest
import yaml

from e2e.cluster import pki
from e2e.cluster.processes import free_port
from e2e.fixtures import given, loopback, then, when
from e2e.fixtures.operator import OperatorProcess
from e2e.fixtures.world import Kubectl, WorldInfo, consistently, eventually

pytestmark = pytest.mark.cluster

USER, PASSWORD, TENANT = "modelrollout", "correct-horse", "team-a"
STEPS = [{"setWeight": 50}, {"analyze": {"duration": "30s"}}]


@pytest.fixture(scope="module")
def guarded_prometheus(world: WorldInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A second Prometheus scraping the same model servers, reached only over TLS with a client
    certificate and basic auth: its address and the folder of its certificates."""
    if world.local is None:
        pytest.skip("runs a second Prometheus process beside the local world's (kind runs it in-cluster)")
    folder = tmp_path_factory.mktemp("guarded-prometheus")
    tls = pki.loopback_tls(folder / "tls")
    web = {
        "tls_server_config": {"cert_file": str(tls / "server.crt"), "key_file": str(tls / "server.key"),
                              "client_ca_file": str(tls / "ca.crt"), "client_auth_type": "RequireAndVerifyClientCert"},
        "basic_auth_users": {USER: bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()},
    }
    (folder / "web.yml").write_text(yaml.safe_dump(web))
    port = free_port()
    log = (folder / "prometheus.log").open("wb")  # written by the process until teardown
    process = subprocess.Popen(
        ["prometheus", f"--config.file={world.local.layout.prometheus_dir / 'prometheus.yml'}",
         f"--web.config.file={folder / 'web.yml'}", f"--web.listen-address=127.0.0.1:{port}",
         f"--storage.tsdb.path={folder / 'data'}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    address = f"https://127.0.0.1:{port}"
    try:
        client = httpx.Client(verify=_context(tls), auth=(USER, PASSWORD), timeout=2)
        eventually(lambda: _ready(client, address), 60, what="the guarded Prometheus ready")
        yield address, tls
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
        log.close()


def _context(tls: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(tls / "ca.crt"))
    context.load_cert_chain(str(tls / "client.crt"), str(tls / "client.key"))
    return context


def _ready(client: httpx.Client, address: str) -> bool:
    try:
        return client.get(f"{address}/-/ready").status_code == 200
    except httpx.HTTPError:
        return False


class _TenantProxy(http.server.BaseHTTPRequestHandler):
    """Forwards to the world's Prometheus only the requests that name the tenant; 401 otherwise."""

    upstream: ClassVar[str] = ""
    seen: ClassVar[dict[str, int]] = {"forwarded": 0, "refused": 0}

    def do_GET(self) -> None:
        self._forward(None)

    def do_POST(self) -> None:
        self._forward(self.rfile.read(int(self.headers.get("Content-Length", 0))))

    def _forward(self, body: bytes | None) -> None:
        if self.headers.get("X-Scope-OrgID") != TENANT:
            type(self).seen["refused"] += 1
            self._answer(401, b"no tenant\n", "text/plain")
            return
        type(self).seen["forwarded"] += 1
        request = urllib.request.Request(self.upstream + self.path, data=body, method=self.command)
        if body is not None:
            request.add_header("Content-Type", self.headers.get("Content-Type", "application/x-www-form-urlencoded"))
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                self._answer(answer.status, answer.read(), answer.headers.get("Content-Type", "application/json"))
        except urllib.error.HTTPError as error:
            self._answer(error.code, error.read(), "application/json")

    def _answer(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def tenant_proxy(world: WorldInfo) -> Iterator[str]:
    _TenantProxy.upstream = world.prometheus_url.rstrip("/")
    _TenantProxy.seen.update(forwarded=0, refused=0)
    with loopback.serve(_TenantProxy) as url:
        yield url


def _analysed_with(prometheus: dict[str, Any]) -> Any:
    def change(body: dict[str, Any]) -> None:
        body["spec"]["strategy"]["canary"]["steps"] = STEPS
        body["spec"]["analysis"]["prometheus"] = prometheus
    return change


def _secret(kubectl: Kubectl, namespace: str, *args: str) -> None:
    manifest = kubectl("-n", namespace, "create", "secret", *args, "--dry-run=client", "-o", "yaml").stdout
    kubectl("apply", "-f", "-", input=manifest)


def test_tls_client_certificate_and_basic_auth_from_secrets(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess, guarded_prometheus: tuple[str, Path]) -> None:
    address, tls = guarded_prometheus
    _secret(kubectl, namespace, "generic", "prometheus-auth", "--type=kubernetes.io/basic-auth",
            f"--from-literal=username={USER}", "--from-literal=password=wrong")
    _secret(kubectl, namespace, "generic", "prometheus-ca", f"--from-file=ca.crt={tls / 'ca.crt'}")
    _secret(kubectl, namespace, "tls", "prometheus-client",
            f"--cert={tls / 'client.crt'}", f"--key={tls / 'client.key'}")
    name = given.model_deployment(kubectl, namespace, given.example("canary-gateway-api"), rps=100,
                                  change=_analysed_with({
                                      "address": address,
                                      "basicAuthSecret": {"name": "prometheus-auth"},
                                      "tls": {"caSecret": {"name": "prometheus-ca"},
                                              "clientCertSecret": {"name": "prometheus-client"}},
                                  }))
    then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)
    when.new_version(kubectl, namespace, name, "1.1.0")

    def refused() -> Any:
        entries = then.status(kubectl, namespace, name).get("analysis", [])
        return [a for a in entries if a["verdict"] == "Error" and "HTTP 401" in a.get("reason", "")]
    eventually(refused, 90, what="an analysis Error naming HTTP 401")

    def holding() -> bool:
        status = then.status(kubectl, namespace, name)
        return status["phase"] in ("Progressing", "Paused") and status.get("canaryWeight") == 50
    consistently(holding, 20, what="no promotion and no rollback while Prometheus refuses the password")

    _secret(kubectl, namespace, "generic", "prometheus-auth", "--type=kubernetes.io/basic-auth",
            f"--from-literal=username={USER}", f"--from-literal=password={PASSWORD}")
    done = then.phase_becomes(kubectl, namespace, name, "Succeeded", 240)
    assert done["history"][-1]["outcome"] == "Promoted", done["history"][-1]
    judged = [a for a in done.get("analysis", []) if a.get("canarySamples")]
    assert judged, done.get("analysis")


def test_tenant_header_is_sent_with_every_query(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess, tenant_proxy: str) -> None:
    name = given.model_deployment(kubectl, namespace, given.example("canary-gateway-api"), rps=100,
                                  change=_analysed_with({
                                      "address": tenant_proxy,
                                      "headers": [{"name": "X-Scope-OrgID", "value": TENANT}],
                                  }))
    then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)
    when.new_version(kubectl, namespace, name, "1.1.0")
    done = then.phase_becomes(kubectl, namespace, name, "Succeeded", 240)
    assert done["history"][-1]["outcome"] == "Promoted", done["history"][-1]
    assert _TenantProxy.seen["forwarded"] > 0 and _TenantProxy.seen["refused"] == 0, _TenantProxy.seen
