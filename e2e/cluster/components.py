"""Command lines of the control-plane components, every listener bound to 127.0.0.1.

The flags follow envtest's and kwokctl's binary runtimes: one CA, an admin client certificate
shared by the components, a service-account key pair, RBAC, and the controllers that matter
to rollouts (deployment, replicaset, garbage collector, namespace, endpointslice, service
accounts, horizontal pod autoscaler) left on by the controller-manager's defaults. The API server
forwards the custom metrics API to prometheus-adapter as a front proxy, as kubeadm configures it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from e2e.cluster.layout import REPO, Layout, Ports
from e2e.cluster.pki import FRONT_PROXY_CLIENT
from e2e.cluster.processes import Component

SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.0.0.0/16"


def etcd(bin_dir: Path, layout: Layout, ports: Ports) -> Component:
    client = f"http://127.0.0.1:{ports.etcd_client}"
    peer = f"http://127.0.0.1:{ports.etcd_peer}"
    return Component("etcd", [
        str(bin_dir / "etcd"), "--name=e2e", f"--data-dir={layout.etcd_data}",
        f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=e2e={peer}", "--unsafe-no-fsync=true",
        "--quota-backend-bytes=4294967296", "--auto-compaction-retention=1", "--log-level=warn",
    ], ports=[ports.etcd_client, ports.etcd_peer])


def apiserver(bin_dir: Path, layout: Layout, ports: Ports) -> Component:
    pki = layout.pki
    return Component("kube-apiserver", [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
        "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={ports.apiserver}",
        f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=Node,RBAC", "--allow-privileged=true",
        f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
        f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
        "--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
        f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
        "--profiling=false", "--v=1",
    ], ports=[ports.apiserver])


def _component_auth(layout: Layout) -> list[str]:
    kubeconfig = str(layout.kubeconfig)
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
        "--bind-address=127.0.0.1", "--leader-elect=false", "--profiling=false",
    ]


def controller_manager(bin_dir: Path, layout: Layout, ports: Ports) -> Component:
    pki = layout.pki
    return Component("kube-controller-manager", [
        str(bin_dir / "kube-controller-manager"), *_component_auth(layout),
        f"--secure-port={ports.controller_manager}",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki / 'sa.key'}",
        f"--root-ca-file={pki / 'ca.crt'}",
        f"--cluster-signing-cert-file={pki / 'ca.crt'}",
        f"--cluster-signing-key-file={pki / 'ca.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        # Fast reaction to deleted pods and namespaces keeps the tests quick.
        "--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10",
        "--concurrent-gc-syncs=20", "--v=1",
    ], ports=[ports.controller_manager])


def scheduler(bin_dir: Path, layout: Layout, ports: Ports) -> Component:
    return Component("kube-scheduler", [
        str(bin_dir / "kube-scheduler"), *_component_auth(layout), f"--secure-port={ports.scheduler}", "--v=1",
    ], ports=[ports.scheduler])


def kwok(bin_dir: Path, layout: Layout, ports: Ports, config: Path) -> Component:
    return Component("kwok", [
        str(bin_dir / "kwok"), f"--kubeconfig={layout.kubeconfig}",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        f"--server-address=127.0.0.1:{ports.kwok}", f"--cidr={POD_CIDR}", "--node-ip=10.1.0.1",
        f"--config={config}",
    ], ports=[ports.kwok])


def prometheus(layout: Layout, ports: Ports, config: Path) -> Component:
    return Component("prometheus", [
        "prometheus", f"--config.file={config}",
        f"--web.listen-address=127.0.0.1:{ports.prometheus}",
        f"--storage.tsdb.path={layout.prometheus_dir / 'data'}",
        "--storage.tsdb.retention.time=1d", "--web.enable-lifecycle", "--log.level=warn",
    ], ports=[ports.prometheus])


def metrics_adapter(bin_dir: Path, layout: Layout, ports: Ports) -> Component:
    """prometheus-adapter, serving custom.metrics.k8s.io from the world's Prometheus.

    Series are listed again every 15 s (default 10 min), so a new model server's metrics are
    served within a scrape or two of its first requests.
    """
    pki = layout.pki
    return Component("prometheus-adapter", [
        str(bin_dir / "prometheus-adapter"), f"--lister-kubeconfig={layout.kubeconfig}",
        f"--authentication-kubeconfig={layout.kubeconfig}", f"--authorization-kubeconfig={layout.kubeconfig}",
        "--bind-address=127.0.0.1", f"--secure-port={ports.metrics_adapter}",
        f"--tls-cert-file={pki / 'adapter.crt'}", f"--tls-private-key-file={pki / 'adapter.key'}",
        f"--prometheus-url=http://127.0.0.1:{ports.prometheus}", f"--config={layout.metrics_adapter_config}",
        "--metrics-relist-interval=15s", "--metrics-max-age=5m", "--v=1",
    ], ports=[ports.metrics_adapter])


def pod_runner(layout: Layout) -> Component:
    return Component("pod-runner", [
        sys.executable, "-m", "e2e.podrunner", f"--kubeconfig={layout.kubeconfig}",
        f"--endpoints={layout.endpoints}", f"--targets={layout.scrape_targets}",
        f"--timings={layout.pod_timings}",
    ], cwd=REPO)


def load_generator(layout: Layout, ports: Ports) -> Component:
    return Component("loadgen", [
        sys.executable, "-m", "e2e.loadgen", f"--kubeconfig={layout.kubeconfig}",
        f"--endpoints={layout.endpoints}", f"--metrics-port={ports.loadgen}",
    ], ports=[ports.loadgen], cwd=REPO)
