"""`helm test`: a Pod that asks the operator's health port for /healthz through a Service of its
own. Its script is run here for real against a local HTTP server; its Service must lead to the
operator pod's health port."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.chart.conftest import Chart


def hooks(chart: Chart, **set_json: Any) -> dict[str, dict[str, Any]]:
    objects = chart.render(set_json=set_json or None)
    tests = {o["kind"]: o for o in objects if (o["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"}
    tests["Deployment"] = next(o for o in objects if o["kind"] == "Deployment")
    return tests


def test_the_service_leads_to_the_operators_health_port(chart: Chart) -> None:
    found = hooks(chart, **{"health.port": 9444})
    service, pod, deployment = found["Service"], found["Pod"], found["Deployment"]
    template = deployment["spec"]["template"]
    assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
    ports = {p["name"]: p["containerPort"] for p in template["spec"]["containers"][0]["ports"]}
    assert (service["spec"]["ports"][0]["targetPort"], ports["health"]) == ("health", 9444)
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert env["HEALTH_URL"] == f"http://{service['metadata']['name']}.modelrollout.svc:9444/healthz"
    # The variables the kubelet writes for a Service that exists when the pod starts (service links).
    links = service["metadata"]["name"].upper().replace("-", "_") + "_SERVICE"
    assert env["HEALTH_ADDRESS"] == f"$({links}_HOST):$({links}_PORT)"
    assert pod["spec"]["containers"][0]["image"] == template["spec"]["containers"][0]["image"]
    assert pod["spec"]["restartPolicy"] == "Never"


class Health(http.server.BaseHTTPRequestHandler):
    code = 200

    def do_GET(self) -> None:  # the standard library's name
        self.send_response(self.code if self.path == "/healthz" else 404)
        self.end_headers()
        self.wfile.write(b'{"apiserver": true}')

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.HTTPServer]:
    started = http.server.HTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=started.serve_forever, daemon=True)
    thread.start()
    yield started
    started.shutdown()
    started.server_close()


@pytest.mark.parametrize("code, exit_code", [(200, 0), (500, 1)])
@pytest.mark.parametrize("service_links", [True, False], ids=["cluster-ip", "dns-name"])
def test_the_pods_script_passes_only_on_a_healthy_answer(
        chart: Chart, server: http.server.HTTPServer, code: int, exit_code: int, service_links: bool) -> None:
    Health.code = code
    pod = hooks(chart)["Pod"]
    container = pod["spec"]["containers"][0]
    assert container["command"][:2] == ["python", "-c"]
    address = f"127.0.0.1:{server.server_address[1]}"
    url = f"http://{address}/healthz"
    if service_links:  # as the kubelet expands it; the DNS name is then not used
        env = {"HEALTH_ADDRESS": address, "HEALTH_URL": "http://health-test.invalid/healthz"}
    else:  # no such variables: the kubelet leaves `$(...)` as written
        env = {"HEALTH_ADDRESS": "$(X_SERVICE_HOST):$(X_SERVICE_PORT)", "HEALTH_URL": url}
    result = subprocess.run([sys.executable, "-c", container["command"][2]], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == exit_code, result.stdout + result.stderr
    assert url in result.stdout
