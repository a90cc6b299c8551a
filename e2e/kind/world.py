"""The parts of the kind world beside the cluster, after `kind create` (e2e/kind/cluster.sh):

- routes from this host to each node's pod CIDR through the node's address on kind's Docker
  network, so that the operator's smoke tests and the load generator reach pods by pod IP, as
  they would from inside a cluster;
- Prometheus in the cluster, scraping pods by Kubernetes service discovery with the relabelling
  of the chart's PodMonitors, reached at the control-plane node's NodePort. Its binary is the
  real node's (e2e/realnode/build.sh, from the Prometheus module): Debian's package is built
  without Kubernetes service discovery ("field kubernetes_sd_configs not found");
- the model-server image under the image names the scenarios and examples use, loaded with
  `kind load`, so that their pods run the e2e model server (its env carries the faults);
- the load generator in the cluster, fed the pods' addresses by the pod runner in its
  `--kubelets-run-every-pod` mode (it runs nothing: the kubelets do), in one pod whose
  counters Prometheus scrapes (its image: e2e/kind/loadgen.Dockerfile);
- `.e2e/env`, the one file the e2e suite reads.

    python -m e2e.kind.world up --kind-bin DIR --cluster-bin DIR --node-bin DIR --name NAME
    python -m e2e.kind.world down
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from e2e.cluster.layout import Layout
from e2e.cluster.processes import StartError
from e2e.cluster.world import SLOWER_SCRAPES, scrape_interval, write_env
from e2e.realnode.node import scrape_jobs

NAMESPACE = "monitoring"
PROMETHEUS_NODE_PORT = 30090
# The images the scenarios and examples name; kind nodes hold the e2e model server under each.
MODEL_SERVER = "modelrollout-modelserver:dev"
MODEL_IMAGE_NAMES = ("registry.example/modelserver:1.0", "registry.example/scorer:1.4", "registry.example/batch:1")
LOADGEN_IMAGE = "modelrollout-e2e-loadgen:dev"
LOADGEN_METRICS_PORT = 9091


def log(message: str) -> None:
    print(f"[kind-world {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(*argv: str, input: str | None = None) -> str:
    result = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise StartError(f"{' '.join(argv[:4])} ... failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return result.stdout


class KindWorld:
    def __init__(self, layout: Layout, name: str, kind_bin: Path, cluster_bin: Path, node_bin: Path) -> None:
        self.layout, self.name = layout, name
        self.kind, self.cluster_bin, self.prometheus = kind_bin / "kind", cluster_bin, node_bin / "prometheus"

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return run(str(self.cluster_bin / "kubectl"), f"--kubeconfig={self.layout.kubeconfig}", *args, input=input)

    # -- up ------------------------------------------------------------------------------------

    def up(self) -> None:
        started = time.monotonic()
        self.layout.run.mkdir(parents=True, exist_ok=True)
        self.layout.kubeconfig.write_text(run(str(self.kind), "get", "kubeconfig", "--name", self.name))
        self.route_pod_cidrs()
        self.load_model_images()
        prometheus_url = self.start_prometheus()
        self.start_loadgen()
        write_env(self.layout, {
            "KUBECONFIG": str(self.layout.kubeconfig),
            "PROMETHEUS_URL": prometheus_url,
            "E2E_BIN": str(self.cluster_bin),
            "E2E_CLUSTER": "kind",
        })
        log(f"up in {time.monotonic() - started:.1f} s; source {self.layout.env_file}")

    def nodes(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = json.loads(self.kubectl("get", "nodes", "-o", "json"))["items"]
        return items

    def control_plane_address(self) -> str:
        return internal_ip(next(n for n in self.nodes()
                                if "node-role.kubernetes.io/control-plane" in n["metadata"].get("labels", {})))

    def route_pod_cidrs(self) -> None:
        routes = []
        for node in self.nodes():
            cidr = node["spec"]["podCIDR"]
            run("ip", "route", "replace", cidr, "via", internal_ip(node))
            routes.append(cidr)
        (self.layout.run / "kind-routes").write_text("\n".join(routes) + "\n")
        log(f"routes to pod CIDRs {', '.join(routes)}")

    def load_model_images(self) -> None:
        for image in MODEL_IMAGE_NAMES:
            run("docker", "tag", MODEL_SERVER, image)
        run(str(self.kind), "load", "docker-image", "--name", self.name, *MODEL_IMAGE_NAMES)

    def prometheus_image(self) -> str:
        version = run(str(self.prometheus), "--version").split()[2]  # "prometheus, version 3.16.0 ..."
        image = f"e2e.local/prometheus:{version}"
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode != 0:
            with tempfile.TemporaryDirectory() as context:
                shutil.copy(self.prometheus, Path(context) / "prometheus")
                (Path(context) / "Dockerfile").write_text(  # a static binary
                    "FROM scratch\nCOPY prometheus /bin/prometheus\nUSER 65534:65534\n"
                    'ENTRYPOINT ["/bin/prometheus"]\n')
                run("docker", "build", "-q", "-t", image, context)
        run(str(self.kind), "load", "docker-image", "--name", self.name, image)
        return image

    def start_prometheus(self) -> str:
        image = self.prometheus_image()
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-",
                     input=yaml.safe_dump_all(prometheus_objects(image)))
        self.kubectl("-n", NAMESPACE, "rollout", "status", "deployment/prometheus", "--timeout=180s")
        url = f"http://{self.control_plane_address()}:{PROMETHEUS_NODE_PORT}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise StartError(f"Prometheus did not answer at {url} within 60 s")
            time.sleep(1)
        log(f"Prometheus ({image}) at {url}")
        return url

    def start_loadgen(self) -> None:
        run("bash", "e2e/images/build.sh", "--with-loadgen")
        run(str(self.kind), "load", "docker-image", "--name", self.name, LOADGEN_IMAGE)
        # The pods reach the API server by the control plane's address on kind's network.
        internal = yaml.safe_load(run(str(self.kind), "get", "kubeconfig", "--internal", "--name", self.name))
        internal["clusters"][0]["cluster"]["server"] = f"https://{self.control_plane_address()}:6443"
        existed = bool(self.kubectl("-n", NAMESPACE, "get", "deployment/loadgen", "--ignore-not-found", "-o", "name"))
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-",
                     input=yaml.safe_dump_all(loadgen_objects(yaml.safe_dump(internal))))
        if existed:  # a new image under the same tag: start its pod again (a new cluster's is new)
            self.kubectl("-n", NAMESPACE, "rollout", "restart", "deployment/loadgen")
        self.kubectl("-n", NAMESPACE, "rollout", "status", "deployment/loadgen", "--timeout=180s")
        log("load generator running in the cluster")

    def down(self) -> None:
        routes = self.layout.run / "kind-routes"
        if routes.exists():
            for cidr in routes.read_text().split():
                subprocess.run(["ip", "route", "del", cidr], capture_output=True)
            routes.unlink()
        self.layout.env_file.unlink(missing_ok=True)


def internal_ip(node: dict[str, Any]) -> str:
    """The node's address on kind's Docker network."""
    return str(next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"))


def prometheus_config() -> dict[str, Any]:
    """Every node's pods, by the chart's PodMonitor relabelling (the real node's jobs, in the
    cluster), at the world's scrape interval; `scrape-NNs-*` namespaces at theirs."""
    interval = scrape_interval()
    jobs = scrape_jobs(None, None)
    for job in jobs:
        job["job_name"] = str(job["job_name"]).replace("realnode-", "")
    slower = [{"source_labels": ["namespace"], "regex": SLOWER_SCRAPES, "target_label": "__scrape_interval__",
               "replacement": "$1"},
              {"source_labels": ["namespace"], "regex": SLOWER_SCRAPES, "target_label": "__scrape_timeout__",
               "replacement": "10s"}]
    relabel = jobs[0]["relabel_configs"]
    assert isinstance(relabel, list)
    relabel.extend(slower)
    # The load generator's counters carry their own namespace labels (of the ModelDeployments).
    jobs.append({"job_name": "loadgen", "scrape_interval": "5s", "scrape_timeout": "4s",
                 "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [NAMESPACE]}}],
                 "relabel_configs": [
                     {"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"], "regex": "e2e-loadgen",
                      "action": "keep"},
                     {"source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": "metrics",
                      "action": "keep"}]})
    return {"global": {"scrape_interval": f"{interval}s", "scrape_timeout": f"{min(10, max(1, interval - 1))}s",
                       "evaluation_interval": f"{interval}s"},
            "scrape_configs": jobs}


