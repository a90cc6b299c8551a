"""One real kubelet node beside the world's kwok nodes: containerd + runc + a CNI bridge + kubelet.

Everything lives under `$E2E_DIR/run/realnode` (containerd's root and state, kubelet's root dir,
pod logs, CNI config and IPAM state) but the unix sockets of containerd and its shims, which need
a short path (`/run/e2e-realnode-<offset>`); never in the system's /run/containerd or
/var/lib/kubelet. Listeners are on 127.0.0.1 (kubelet API and healthz, containerd's streaming
server) or unix sockets. The node registers as `real-<offset>` with `modelrollout.io/pool=real`,
and a NoSchedule taint of the same key and value (pods opt in with TOLERATION).

Order: build (e2e/realnode/build.sh) -> certificates -> bridge -> containerd -> images -> kubelet
-> Ready -> kube-proxy (nftables mode). `down` drains the node's pods, stops kube-proxy and
deletes its nft tables, stops kubelet, removes leftover containers, stops containerd and its
shims, unmounts what they left, removes the node's cgroups and bridge, and deletes the Node.

Pods on this node get addresses from `E2E_REALNODE_POD_CIDR` (default: a /20 of 10.88.0.0/13
chosen by the port offset) on a bridge named `e2erb<offset>`; the host reaches them directly
through that bridge. The pod runner of
the world must leave this node's pods alone (it runs host processes for Running pods with a
container port): until it skips non-kwok nodes, give pods here no `ports`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Literal, overload

from e2e.cluster.layout import REPO, Layout, Ports
from e2e.cluster.processes import Component, StartError, Supervisor, pid_alive

LABEL = ("modelrollout.io/pool", "real")
TAINT = ("modelrollout.io/pool", "real", "NoSchedule")
TOLERATION = {"key": TAINT[0], "operator": "Equal", "value": TAINT[1], "effect": TAINT[2]}
"""What a pod needs, besides a nodeSelector on LABEL, to run on the real node."""
CONTAINERD_SOURCE = "E2E_REALNODE_CONTAINERD"
"""`system` runs Debian's /usr/bin/containerd (1.6) instead of the built 2.x, to compare. 1.6 cannot
move its shim sockets and network namespaces off /run/containerd/s and /var/run/netns: those
(empty) folders stay behind, and are shared with Docker's own containerd, so they are not removed."""
GPU_RESOURCE, GPUS = "nvidia.com/gpu", 2
"""Advertised in capacity (no device behind them), so that GPU pools' scheduling runs here too."""
POD_CIDR = "E2E_REALNODE_POD_CIDR"
IMAGES = ("modelrollout-modelserver:dev", "modelrollout:dev")
"""Docker images copied into containerd (pods here must not pull: no registry is reachable)."""
KUBE_PROXY = "E2E_REALNODE_KUBE_PROXY"
KUBERNETES_SERVICE_IP = "10.96.0.1"  # the first address of the world's service CIDR
CNI_BIN = Path("/usr/lib/cni")
RUNC = "/usr/sbin/runc"


def scrape_jobs(kubeconfig: Path | None, node: str | None) -> list[dict[str, object]]:
    """The node's pods by Kubernetes service discovery and pod IP, with the
    relabelling of the chart's PodMonitors (model servers: modelrollout.io/* labels, port `http`;
    the operator: app.kubernetes.io/name=modelrollout, port `metrics`). Only this node's pods are
    listed (a field selector): kwok's stay with the world's Prometheus and the pod runner's files.
    Without a kubeconfig, Prometheus runs in the cluster (kind); without a node, every pod is listed."""
    discovery: list[dict[str, object]] = [{"role": "pod"}]
    if kubeconfig is not None:
        discovery[0]["kubeconfig_file"] = str(kubeconfig)
    if node is not None:
        discovery[0]["selectors"] = [{"role": "pod", "field": f"spec.nodeName={node}"}]
    running = {"source_labels": ["__meta_kubernetes_pod_phase"], "regex": "Running", "action": "keep"}
    model_servers = [
        running,
        *({"source_labels": [f"__meta_kubernetes_pod_labelpresent_modelrollout_io_{key}"], "regex": "true",
           "action": "keep"} for key in ("name", "track", "revision")),
        {"source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": "http", "action": "keep"},
        *({"source_labels": [f"__meta_kubernetes_pod_label_modelrollout_io_{key}"], "target_label": target}
          for key, target in (("name", "modeldeployment"), ("track", "track"), ("revision", "revision"))),
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
    ]
    operator = [
        running,
        {"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"], "regex": "modelrollout",
         "action": "keep"},
        {"source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": "metrics", "action": "keep"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
    ]
    return [{"job_name": job, "kubernetes_sd_configs": discovery, "relabel_configs": relabel}
            for job, relabel in (("realnode-model-servers", model_servers), ("realnode-operator", operator))]


