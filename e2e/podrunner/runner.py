"""The pod runner: every Running pod with a container port becomes a real process.

kwok fakes the kubelets, so nothing would otherwise run. This process plays the part of the
kubelet's container runtime and readiness prober for the e2e world:

- a pod that kwok reports Running (and not terminating) with a container port gets a model
  server (`python -m e2e.modelserver`) on a free 127.0.0.1 port, with the container's env;
- the pod turns Ready only once that server answers `/healthz`, as after a readiness probe;
- a server that exits marks the pod NotReady, counts a restart and is started again after a
  back-off (FAULT_CRASH=1 therefore looks like a crash-looping container);
- each server is a Prometheus target (file-based service discovery) labelled with namespace,
  pod, modeldeployment, track and revision; and a table of pods and ports is kept for the
  load generator;
- a pod that goes away has its process stopped and its files removed.

The operator's own pod (a `helm install` of charts/modelrollout) runs too, as the operator, when
the pod asks for it with the annotation `e2e.modelrollout.io/run: operator` (chart value
`podAnnotations`; without it the pod stays a kwok fake, so installs that only check manifests do
not start a second operator beside the tests' own). The container's command must be
`python -m modelrollout`, its env is the chart's, and it talks to
the API server as the pod's ServiceAccount, with a token bound to the pod from the TokenRequest
API, as a kubelet would mount it. Its ports are moved to free loopback ports (the pod network
namespace it would have), published in the pod's address annotation.

A pod annotated `e2e.modelrollout.io/run: "none"` stays a kwok fake: no process and no scrape
target; it is only marked Ready once it runs (for scale tests of many idle objects).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import http.client
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from e2e.cluster import pki
from e2e.cluster.processes import free_port

LOG = logging.getLogger("pod-runner")
ADDRESS_ANNOTATION = "e2e.modelrollout.io/address"
TARGET_LABELS = {
    "modeldeployment": "modelrollout.io/name",
    "track": "modelrollout.io/track",
    "revision": "modelrollout.io/revision",
}
BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 15.0)
READY_SETTLE_S = 2.0
"""How long a Ready the runner set may take to come back through its pod watch."""
REPO = Path(__file__).resolve().parents[2]
OPERATOR_LABEL = ("app.kubernetes.io/name", "modelrollout")
OPERATOR_COMMAND = ["python", "-m", "modelrollout"]
RUN_ANNOTATION = ("e2e.modelrollout.io/run", "operator")
NO_PROCESS = "none"
REAL_POOL = ("modelrollout.io/pool", "real")
"""Pods placed on the world's real kubelet node (e2e/realnode) run as containers, not processes."""
"""The run annotation's value for a pod that gets no process: Ready as soon as it runs."""
TOKEN_SECONDS = 3600 * 6


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


@dataclasses.dataclass
class Server:
    """One pod's model-server process and what the runner knows about it."""

    namespace: str
    name: str
    uid: str
    container: str
    port: int
    env: dict[str, str]
    labels: dict[str, str]
    seen_running_at: float
    scheduled_at: str | None
    kind: str = "model"  # "model" (a model server) or "operator" (the chart's operator)
    health_port: int = 0
    credentials: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    ready: bool = False
    restarts: int = 0
    restart_at: float | None = None
    reported_ready_once: bool = False
    ready_set_at: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def eligible(pod: dict[str, Any]) -> tuple[str, int, str] | None:
    """The container, port and kind of process to run, if this pod should have one."""
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    if meta.get("deletionTimestamp") or status.get("phase") != "Running" or not spec.get("nodeName"):
        return None
    if (meta.get("annotations") or {}).get(RUN_ANNOTATION[0]) == NO_PROCESS:
        return None
    if on_the_real_node(spec):
        return None  # a real kubelet runs it (e2e/realnode)
    if (meta.get("labels") or {}).get(OPERATOR_LABEL[0]) == OPERATOR_LABEL[1]:
        if (meta.get("annotations") or {}).get(RUN_ANNOTATION[0]) != RUN_ANNOTATION[1]:
            return None
        for container in spec.get("containers", []):
            if container.get("command") == OPERATOR_COMMAND:
                return container["name"], 0, "operator"
        return None  # an operator pod this runner cannot run: nothing pretends to
    served = first_port(spec)
    return (*served, "model") if served is not None else None


def on_the_real_node(spec: dict[str, Any]) -> bool:
    return (spec.get("nodeSelector") or {}).get(REAL_POOL[0]) == REAL_POOL[1]


def first_port(spec: dict[str, Any]) -> tuple[str, int] | None:
    """The first container that declares a port, and that port: where a model server listens."""
    for container in spec.get("containers", []):
        for port in container.get("ports") or []:
            if port.get("containerPort"):
                return container["name"], int(port["containerPort"])
    return None


