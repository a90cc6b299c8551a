"""Bringing the local e2e world up and down.

Order: binaries -> PKI -> etcd -> kube-apiserver -> controller-manager, scheduler -> CRDs ->
GPU nodes and kwok -> Prometheus -> prometheus-adapter (the custom metrics API) -> pod runner ->
load generator -> `.e2e/env`. A failed start
stops what was started and raises with the tail of the failing component's log, so
`cluster-up` never hangs and never leaves half a world behind.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shlex
import shutil
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from e2e.cluster import components, nodepools, pki
from e2e.cluster.layout import REPO, Layout, Ports, unit_world, worker_world, workers_root
from e2e.cluster.processes import StartError, Supervisor, port_in_use
from e2e.realnode.node import RealNode

# Stopped in this order; started in the reverse.
ORDER = [
    "operator",  # started by `make demo`, if it ran
    "loadgen", "pod-runner", "prometheus-adapter", "prometheus", "kwok", "kube-scheduler",
    "kube-controller-manager", "kube-apiserver", "etcd",
]
OUR_CRDS = REPO / "crds"
ADAPTER_RULES = REPO / "examples/autoscaling/prometheus-adapter.yaml"
"""The custom metrics the docs tell users to serve: the world serves the same file."""


def log(message: str) -> None:
    print(f"[cluster {time.strftime('%H:%M:%S')}] {message}", flush=True)


def build_binaries() -> tuple[Path, Path]:
    """Runs the (idempotent) build; returns the bin folder and the share folder.

    The build's progress lines are passed on as they come: a cold build takes minutes, and a
    newcomer running `make demo` should see why it is waiting.
    """
    process = subprocess.Popen(["bash", str(REPO / "e2e/cluster/build.sh")], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None and process.stdout is not None
    errors = []
    for line in process.stderr:
        errors.append(line)
        if line.startswith("[build"):
            print(line, end="", flush=True)
    stdout = process.stdout.read()
    if process.wait() != 0:
        raise StartError(f"building the e2e binaries failed:\n{''.join(errors)[-4000:]}")
    bin_dir = Path(stdout.strip().splitlines()[-1])
    share = Path((bin_dir / "share.path").read_text().strip())
    return bin_dir, share


def _https_ok(url: str, layout: Layout, verify: bool) -> bool:
    if not verify:  # the controller-manager and scheduler serve self-signed health endpoints
        context = ssl._create_unverified_context()
    else:
        context = ssl.create_default_context(cafile=str(layout.pki / "ca.crt"))
        context.load_cert_chain(str(layout.pki / "admin.crt"), str(layout.pki / "admin.key"))
    with urllib.request.urlopen(url, context=context, timeout=2) as response:
        return bool(response.status == 200)


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


class World:
    def __init__(self, layout: Layout | None = None, ports: Ports | None = None) -> None:
        self.layout = layout or Layout.default()
        self.ports = ports or Ports.from_env()
        self.supervisor = Supervisor(self.layout.run, self.layout.logs)

    # -- state ---------------------------------------------------------------------------------

    def healthy(self) -> bool:
        if not self.layout.env_file.exists():
            return False
        if any(self.supervisor.pid_of(name) is None for name in ORDER if name != "operator"):
            return False
        try:
            return _https_ok(f"https://127.0.0.1:{self.ports.apiserver}/readyz", self.layout, verify=True)
        except Exception:
            return False

    def kubectl(self, bin_dir: Path, *args: str, input: str | None = None) -> str:
        result = subprocess.run(
            [str(bin_dir / "kubectl"), f"--kubeconfig={self.layout.kubeconfig}", *args],
            input=input, capture_output=True, text=True, timeout=120,
        )
        if result.returncode != 0:
            raise StartError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    # -- up ------------------------------------------------------------------------------------

    def up(self) -> None:
        if self.healthy():
            log(f"already up; {self.layout.env_file}")
            return
        if self.supervisor.running():
            log("found a partial world; stopping it first")
        self.down(quiet=True)
        started = time.monotonic()
        try:
            self._start(started)
        except BaseException:
            log("start failed; stopping what was started")
            self.down(quiet=True)
            raise
        log(f"up in {time.monotonic() - started:.1f} s; source {self.layout.env_file}")

    def _start(self, started: float) -> None:
        layout, ports, sup = self.layout, self.ports, self.supervisor
        pools = nodepools.load(REPO / "e2e/nodepools.yaml")  # refuse a bad file before starting anything
        bin_dir, share = build_binaries()
        log(f"binaries ready ({time.monotonic() - started:.1f} s): {bin_dir}")
        busy = [p for p in ports.all() if port_in_use(p)]
        if busy:
            raise StartError(f"ports already in use on 127.0.0.1: {busy}; stop what holds them or set E2E_PORT_OFFSET")
        pki.ensure(layout.pki)
        layout.kubeconfig.write_text(pki.kubeconfig(layout.pki, f"https://127.0.0.1:{ports.apiserver}"))
        layout.kubeconfig.chmod(0o600)

        sup.start(components.etcd(bin_dir, layout, ports))
        sup.wait_until("etcd", lambda: _http_ok(f"http://127.0.0.1:{ports.etcd_client}/health"), 30)
        sup.start(components.apiserver(bin_dir, layout, ports))
        sup.wait_until("kube-apiserver", lambda: _https_ok(
            f"https://127.0.0.1:{ports.apiserver}/readyz", layout, verify=True), 120)
        log(f"kube-apiserver ready ({time.monotonic() - started:.1f} s)")
        sup.start(components.controller_manager(bin_dir, layout, ports))
        sup.start(components.scheduler(bin_dir, layout, ports))
        self._install_crds(bin_dir, share)
        self._start_nodes(bin_dir, share, pools)
        sup.wait_until("kube-controller-manager", lambda: _https_ok(
            f"https://127.0.0.1:{ports.controller_manager}/healthz", layout, verify=False), 60)
        sup.wait_until("kube-scheduler", lambda: _https_ok(
            f"https://127.0.0.1:{ports.scheduler}/healthz", layout, verify=False), 60)
        sup.wait_until("kube-controller-manager", lambda: bool(self.kubectl(
            bin_dir, "get", "serviceaccount", "default", "-n", "default", "-o", "name")), 60,
            what="creating the default service account")
        self._start_prometheus()
        self._start_metrics_adapter(bin_dir)
        layout.scrape_targets.mkdir(parents=True, exist_ok=True)
        sup.start(components.pod_runner(layout))
        sup.wait_until("pod-runner", layout.endpoints.exists, 60, what="writing its endpoints file")
        sup.start(components.load_generator(layout, ports))
        sup.wait_until("loadgen", lambda: _http_ok(f"http://127.0.0.1:{ports.loadgen}/metrics"), 60)
        self._write_env(bin_dir)

    def _install_crds(self, bin_dir: Path, share: Path) -> None:
        files = sorted((share / "crds").glob("*.yaml"))
        if (OUR_CRDS / "modeldeployments.yaml").exists():
            files.append(OUR_CRDS / "modeldeployments.yaml")
        args = ["apply", "--server-side", "--force-conflicts"]
        for f in files:
            args += ["-f", str(f)]
        self.kubectl(bin_dir, *args)
        self.kubectl(bin_dir, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")

    def _start_nodes(self, bin_dir: Path, share: Path, pools: list[nodepools.Pool]) -> None:
        config = self.layout.run / "kwok.yaml"
        config.write_text(kwok_config(share / "kwok-stages"))
        nodes = nodepools.nodes(pools)
        # `create`, not apply: a node keeps the status it is created with (capacity, GPUs).
        self.kubectl(bin_dir, "create", "-f", "-", input=yaml.safe_dump_all(nodes))
        self.supervisor.start(components.kwok(bin_dir, self.layout, self.ports, config))
        names = [n["metadata"]["name"] for n in nodes]
        self.supervisor.wait_until("kwok", lambda: self._nodes_ready(bin_dir, names), 60, what="making nodes Ready")

    def _nodes_ready(self, bin_dir: Path, names: list[str]) -> bool:
        listing = json.loads(self.kubectl(bin_dir, "get", "nodes", "-o", "json"))
        ready = {
            item["metadata"]["name"]
            for item in listing["items"]
            if any(c["type"] == "Ready" and c["status"] == "True" for c in item["status"].get("conditions", []))
            and not any(t["key"].startswith("node.kubernetes.io/not-ready") for t in item["spec"].get("taints", []))
        }
        return set(names) <= ready

    def _start_prometheus(self) -> None:
        layout = self.layout
        layout.prometheus_dir.mkdir(parents=True, exist_ok=True)
        config = layout.prometheus_dir / "prometheus.yml"
        config.write_text(prometheus_config(layout, self.ports))
        self.supervisor.start(components.prometheus(layout, self.ports, config))
        self.supervisor.wait_until("prometheus", lambda: _http_ok(
            f"http://127.0.0.1:{self.ports.prometheus}/-/ready"), 60)

    def _start_metrics_adapter(self, bin_dir: Path) -> None:
        layout, ports = self.layout, self.ports
        shutil.copyfile(ADAPTER_RULES, layout.metrics_adapter_config)
        self.supervisor.start(components.metrics_adapter(bin_dir, layout, ports))
        self.supervisor.wait_until("prometheus-adapter", lambda: _https_ok(
            f"https://127.0.0.1:{ports.metrics_adapter}/healthz", layout, verify=False), 60)
        self.kubectl(bin_dir, "apply", "-f", "-", input=yaml.safe_dump_all(metrics_api(layout, ports)))
        self.supervisor.wait_until("prometheus-adapter", lambda: bool(self.kubectl(
            bin_dir, "get", "--raw", "/apis/custom.metrics.k8s.io/v1beta2")), 60,
            what="serving custom.metrics.k8s.io through the API server")

    def start_prometheus(self) -> None:
        """Starts Prometheus again after `stop_prometheus`, keeping its data (fault tests)."""
        if self.supervisor.pid_of("prometheus") is None:
            self._start_prometheus()

    def stop_prometheus(self) -> None:
        self.supervisor.stop("prometheus")

    def restart_apiserver(self) -> None:
        """Stops kube-apiserver and starts it again on the same etcd (fault tests)."""
        bin_dir, _ = build_binaries()
        self.supervisor.stop("kube-apiserver")
        self.supervisor.start(components.apiserver(bin_dir, self.layout, self.ports))
        self.supervisor.wait_until("kube-apiserver", lambda: _https_ok(
            f"https://127.0.0.1:{self.ports.apiserver}/readyz", self.layout, verify=True), 120)

    def _write_env(self, bin_dir: Path) -> None:
        write_env(self.layout, {
            "KUBECONFIG": str(self.layout.kubeconfig),
            "PROMETHEUS_URL": f"http://127.0.0.1:{self.ports.prometheus}",
            "E2E_BIN": str(bin_dir),
            "E2E_CLUSTER": "local",
            "LOADGEN_METRICS_URL": f"http://127.0.0.1:{self.ports.loadgen}/metrics",
        })

    # -- down ----------------------------------------------------------------------------------

    def down(self, quiet: bool = False) -> None:
        if (self.layout.run / "realnode").exists():  # a real node drains its pods while the API server runs
            RealNode(self.layout, self.ports.offset).down(quiet=quiet)
        for name in ORDER:
            if not quiet and self.supervisor.pid_of(name) is not None:
                log(f"stopping {name}")
            self.supervisor.stop(name)
        self.layout.env_file.unlink(missing_ok=True)
        for path in (self.layout.etcd_data, self.layout.prometheus_dir, self.layout.endpoints):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        deadline = time.monotonic() + 10
        busy = [p for p in self.ports.all() if port_in_use(p)]
        while busy and time.monotonic() < deadline:
            time.sleep(0.2)
            busy = [p for p in self.ports.all() if port_in_use(p)]
        if busy and not quiet:
            raise StartError(f"after stopping, ports still listen: {busy}")
        if not quiet:
            log("down")


def metrics_api(layout: Layout, ports: Ports) -> list[dict[str, Any]]:
    """The APIServices that make the API server forward custom.metrics.k8s.io to the adapter.

    The adapter runs on the host's loopback, which no Endpoints object may name, so the Service
    is an ExternalName for localhost: the API server dials `localhost:<port>` and checks the
    adapter's certificate against `prometheus-adapter.kube-system.svc`.
    """
    namespace, name = pki.ADAPTER_SERVICE
    ca_bundle = base64.b64encode((layout.pki / "ca.crt").read_bytes()).decode()
    objects: list[dict[str, Any]] = [{
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
        "spec": {"type": "ExternalName", "externalName": "localhost"},
    }]
    for version, priority in (("v1beta2", 200), ("v1beta1", 100)):
        objects.append({
            "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": f"{version}.custom.metrics.k8s.io"},
            "spec": {"group": "custom.metrics.k8s.io", "version": version, "groupPriorityMinimum": 100,
                     "versionPriority": priority, "caBundle": ca_bundle,
                     "service": {"namespace": namespace, "name": name, "port": ports.metrics_adapter}},
        })
    return objects


def kwok_config(stages: Path) -> str:
    """kwok's node stages as shipped, and pod stages that leave readiness to the pod runner.

    The shipped pod-ready stage marks a pod Ready as soon as it runs. Here a pod starts Running
    but not Ready, and the pod runner flips it once its model server answers, as a kubelet
    would after a readiness probe. kwok uses no default stage once any is configured, so all
    of them are listed.
    """
    docs = []
    for name in ["node-initialize", "node-heartbeat", "pod-ready", "pod-complete", "pod-delete"]:
        text = (stages / f"{name}.yaml").read_text()
        if name == "pod-ready":
            text = _not_ready_until_probed(text)
        docs.append(text.strip())
    return "\n---\n".join(docs) + "\n"


def _not_ready_until_probed(text: str) -> str:
    for condition in ("Ready", "ContainersReady"):
        before = f'status: "True"\n        type: {condition}\n'
        if before not in text:
            raise StartError(f"kwok's pod-ready stage changed shape; cannot find the {condition} condition")
        text = text.replace(before, f'status: "False"\n        type: {condition}\n')
    marker = "        name: {{ .name | Quote }}\n        ready: true\n"
    if marker not in text:
        raise StartError("kwok's pod-ready stage changed shape; cannot find containerStatuses.ready")
    return text.replace(marker, "        name: {{ .name | Quote }}\n        ready: false\n", 1)


SCRAPE_INTERVAL = "E2E_SCRAPE_INTERVAL"
"""The model servers' scrape interval, in seconds with an `s` (default 15s, Prometheus's own
default in most installs); the scrape timeout is 10 s, or one second less than a shorter interval."""
SLOWER_SCRAPES = r"scrape-(\d\d+s)-.*"
"""A namespace named like `scrape-30s-...` has its model servers scraped at that interval instead
(10 s or more), so one world serves scenarios at several intervals (`__scrape_interval__`)."""


def scrape_interval() -> int:
    raw = os.environ.get(SCRAPE_INTERVAL, "15s").strip()
    if not raw.endswith("s") or not raw[:-1].isdigit() or int(raw[:-1]) < 1:
        raise StartError(f"{SCRAPE_INTERVAL}={raw!r}: use whole seconds, e.g. 15s")
    return int(raw[:-1])


def prometheus_config(layout: Layout, ports: Ports) -> str:
    interval = scrape_interval()
    timeout = min(10, max(1, interval - 1))
    config = {
        "global": {"scrape_interval": f"{interval}s", "scrape_timeout": f"{timeout}s",
                   "evaluation_interval": f"{interval}s"},
        "scrape_configs": [
            {
                "job_name": "model-servers",
                "file_sd_configs": [{"files": [str(layout.scrape_targets / "*.json")], "refresh_interval": "5s"}],
                "relabel_configs": [
                    {"source_labels": ["namespace"], "regex": SLOWER_SCRAPES, "target_label": "__scrape_interval__",
                     "replacement": "$1"},
                    {"source_labels": ["namespace"], "regex": SLOWER_SCRAPES, "target_label": "__scrape_timeout__",
                     "replacement": "10s"},
                ],
            },
            {"job_name": "loadgen", "scrape_interval": "5s", "scrape_timeout": "4s",
             "static_configs": [{"targets": [f"127.0.0.1:{ports.loadgen}"]}]},
            {
                "job_name": "modelrollout-operator",
                "file_sd_configs": [{"files": [str(layout.prometheus_dir / "operator" / "*.json")]}],
            },
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


ENV_HEADER = "# The e2e world. `source .e2e/env` puts these settings, kubectl and helm into the shell.\n"
PATH_LINE = 'export PATH="$E2E_BIN:$PATH"\n'


def write_env(layout: Layout, settings: dict[str, str]) -> None:
    """Writes `.e2e/env` as a shell file: `export KEY=value` lines, then E2E_BIN put on PATH."""
    lines = [f"export {key}={shlex.quote(value)}\n" for key, value in settings.items()]
    layout.env_file.write_text(ENV_HEADER + "".join(lines) + PATH_LINE)


def read_env(layout: Layout | None = None) -> dict[str, str]:
    """The settings of `.e2e/env` (`export KEY=value` or `KEY=value` lines), without PATH.

    PATH is left out: it only makes sense expanded by a shell, and processes started from
    Python are given the full path of kubectl and helm.
    """
    layout = layout or Layout.default()
    out: dict[str, str] = {}
    with contextlib.suppress(FileNotFoundError):
        for line in layout.env_file.read_text().splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["export"]:
                words = words[1:]
            if len(words) != 1 or "=" not in words[0]:
                continue
            key, value = words[0].split("=", 1)
            if key != "PATH":
                out[key] = value
    return out


def env_for_subprocesses(layout: Layout | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(read_env(layout))
    return env


def worker_worlds() -> list[World]:
    """The worlds of parallel test workers (`layout.worker_world`, `layout.unit_world`) that have a folder."""
    found = []
    for root in sorted(workers_root().glob("gw*")):
        where = worker_world(root.name)
        if where is not None:
            found.append(World(where[0], Ports.from_offset(where[1])))
    unit, offset = unit_world()
    if unit.root.exists():
        found.append(World(unit, Ports.from_offset(offset)))
    return found