def log(message: str) -> None:
    print(f"[realnode {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclasses.dataclass(frozen=True)
class NodePorts:
    """Loopback ports of the node, beside the world's and shifted by the same offset."""

    kubelet: int
    kubelet_healthz: int
    proxy_metrics: int
    proxy_healthz: int
    prometheus: int

    @classmethod
    def from_offset(cls, offset: int) -> NodePorts:
        return cls(kubelet=26250 + offset, kubelet_healthz=26251 + offset, proxy_metrics=26252 + offset,
                   proxy_healthz=26253 + offset, prometheus=26254 + offset)


def node_name(offset: int) -> str:
    return f"real-{offset}"


def default_pod_cidr(offset: int) -> str:
    """A /20 of 10.88.0.0/13 per world (offsets step by 100 or 1000), so that parallel workers'
    real nodes never route the same addresses to two bridges."""
    block = (offset // 100) % 128
    return str(ipaddress.ip_network("10.88.0.0/13").network_address + block * 4096) + "/20"


@overload
def _run(*argv: str, check: bool = ..., input: bytes | None = ..., timeout: float = ...,
         binary: Literal[False] = ...) -> str: ...
@overload
def _run(*argv: str, check: bool = ..., input: bytes | None = ..., timeout: float = ...,
         binary: Literal[True]) -> bytes: ...
def _run(*argv: str, check: bool = True, input: bytes | None = None, timeout: float = 600,
         binary: bool = False) -> str | bytes:
    result = subprocess.run(list(argv), capture_output=True, input=input, timeout=timeout)
    if check and result.returncode != 0:
        raise StartError(f"{' '.join(argv)} failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout if binary else result.stdout.decode(errors="replace")


def _kube_proxy_in_host_network() -> bool:
    """Whether a kube-proxy runs in this host's network namespace (kind's run in their nodes')."""
    own = os.readlink("/proc/self/ns/net")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (proc / "comm").read_text().strip() == "kube-proxy" and os.readlink(proc / "ns" / "net") == own:
                return True
    return False


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


def build() -> Path:
    """Runs the (idempotent) build; returns the bin folder."""
    result = subprocess.run(["bash", str(REPO / "e2e/realnode/build.sh")], stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise StartError("building the real node's binaries failed (see the lines above)")
    return Path(result.stdout.strip().splitlines()[-1])


class RealNode:
    def __init__(self, layout: Layout | None = None, offset: int | None = None) -> None:
        self.layout = layout or Layout.default()
        self.offset = int(os.environ.get("E2E_PORT_OFFSET", "0")) if offset is None else offset
        self.ports = NodePorts.from_offset(self.offset)
        self.world_ports = Ports.from_offset(self.offset)
        self.name = node_name(self.offset)
        self.dir = self.layout.run / "realnode"
        self.supervisor = Supervisor(self.dir, self.layout.logs)
        self.bridge = f"e2erb{self.offset}"[:15]
        self.pod_cidr = ipaddress.ip_network(os.environ.get(POD_CIDR) or default_pod_cidr(self.offset))
        self.gateway = next(self.pod_cidr.hosts())
        self.cgroup_root = f"/e2e-realnode-{self.offset}"

    # -- paths -----------------------------------------------------------------------------------

    @property
    def sockets(self) -> Path:
        """containerd's and its shims' unix sockets: a short path of their own, since a socket path
        has at most 107 bytes and containerd refuses a shim socket folder longer than 42."""
        return Path(f"/run/e2e-realnode-{self.offset}")

    @property
    def socket(self) -> Path:
        return self.sockets / "containerd.sock"

    @property
    def certs(self) -> Path:
        return self.dir / "pki"

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubelet.kubeconfig"

    @property
    def proxy_kubeconfig(self) -> Path:
        return self.dir / "kube-proxy.kubeconfig"

    def system_containerd(self) -> bool:
        """Debian's containerd if asked at `up` (remembered for `down`), else the built one."""
        mode = self.dir / "containerd.source"
        if self.supervisor.pid_of("realnode-containerd") is not None and mode.exists():
            return mode.read_text().strip() == "system"
        return os.environ.get(CONTAINERD_SOURCE, "built") == "system"

    # -- state -----------------------------------------------------------------------------------

    def kubectl(self, bin_dir: Path, *args: str, check: bool = True) -> str:
        return _run(str(bin_dir / "kubectl"), f"--kubeconfig={self.layout.kubeconfig}", *args, check=check,
                    timeout=120)

    def ctr(self, bin_dir: Path, *args: str, input: bytes | None = None, check: bool = True) -> str:
        ctr = "/usr/bin/ctr" if self.system_containerd() else str(bin_dir / "ctr")
        return _run(ctr, f"--address={self.socket}", "--namespace=k8s.io", *args, input=input, check=check)

    def ready(self, world_bin: Path) -> bool:
        with contextlib.suppress(StartError):
            node = json.loads(self.kubectl(world_bin, "get", "node", self.name, "-o", "json"))
            return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", []))
        return False

    # -- up --------------------------------------------------------------------------------------

    def up(self) -> None:
        world_bin = self._world_bin()
        if self.supervisor.pid_of("realnode-kubelet") and self.ready(world_bin):
            log(f"{self.name} already up")
            return
        self.down(quiet=True)
        started = time.monotonic()
        try:
            bin_dir = build()
            log(f"binaries ready ({time.monotonic() - started:.1f} s): {bin_dir}")
            self._start(bin_dir, world_bin)
        except BaseException:
            log("start failed; stopping what was started")
            self.down(quiet=True)
            raise
        log(f"{self.name} Ready in {time.monotonic() - started:.1f} s")

    def _world_bin(self) -> Path:
        env = self.layout.env_file
        if not env.exists():
            raise StartError(f"no world at {self.layout.root}: run `python -m e2e.cluster up` first")
        for line in env.read_text().splitlines():
            if line.startswith("export E2E_BIN="):
                return Path(line.split("=", 1)[1].strip("'\""))
        raise StartError(f"{env} names no E2E_BIN")

    def _start(self, bin_dir: Path, world_bin: Path) -> None:
        for sub in ("containerd", "kubelet", "pod-logs", "cni/net.d", "cni/ipam"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._certificates()
        self._bridge()
        self._host_routes()
        self._cni_config()
        sup = self.supervisor
        (self.dir / "containerd.source").write_text("system\n" if self.system_containerd() else "built\n")
        sup.start(self._containerd(bin_dir))
        sup.wait_until("realnode-containerd", self.socket.exists, 60, what="listening on its socket")
        sup.wait_until("realnode-containerd", lambda: bool(self.ctr(bin_dir, "version")), 30, what="answering")
        self._import_images(bin_dir)
        for hierarchy in self._cgroup_hierarchies():  # kubelet wants its cgroup root to exist in each
            (hierarchy / self.cgroup_root.lstrip("/")).mkdir(exist_ok=True)
        sup.start(self._kubelet(bin_dir))
        sup.wait_until("realnode-kubelet", lambda: self.ready(world_bin), 120, what=f"registering {self.name} Ready")
        self._advertise_gpus(world_bin)
        sup.start(self._prometheus(bin_dir))
        sup.wait_until("realnode-prometheus", lambda: _http_ok(f"{self.prometheus_url}/-/ready"), 60)
        if self.with_proxy():
            (self.dir / "kube-proxy.tables").touch()  # ours to delete at `down`
            sup.start(self._kube_proxy(bin_dir))
            sup.wait_until("realnode-kube-proxy", lambda: _http_ok(
                f"http://127.0.0.1:{self.ports.proxy_healthz}/healthz"), 60)

    def _certificates(self) -> None:
        """Client certificates for kubelet (in system:nodes, the Node authorizer's subject) and kube-proxy
        (system:kube-proxy, bound to system:node-proxier by default RBAC), and kubelet's serving one."""
        pki, ca = self.certs, self.layout.pki
        pki.mkdir(parents=True, exist_ok=True)
        client = "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n"
        sign = [("kubelet-client", f"/O=system:nodes/CN=system:node:{self.name}", client),
                ("kube-proxy-client", "/CN=system:kube-proxy", client),
                ("kubelet-server", f"/CN={self.name}",
                 f"subjectAltName=IP:127.0.0.1,IP:{self.gateway},DNS:{self.name},DNS:localhost\n"
                 "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n")]
        for name, subject, ext in sign:
            crt = pki / f"{name}.crt"
            # A world made afresh has a new CA: certificates of the old one are made again.
            if crt.exists() and not _run("openssl", "verify", "-CAfile", str(ca / "ca.crt"), str(crt), check=False):
                crt.unlink()
            if crt.exists():
                continue
            (pki / f"{name}.ext").write_text(ext)
            _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(pki / f"{name}.key"),
                 "-out", str(pki / f"{name}.csr"), "-subj", subject)
            _run("openssl", "x509", "-req", "-in", str(pki / f"{name}.csr"), "-CA", str(ca / "ca.crt"),
                 "-CAkey", str(ca / "ca.key"), "-CAcreateserial", "-CAserial", str(pki / "ca.srl"),
                 "-days", "3650", "-extfile", str(pki / f"{name}.ext"), "-out", str(crt))
        for user, path in (("kubelet", self.kubeconfig), ("kube-proxy", self.proxy_kubeconfig)):
            path.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: world
  cluster: {{server: "https://127.0.0.1:{self.world_ports.apiserver}", certificate-authority: "{ca / 'ca.crt'}"}}
users:
- name: {user}
  user: {{client-certificate: "{pki / f'{user}-client.crt'}", client-key: "{pki / f'{user}-client.key'}"}}
contexts:
- name: {user}
  context: {{cluster: world, user: {user}}}
current-context: {user}
""")
            path.chmod(0o600)

    def _bridge(self) -> None:
        """Made here rather than by the bridge plugin, so the node has its address (the gateway's)
        before the first pod, and `down` knows what to delete."""
        if _run("ip", "link", "show", self.bridge, check=False):
            return
        _run("ip", "link", "add", "name", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{self.gateway}/{self.pod_cidr.prefixlen}", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")

    @property
    def nat_table(self) -> str:
        return f"e2e-realnode-{self.offset}"

    def from_pods(self, port: int) -> str:
        """A loopback listener of the host (the world's Prometheus, or this node's) as this node's
        pods reach it: the bridge's address, mapped by `_host_routes`."""
        return f"http://{self.gateway}:{port}"

    @property
    def prometheus_url(self) -> str:
        """The node's Prometheus, from the host."""
        return f"http://127.0.0.1:{self.ports.prometheus}"

    def _host_routes(self) -> None:
        """Pods reach the world's loopback-only API server and Prometheus.

        The world's API server advertises 127.0.0.1, so kube-proxy has no endpoint to send the
        `kubernetes` Service (10.96.0.1:443, in the serving certificate) to; this node does what
        kube-proxy would do for it, and for the world's and the node's Prometheus on the bridge's
        address, with a DNAT to the
        loopback listener. route_localnet lets the bridge carry 127.0.0.1 both ways; it goes with
        the bridge at `down`, as the table does.
        """
        if shutil.which("nft") is None:
            log("no nft (apt nftables): pods here cannot reach the API server or Prometheus")
            return
        Path(f"/proc/sys/net/ipv4/conf/{self.bridge}/route_localnet").write_text("1\n")
        _run("nft", "delete", "table", "ip", self.nat_table, check=False)
        w, n = self.world_ports, self.ports.prometheus
        rules = f"""table ip {self.nat_table} {{
  chain prerouting {{
    type nat hook prerouting priority dstnat - 5; policy accept;
    iifname "{self.bridge}" ip daddr {KUBERNETES_SERVICE_IP} tcp dport 443 dnat to 127.0.0.1:{w.apiserver}
    iifname "{self.bridge}" ip daddr {self.gateway} tcp dport {w.prometheus} dnat to 127.0.0.1:{w.prometheus}
    iifname "{self.bridge}" ip daddr {self.gateway} tcp dport {n} dnat to 127.0.0.1:{n}
  }}
}}
"""
        _run("nft", "-f", "-", input=rules.encode())
        self._forwarding(allow=True)

    def _forwarding(self, allow: bool) -> None:
        """Pods talk to each other across the bridge (the operator's smoke test, a Service's
        backends). With Docker running, the host's FORWARD policy is DROP and br_netfilter sends
        bridged traffic through it; an ACCEPT for this bridge only, taken out at `down`."""
        if shutil.which("iptables") is None:
            return
        rule = ["FORWARD", "-i", self.bridge, "-o", self.bridge, "-j", "ACCEPT"]
        present = subprocess.run(["iptables", "-C", *rule], capture_output=True).returncode == 0
        if allow and not present:
            _run("iptables", "-I", *rule[:1], "1", *rule[1:])
        elif not allow:
            while subprocess.run(["iptables", "-D", *rule], capture_output=True).returncode == 0:
                pass

    def _cni_config(self) -> None:
        # No ipMasq: pods only talk to the host, and no iptables rules are left to clean up.
        config = {"cniVersion": "1.0.0", "name": "e2e-realnode", "plugins": [{
            "type": "bridge", "bridge": self.bridge, "isGateway": True, "ipMasq": False, "hairpinMode": True,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": str(self.pod_cidr), "gateway": str(self.gateway)}]],
                     "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(self.dir / "cni/ipam")},
        }]}
        (self.dir / "cni/net.d/10-e2e-realnode.conflist").write_text(json.dumps(config, indent=1))

    def _containerd(self, bin_dir: Path) -> Component:
        d = self.dir / "containerd"
        config = d / "config.toml"
        common = f"""root = "{d / 'root'}"
state = "{d / 'state'}"
[grpc]
  address = "{self.socket}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d / 'opt'}"
"""
        # runc's state beside containerd's (its default is the system's /run/containerd/runc).
        runc = f"""runtime_type = "io.containerd.runc.v2"
    [{{section}}.containerd.runtimes.runc.options]
      BinaryName = "{RUNC}"
      Root = "{d / 'state' / 'runc'}"
      SystemdCgroup = false
"""
        # restrict_oom_score_adj: this host withholds CAP_SYS_RESOURCE even from root, so runc
        # cannot lower a sandbox's oom_score_adj (-998) and fails with "can't get final child's PID".
        if self.system_containerd():
            cri = 'plugins."io.containerd.grpc.v1.cri"'
            config.write_text(f"""version = 2
{common}
[{cri}]
  restrict_oom_score_adj = true
  sandbox_image = "{self._pause_ref(bin_dir)}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
  [{cri}.containerd.runtimes.runc]
    {runc.format(section=cri)}
  [{cri}.cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{self.dir / 'cni/net.d'}"
""")
            argv = ["/usr/bin/containerd"]
        else:
            rt, images = 'plugins."io.containerd.cri.v1.runtime"', 'plugins."io.containerd.cri.v1.images"'
            # NRI is on by default in 2.x and would listen on the system's /var/run/nri/nri.sock; shim
            # sockets and network namespaces would go to /run/containerd/s and /var/run/netns.
            config.write_text(f"""version = 3
{common}
[plugins."io.containerd.nri.v1.nri"]
  disable = true
[plugins."io.containerd.shim.v1.manager"]
  socket_dir = "{self.sockets / 's'}"
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
[{images}]
  snapshotter = "overlayfs"
  [{images}.pinned_images]
    sandbox = "{self._pause_ref(bin_dir)}"
[{rt}]
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [{rt}.containerd]
    default_runtime_name = "runc"
  [{rt}.containerd.runtimes.runc]
    {runc.format(section=rt)}
  [{rt}.cni]
    bin_dirs = ["{CNI_BIN}"]
    conf_dir = "{self.dir / 'cni/net.d'}"
""")
            argv = [str(bin_dir / "containerd")]
        # containerd finds its shim on PATH: the built one must get its own, not Debian's 1.6 shim.
        path = f"{os.environ.get('PATH', '/usr/bin:/bin')}:/usr/sbin:/sbin"
        if not self.system_containerd():
            path = f"{bin_dir}:{path}"
        return Component("realnode-containerd", [*argv, f"--config={config}", "--log-level=info"],
                         env={"PATH": path})

    @staticmethod
    def _pause_ref(bin_dir: Path) -> str:
        return f"registry.k8s.io/pause:{(bin_dir / 'pause.version').read_text().strip()}"

    def _import_images(self, bin_dir: Path) -> None:
        tarball = bin_dir / f"pause-{self._pause_ref(bin_dir).rsplit(':', 1)[1]}.tar"
        self.ctr(bin_dir, "images", "import", str(tarball))
        for image in IMAGES:
            if not self.import_image(image, bin_dir):
                log(f"{image} is not in Docker (run `make images`); pods here cannot use it")

    def import_image(self, image: str, bin_dir: Path | None = None) -> bool:
        """Copies a Docker image into the node's containerd, as a registry pull would; False if
        Docker has no such image."""
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode != 0:
            return False
        bin_dir = bin_dir or self._bin_dir()
        if bin_dir is None:
            raise StartError("the real node's binaries are not built")
        started = time.monotonic()
        self.ctr(bin_dir, "images", "import", "-", input=_run("docker", "save", image, binary=True))
        log(f"imported {image} ({time.monotonic() - started:.1f} s)")
        return True

    def _advertise_gpus(self, world_bin: Path) -> None:
        """GPUS units of GPU_RESOURCE in the node's capacity, as a device plugin would register
        them (the kubelet copies an extended resource it does not manage into allocatable)."""
        path = "/status/capacity/" + GPU_RESOURCE.replace("/", "~1")
        self.kubectl(world_bin, "patch", "node", self.name, "--subresource=status", "--type=json",
                     "-p", json.dumps([{"op": "add", "path": path, "value": str(GPUS)}]))

        def allocatable() -> bool:
            node = json.loads(self.kubectl(world_bin, "get", "node", self.name, "-o", "json"))
            return bool(node["status"].get("allocatable", {}).get(GPU_RESOURCE) == str(GPUS))
        self.supervisor.wait_until("realnode-kubelet", allocatable, 60, what=f"allocatable {GPU_RESOURCE}: {GPUS}")

    def kill_container(self, container_id: str) -> None:
        """SIGKILL a container's process through containerd (`containerd://<id>` from the pod's
        status), as the runtime or an OOM kill would end it; the kubelet restarts it."""
        bin_dir = self._bin_dir()
        if bin_dir is None:
            raise StartError("the real node's binaries are not built")
        self.ctr(bin_dir, "tasks", "kill", "--signal", "SIGKILL", container_id.removeprefix("containerd://"))

    def _kubelet(self, bin_dir: Path) -> Component:
        config = self.dir / "kubelet-config.yaml"
        pki = self.certs
        config.write_text(json.dumps({
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            "failCgroupV1": False,  # this host is cgroup v1; kubelet >= 1.35 refuses it otherwise
            "cgroupDriver": "cgroupfs",
            # Pods' QoS cgroups under a root of this node's own, which `down` removes.
            "cgroupsPerQOS": True, "cgroupRoot": self.cgroup_root, "enforceNodeAllocatable": ["pods"],
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "address": "127.0.0.1", "port": self.ports.kubelet, "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1", "healthzPort": self.ports.kubelet_healthz,
            "tlsCertFile": str(pki / "kubelet-server.crt"), "tlsPrivateKeyFile": str(pki / "kubelet-server.key"),
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                               "x509": {"clientCAFile": str(self.layout.pki / "ca.crt")}},
            "authorization": {"mode": "Webhook"},
            "podLogsDir": str(self.dir / "pod-logs"),
            "failSwapOn": False, "maxPods": 20, "serializeImagePulls": False,
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
            "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
            "clusterDomain": "cluster.local", "resolvConf": "/etc/resolv.conf",
            # Only pods that ask for this node land here: the other scenarios' pods stay on kwok's
            # nodes, where the pod runner plays their containers.
            "registerWithTaints": [{"key": TAINT[0], "value": TAINT[1], "effect": TAINT[2]}],
        }, indent=1))
        return Component("realnode-kubelet", [
            str(bin_dir / "kubelet"), f"--config={config}", f"--kubeconfig={self.kubeconfig}",
            f"--root-dir={self.dir / 'kubelet'}", f"--cert-dir={self.certs}",
            f"--hostname-override={self.name}", f"--node-ip={self.gateway}",
            f"--node-labels={LABEL[0]}={LABEL[1]}", "--v=1",
        ], ports=[self.ports.kubelet, self.ports.kubelet_healthz])

    def _prometheus(self, bin_dir: Path) -> Component:
        """Prometheus built from its Go module (Debian's, the world's, is built without Kubernetes
        service discovery), scraping this node's pods by pod IP."""
        from e2e.cluster.world import scrape_interval  # world imports this module

        d = self.dir / "prometheus"
        d.mkdir(parents=True, exist_ok=True)
        config = d / "prometheus.yml"
        interval = scrape_interval()
        config.write_text(json.dumps({
            "global": {"scrape_interval": f"{interval}s", "scrape_timeout": f"{min(10, max(1, interval - 1))}s",
                       "evaluation_interval": f"{interval}s"},
            "scrape_configs": scrape_jobs(self.layout.kubeconfig, self.name),
        }, indent=1))
        return Component("realnode-prometheus", [
            str(bin_dir / "prometheus"), f"--config.file={config}", f"--storage.tsdb.path={d / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.ports.prometheus}", "--storage.tsdb.retention.time=6h",
        ], ports=[self.ports.prometheus])

    def with_proxy(self) -> bool:
        """kube-proxy runs unless E2E_REALNODE_KUBE_PROXY=0, `nft` is missing (apt nftables), or
        another world's real node has one: every kube-proxy on a host writes the same nft tables."""
        if os.environ.get(KUBE_PROXY, "1") == "0" or shutil.which("nft") is None:
            return False
        if _run("nft", "list", "table", "ip", "kube-proxy", check=False):
            if _kube_proxy_in_host_network():
                log("another kube-proxy owns the host's nft table `ip kube-proxy`: this node runs without one")
                return False
            log("deleting the nft tables of a kube-proxy no longer running (a node killed before its `down`)")
            for family in ("ip", "ip6"):
                _run("nft", "delete", "table", family, "kube-proxy", check=False)
        return True

    def _kube_proxy(self, bin_dir: Path) -> Component:
        """kube-proxy in nftables mode: its rules live in tables of its own (`ip kube-proxy`,
        `ip6 kube-proxy`), apart from Docker's iptables, and `down` deletes them whole."""
        config = self.dir / "kube-proxy-config.yaml"
        config.write_text(json.dumps({
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
            "mode": "nftables", "hostnameOverride": self.name,
            "clientConnection": {"kubeconfig": str(self.proxy_kubeconfig)},
            "metricsBindAddress": f"127.0.0.1:{self.ports.proxy_metrics}",
            "healthzBindAddress": f"127.0.0.1:{self.ports.proxy_healthz}",
            "clusterCIDR": str(self.pod_cidr), "detectLocalMode": "ClusterCIDR",
            # NodePorts on the bridge only, not on the host's real interfaces.
            "nodePortAddresses": [f"{self.gateway}/32"],
            # Zeros leave the host's conntrack sysctls as they are.
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        }, indent=1))
        return Component("realnode-kube-proxy", [str(bin_dir / "kube-proxy"), f"--config={config}", "--v=1"],
                         ports=[self.ports.proxy_metrics, self.ports.proxy_healthz])

    # -- down ------------------------------------------------------------------------------------

    def down(self, quiet: bool = False) -> None:
        sup = self.supervisor
        bin_dir = self._bin_dir()
        world_bin = None
        with contextlib.suppress(StartError):
            world_bin = self._world_bin()
        if world_bin is not None and sup.pid_of("realnode-kubelet") is not None:
            self._drain(world_bin)
        if not quiet and sup.pid_of("realnode-kube-proxy") is not None:
            log("stopping kube-proxy")
        sup.stop("realnode-kube-proxy")
        if (self.dir / "kube-proxy.tables").exists():
            for family in ("ip", "ip6"):
                _run("nft", "delete", "table", family, "kube-proxy", check=False)
            (self.dir / "kube-proxy.tables").unlink()
        sup.stop("realnode-prometheus")
        if not quiet and sup.pid_of("realnode-kubelet") is not None:
            log("stopping kubelet")
        sup.stop("realnode-kubelet")
        if bin_dir is not None and sup.pid_of("realnode-containerd") is not None:
            self._remove_containers(bin_dir)
        if not quiet and sup.pid_of("realnode-containerd") is not None:
            log("stopping containerd")
        sup.stop("realnode-containerd")
        self._kill_shims()
        _run("rm", "-rf", str(self.sockets), check=False)
        self._unmount()
        self._remove_cgroups()
        _run("nft", "delete", "table", "ip", self.nat_table, check=False)
        self._forwarding(allow=False)
        _run("ip", "link", "del", self.bridge, check=False)
        for sub in ("containerd/state", "containerd/root", "kubelet", "cni/ipam", "prometheus"):
            _run("rm", "-rf", str(self.dir / sub), check=False)
        if world_bin is not None:
            with contextlib.suppress(StartError):
                self.kubectl(world_bin, "delete", "node", self.name, "--ignore-not-found", "--wait=false")
        if not quiet:
            log("down")

    def _bin_dir(self) -> Path | None:
        with contextlib.suppress(Exception):
            argv = Path(f"/proc/{self.supervisor.pid_of('realnode-kubelet')}/cmdline").read_bytes().split(b"\0")
            return Path(argv[0].decode()).parent
        built = sorted((Path(os.environ.get("MODELROLLOUT_CACHE", Path.home() / ".cache/modelrollout")) / "bin")
                       .glob("realnode-*"))
        return built[-1] if built else None

    def _drain(self, world_bin: Path) -> None:
        """Deletes the node's pods while kubelet runs, so it tears their sandboxes (and CNI) down."""
        with contextlib.suppress(StartError):
            self.kubectl(world_bin, "delete", "pods", "--all-namespaces", f"--field-selector=spec.nodeName={self.name}",
                         "--grace-period=5", "--timeout=40s")

    def _remove_containers(self, bin_dir: Path) -> None:
        for task in self.ctr(bin_dir, "tasks", "ls", "-q", check=False).split():
            self.ctr(bin_dir, "tasks", "kill", "-s", "SIGKILL", task, check=False)
        time.sleep(0.5)
        for task in self.ctr(bin_dir, "tasks", "ls", "-q", check=False).split():
            self.ctr(bin_dir, "tasks", "delete", "-f", task, check=False)
        for container in self.ctr(bin_dir, "containers", "ls", "-q", check=False).split():
            self.ctr(bin_dir, "containers", "delete", container, check=False)

    def _kill_shims(self) -> None:
        """Shims detach from containerd's process group; find ours by the socket they were given."""
        needle = str(self.socket).encode()
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                argv = (proc / "cmdline").read_bytes().split(b"\0")
                if b"containerd-shim" in argv[0] and needle in argv:
                    pid = int(proc.name)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    deadline = time.monotonic() + 5
                    while pid_alive(pid) and time.monotonic() < deadline:
                        time.sleep(0.05)

    @staticmethod
    def _cgroup_hierarchies(unified: bool = False) -> list[Path]:
        """The cgroup v1 hierarchies (cpu, memory, ..., name=systemd), and the hybrid host's unified
        one if asked (runc mirrors each cgroup there too)."""
        kinds = {"cgroup", "cgroup2"} if unified else {"cgroup"}
        found = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            before, _, after = line.partition(" - ")
            if after.split()[0] in kinds:
                found.append(Path(before.split()[4]))
        return found

    def _remove_cgroups(self) -> None:
        """The QoS and pod cgroups kubelet made under our root, deepest first (rmdir: empty ones only)."""
        for hierarchy in self._cgroup_hierarchies(unified=True):
            top = hierarchy / self.cgroup_root.lstrip("/")
            if not top.is_dir():
                continue
            for folder in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                with contextlib.suppress(OSError):
                    folder.rmdir()
            with contextlib.suppress(OSError):
                top.rmdir()

    def _unmount(self) -> None:
        """Overlay rootfs, sandbox /dev/shm and kubelet volume mounts under our folder, innermost first."""
        prefix = str(self.dir) + "/"
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        for point in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
            _run("umount", "-l", point, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.realnode")
    parser.add_argument("verb", choices=["up", "down", "status", "build"])
    args = parser.parse_args(argv)
    node = RealNode()
    try:
        if args.verb == "up":
            node.up()
        elif args.verb == "down":
            node.down()
        elif args.verb == "build":
            print(build())
        else:
            ready = node.ready(node._world_bin())
            print(f"{node.name}: {'Ready' if ready else 'not ready'}; running:", ", ".join(node.supervisor.running()))
            return 0 if ready else 1
    except StartError as error:
        print(f"realnode {args.verb} failed: {error}", file=sys.stderr)
        return 1
    return 0