def is_pod_ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions", []))


def real_node_endpoints(pods: dict[str, dict[str, Any]], every_node: bool = False) -> list[dict[str, Any]]:
    """The real node's model-server pods (a kubelet runs them), by pod IP and container port, so
    that the load generator reaches them as it reaches this runner's processes. With `every_node`
    (a kind cluster), every node is a real one."""
    found = []
    for key in sorted(pods):
        pod = pods[key]
        meta, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
        if (not (every_node or on_the_real_node(spec)) or meta.get("deletionTimestamp")
                or status.get("phase") != "Running" or not status.get("podIP")):
            continue
        served = first_port(spec)
        if served is not None:
            found.append({"namespace": meta["namespace"], "name": meta["name"], "host": status["podIP"],
                          "port": served[1], "labels": dict(meta.get("labels") or {}), "ready": is_pod_ready(pod)})
    return found


def container_env(pod: dict[str, Any], container_name: str) -> dict[str, str]:
    env: dict[str, str] = {
        "POD_NAME": pod["metadata"]["name"],
        "POD_NAMESPACE": pod["metadata"]["namespace"],
    }
    for container in pod["spec"]["containers"]:
        if container["name"] == container_name:
            for item in container.get("env") or []:
                if "value" in item:
                    env[item["name"]] = str(item["value"])
                field = ((item.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
                if field in ("metadata.name", "metadata.namespace"):  # the downward API, as the kubelet does
                    env[item["name"]] = pod["metadata"][field.split(".")[1]]
    return env


class Runner:
    def __init__(self, kubeconfig: str, endpoints: Path, targets: Path, timings: Path,
                 kubelets_run_every_pod: bool = False) -> None:
        config.load_kube_config(config_file=kubeconfig)
        self.kubelets_run_every_pod = kubelets_run_every_pod  # kind: only list pods for the load generator
        self.api = client.CoreV1Api()
        self.endpoints, self.targets, self.timings = endpoints, targets, timings
        self.pods: dict[str, dict[str, Any]] = {}
        self.pods_lock = threading.Lock()
        self.servers: dict[str, Server] = {}
        self.stopping = threading.Event()
        self._endpoints_text = ""
        self.remote: list[dict[str, Any]] = []  # real-node pods: listed for the load generator, not run
        self.faked: dict[str, float] = {}  # uid -> when this runner last set the pod Ready

    # -- watching ------------------------------------------------------------------------------

    def watch_pods(self) -> None:
        """Keeps `self.pods` equal to the cluster's pods: list, then watch; re-list on any error."""
        while not self.stopping.is_set():
            try:
                listing = self.api.list_pod_for_all_namespaces(_preload_content=False)
                body = json.loads(listing.data)
                with self.pods_lock:
                    self.pods = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p for p in body["items"]}
                version = body["metadata"]["resourceVersion"]
                for event in watch.Watch().stream(
                    self.api.list_pod_for_all_namespaces, resource_version=version, timeout_seconds=60,
                    allow_watch_bookmarks=False,
                ):
                    pod = event["raw_object"]
                    key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
                    with self.pods_lock:
                        if event["type"] == "DELETED":
                            self.pods.pop(key, None)
                        else:
                            self.pods[key] = pod
                    if self.stopping.is_set():
                        return
            except Exception as error:  # the API server may restart; keep going
                LOG.warning("pod watch interrupted: %s", error)
                self.stopping.wait(1.0)

    # -- reconciling ---------------------------------------------------------------------------

    def reconcile(self) -> None:
        with self.pods_lock:
            pods = dict(self.pods)
        self.remote = real_node_endpoints(pods, every_node=self.kubelets_run_every_pod)
        wanted: dict[str, tuple[dict[str, Any], str, int, str]] = {}
        for key, pod in pods.items():
            serving = None if self.kubelets_run_every_pod else eligible(pod)
            if serving is not None:
                wanted[key] = (pod, *serving)
        leaving = [key for key, server in self.servers.items()
                   if key not in wanted or wanted[key][0]["metadata"]["uid"] != server.uid]
        if leaving:
            # Out of the load generator's table first, as endpoints go before a kubelet's SIGTERM.
            gone = [self.servers.pop(key) for key in leaving]
            self.write_endpoints()
            for server in gone:
                self.stop(server)
        for key, (pod, container, _port, kind) in wanted.items():
            if key not in self.servers:
                self.servers[key] = self.create(pod, container, kind)
            else:
                self.relabel(self.servers[key], pod)
                self.reassert_ready(self.servers[key], pod)
        for server in self.servers.values():
            self.supervise(server)
        self.write_endpoints()
        self.mark_fakes_ready(pods)

    def mark_fakes_ready(self, pods: dict[str, dict[str, Any]]) -> None:
        """Pods that ask for no process are Ready once they run, as if probed."""
        for pod in pods.values():
            meta, status = pod["metadata"], pod.get("status", {})
            if ((meta.get("annotations") or {}).get(RUN_ANNOTATION[0]) != NO_PROCESS or is_pod_ready(pod)
                    or meta.get("deletionTimestamp") or status.get("phase") != "Running"):
                continue
            if time.monotonic() - self.faked.get(meta["uid"], -READY_SETTLE_S) < READY_SETTLE_S:
                continue  # set a moment ago; the watch has not brought it back yet
            now = _now()
            name = pod["spec"]["containers"][0]["name"]
            patch = {"status": {
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now},
                               {"type": "ContainersReady", "status": "True", "lastTransitionTime": now}],
                "containerStatuses": [{"name": name, "ready": True, "restartCount": 0,
                                       "state": {"running": {"startedAt": now}}}]}}
            try:
                self.api.patch_namespaced_pod_status(meta["name"], meta["namespace"], patch)
                self.faked[meta["uid"]] = time.monotonic()
            except Exception as error:
                LOG.warning("%s/%s: could not set Ready: %s", meta["namespace"], meta["name"], error)
        present = {p["metadata"]["uid"] for p in pods.values()}
        self.faked = {uid: at for uid, at in self.faked.items() if uid in present}

    def create(self, pod: dict[str, Any], container: str, kind: str = "model") -> Server:
        meta = pod["metadata"]
        scheduled = next((c.get("lastTransitionTime") for c in pod["status"].get("conditions", [])
                          if c["type"] == "PodScheduled"), None)
        server = Server(
            namespace=meta["namespace"], name=meta["name"], uid=meta["uid"], container=container,
            port=free_port(), env=container_env(pod, container), labels=dict(meta.get("labels") or {}),
            seen_running_at=time.time(), scheduled_at=scheduled, kind=kind,
        )
        if kind == "operator":
            server.health_port = free_port()
            server.credentials = self.pod_credentials(pod)
        self.launch(server)
        with contextlib.suppress(Exception):
            self.api.patch_namespaced_pod(server.name, server.namespace, {
                "metadata": {"annotations": {ADDRESS_ANNOTATION: f"127.0.0.1:{server.port}"}}})
        return server

    def relabel(self, server: Server, pod: dict[str, Any]) -> None:
        """The operator moves pods between tracks by relabelling them; follow in the scrape target."""
        labels = dict(pod["metadata"].get("labels") or {})
        if labels != server.labels:
            server.labels = labels
            if server.process is not None:
                self.write_target(server)

    def reassert_ready(self, server: Server, pod: dict[str, Any]) -> None:
        """A kubelet keeps asserting what its probe sees. kwok may apply its pod-ready stage again
        from a stale cache after this runner flipped the pod Ready, and nothing else would flip it back."""
        settled = time.monotonic() - server.ready_set_at > READY_SETTLE_S  # the watch has caught up
        if server.ready and server.process is not None and settled and not is_pod_ready(pod):
            LOG.info("%s: Ready was overwritten; setting it again", server.key)
            self.set_ready(server, True)

    def pod_credentials(self, pod: dict[str, Any]) -> Path:
        """A kubeconfig with a token of the pod's ServiceAccount, bound to the pod, as a kubelet mounts it."""
        meta = pod["metadata"]
        account = pod["spec"].get("serviceAccountName") or "default"
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {
            "expirationSeconds": TOKEN_SECONDS,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}}}
        answer = self.api.create_namespaced_service_account_token(account, meta["namespace"], request)
        cluster = {"server": self.api.api_client.configuration.host,
                   "certificate-authority": self.api.api_client.configuration.ssl_ca_cert}
        path = self.targets.parent.parent.parent / "run" / "pods" / f"{meta['namespace']}_{meta['name']}.kubeconfig"
        return pki.write_token_kubeconfig(path, cluster, f"{meta['namespace']}:{account}", answer.status.token,
                                          meta["namespace"])

    def launch(self, server: Server) -> None:
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH", "VIRTUAL_ENV")}
        env.update(server.env)
        env["PYTHONUNBUFFERED"] = "1"
        if server.kind == "operator":
            command = [sys.executable, "-m", "modelrollout"]
            env.update({
                "KUBECONFIG": str(server.credentials),
                "PYTHONPATH": str(REPO / "operator"),
                "MODELROLLOUT_METRICS_PORT": str(server.port),
                "MODELROLLOUT_HEALTH_PORT": str(server.health_port),
                "MODELROLLOUT_LISTEN_HOST": "127.0.0.1",  # the pod's own network namespace, here
            })
        else:
            command = [sys.executable, "-m", "e2e.modelserver", "--port", str(server.port)]
        log_dir = self.targets.parent.parent.parent / "logs" / "pods"
        log_dir.mkdir(parents=True, exist_ok=True)
        with (log_dir / f"{server.namespace}_{server.name}.log").open("ab") as log:
            server.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=REPO,
            )
        server.ready = False
        server.restart_at = None
        self.write_target(server)

    def supervise(self, server: Server) -> None:
        process = server.process
        if process is None:
            if server.restart_at is not None and time.monotonic() >= server.restart_at:
                self.launch(server)
            return
        code = process.poll()
        if code is not None:
            LOG.info("%s: %s exited with %s", server.key, server.kind, code)
            server.process = None
            server.restarts += 1
            server.restart_at = time.monotonic() + BACKOFF_S[min(server.restarts, len(BACKOFF_S)) - 1]
            self.remove_target(server)
            self.set_ready(server, False, exit_code=code)
            return
        if not server.ready and self.answers(server.health_port if server.kind == "operator" else server.port):
            self.set_ready(server, True)
            if not server.reported_ready_once:
                server.reported_ready_once = True
                self.record_timing(server)

    @staticmethod
    def answers(port: int) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=0.3)
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def set_ready(self, server: Server, ready: bool, exit_code: int | None = None) -> None:
        now = _now()
        flag = "True" if ready else "False"
        status: dict[str, Any] = {"name": server.container, "ready": ready, "restartCount": server.restarts}
        if ready:
            status["state"] = {"running": {"startedAt": now}}
        else:
            status["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
            status["lastState"] = {"terminated": {"exitCode": exit_code or 0, "finishedAt": now, "reason": "Error"}}
        patch = {"status": {
            "conditions": [
                {"type": "Ready", "status": flag, "lastTransitionTime": now},
                {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
            ],
            "containerStatuses": [status],
        }}
        try:
            self.api.patch_namespaced_pod_status(server.name, server.namespace, patch)
            server.ready = ready
            server.ready_set_at = time.monotonic()
        except Exception as error:
            LOG.warning("%s: could not set Ready=%s: %s", server.key, flag, error)

    def stop(self, server: Server) -> None:
        if server.process is not None:
            server.process.terminate()
            try:
                server.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()
        self.remove_target(server)
        if server.credentials is not None:
            server.credentials.unlink(missing_ok=True)

    # -- files ---------------------------------------------------------------------------------

    def target_file(self, server: Server) -> Path:
        return self.targets / f"{server.namespace}__{server.name}.json"

    def write_target(self, server: Server) -> None:
        if server.kind != "model":
            return  # the operator's /metrics is scraped through its ServiceMonitor, not as a model
        labels = {"namespace": server.namespace, "pod": server.name}
        for target_label, pod_label in TARGET_LABELS.items():
            if pod_label in server.labels:
                labels[target_label] = server.labels[pod_label]
        target = [{"targets": [f"127.0.0.1:{server.port}"], "labels": labels}]
        _atomic_write(self.target_file(server), json.dumps(target))

    def remove_target(self, server: Server) -> None:
        self.target_file(server).unlink(missing_ok=True)

    def write_endpoints(self) -> None:
        table = {"pods": [
            {"namespace": s.namespace, "name": s.name, "port": s.port, "labels": s.labels,
             "ready": s.ready and s.process is not None}
            for s in sorted(self.servers.values(), key=lambda s: s.key) if s.kind == "model"
        ] + self.remote}
        text = json.dumps(table, sort_keys=True)
        if text != self._endpoints_text:
            _atomic_write(self.endpoints, text)
            self._endpoints_text = text

    def record_timing(self, server: Server) -> None:
        line = {
            "namespace": server.namespace, "pod": server.name, "scheduledAt": server.scheduled_at,
            "secondsFromRunningToAnswering": round(time.time() - server.seen_running_at, 3),
            "answeringAt": _now(),
        }
        with self.timings.open("a") as handle:
            handle.write(json.dumps(line) + "\n")

    # -- main ----------------------------------------------------------------------------------

    def run(self) -> None:
        self.targets.mkdir(parents=True, exist_ok=True)
        for stale in self.targets.glob("*.json"):
            stale.unlink()
        _atomic_write(self.endpoints, json.dumps({"pods": []}))
        threading.Thread(target=self.watch_pods, daemon=True, name="pod-watch").start()
        try:
            while not self.stopping.is_set():
                try:
                    self.reconcile()
                except Exception:
                    LOG.exception("reconcile failed; retrying")
                self.stopping.wait(0.2)
        finally:
            for server in self.servers.values():
                self.stop(server)
            self.endpoints.unlink(missing_ok=True)

    def request_stop(self, *_: object) -> None:
        self.stopping.set()


def install_signal_handlers(runner: Runner) -> None:
    signal.signal(signal.SIGTERM, runner.request_stop)
    signal.signal(signal.SIGINT, runner.request_stop)