def loadgen_objects(kubeconfig: str) -> list[dict[str, Any]]:
    """One pod: the pod runner writes the pods' addresses into a shared folder, the load
    generator reads them there and serves its counters on a port named `metrics`."""
    labels = {"app.kubernetes.io/name": "e2e-loadgen"}
    meta = {"name": "loadgen", "namespace": NAMESPACE}
    shared = [{"name": "kubeconfig", "mountPath": "/etc/e2e", "readOnly": True},
              {"name": "work", "mountPath": "/run/e2e"}]
    endpoints = "--endpoints=/run/e2e/endpoints.json"
    kubeconfig_flag = "--kubeconfig=/etc/e2e/kubeconfig"
    containers = [
        {"name": "pod-runner", "image": LOADGEN_IMAGE, "imagePullPolicy": "Never",
         "args": ["e2e.podrunner", kubeconfig_flag, endpoints, "--targets=/run/e2e/targets",
                  "--timings=/run/e2e/timings.json", "--kubelets-run-every-pod"],
         "volumeMounts": shared},
        {"name": "loadgen", "image": LOADGEN_IMAGE, "imagePullPolicy": "Never",
         "args": ["e2e.loadgen", kubeconfig_flag, endpoints, f"--metrics-port={LOADGEN_METRICS_PORT}",
                  "--metrics-host=0.0.0.0"],
         "ports": [{"name": "metrics", "containerPort": LOADGEN_METRICS_PORT}],
         "volumeMounts": shared},
    ]
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "loadgen-kubeconfig", "namespace": NAMESPACE},
         "stringData": {"kubeconfig": kubeconfig}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {**meta, "labels": labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "strategy": {"type": "Recreate"},
                  "template": {"metadata": {"labels": labels}, "spec": {
                      **ON_THE_CONTROL_PLANE, "containers": containers,
                      "volumes": [{"name": "kubeconfig", "secret": {"secretName": "loadgen-kubeconfig"}},
                                  {"name": "work", "emptyDir": {}}]}}}},
    ]


# The GPU pools' taints keep these off the workers.
ON_THE_CONTROL_PLANE: dict[str, Any] = {
    "nodeSelector": {"node-role.kubernetes.io/control-plane": ""},
    "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}],
}


def prometheus_objects(image: str) -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/name": "prometheus"}
    meta = {"name": "prometheus", "namespace": NAMESPACE}
    config = yaml.safe_dump(prometheus_config(), sort_keys=False)
    digest = hashlib.sha256(config.encode()).hexdigest()[:12]
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "e2e-prometheus"},
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "e2e-prometheus"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "e2e-prometheus"},
         "subjects": [{"kind": "ServiceAccount", **meta}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"prometheus.yml": config}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {**meta, "labels": labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "strategy": {"type": "Recreate"},
                  # A changed config rolls the pod: Prometheus reads its file only at start.
                  "template": {"metadata": {"labels": labels, "annotations": {"e2e.modelrollout.io/config": digest}},
                               "spec": {
                      "serviceAccountName": "prometheus", **ON_THE_CONTROL_PLANE,
                      "containers": [{
                          "name": "prometheus", "image": image, "imagePullPolicy": "Never",
                          "args": ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
                                   "--web.listen-address=:9090", "--storage.tsdb.retention.time=6h"],
                          "ports": [{"name": "web", "containerPort": 9090}],
                          "readinessProbe": {"httpGet": {"path": "/-/ready", "port": "web"}, "periodSeconds": 2},
                          "volumeMounts": [{"name": "config", "mountPath": "/etc/prometheus"},
                                           {"name": "data", "mountPath": "/prometheus"}]}],
                      "volumes": [{"name": "config", "configMap": {"name": "prometheus"}},
                                  {"name": "data", "emptyDir": {}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": meta,
         "spec": {"type": "NodePort", "selector": labels,
                  "ports": [{"name": "web", "port": 9090, "targetPort": "web", "nodePort": PROMETHEUS_NODE_PORT}]}},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m e2e.kind.world")
    parser.add_argument("verb", choices=["up", "down"])
    parser.add_argument("--name", default="modelrollout-e2e")
    parser.add_argument("--kind-bin", type=Path, default=Path("."))
    parser.add_argument("--cluster-bin", type=Path, default=Path("."))
    parser.add_argument("--node-bin", type=Path, default=Path("."))
    args = parser.parse_args()
    world = KindWorld(Layout.default(), args.name, args.kind_bin, args.cluster_bin, args.node_bin)
    if args.verb == "up":
        world.up()
    else:
        world.down()


if __name__ == "__main__":
    main()
