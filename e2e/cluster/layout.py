"""Where the e2e world keeps its files and which loopback ports it uses.

Everything lives under `.e2e/` in the checkout (the env file, the kubeconfig, logs, run state);
the built binaries live outside it, in the versioned cache that `build.sh` fills.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class Ports:
    """Fixed loopback ports, shifted together by `E2E_PORT_OFFSET` when they clash."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int
    prometheus: int
    loadgen: int
    metrics_adapter: int

    @classmethod
    def from_env(cls) -> Ports:
        return cls.from_offset(int(os.environ.get("E2E_PORT_OFFSET", "0")))

    @classmethod
    def from_offset(cls, offset: int) -> Ports:
        return cls(
            etcd_client=23790 + offset,
            etcd_peer=23800 + offset,
            apiserver=26443 + offset,
            controller_manager=26257 + offset,
            scheduler=26259 + offset,
            kwok=26247 + offset,
            prometheus=29090 + offset,
            loadgen=29091 + offset,
            metrics_adapter=26444 + offset,
        )

    @property
    def offset(self) -> int:
        return self.apiserver - Ports.from_offset(0).apiserver

    def all(self) -> list[int]:
        return [getattr(self, f.name) for f in dataclasses.fields(self)]


@dataclasses.dataclass(frozen=True)
class Layout:
    root: Path

    @classmethod
    def default(cls) -> Layout:
        return cls(Path(os.environ.get("E2E_DIR", REPO / ".e2e")))

    @property
    def env_file(self) -> Path:
        return self.root / "env"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def pki(self) -> Path:
        return self.run / "pki"

    @property
    def etcd_data(self) -> Path:
        return self.run / "etcd"

    @property
    def prometheus_dir(self) -> Path:
        return self.run / "prometheus"

    @property
    def scrape_targets(self) -> Path:
        """file_sd folder: one JSON file per model-server process, written by the pod runner."""
        return self.prometheus_dir / "targets"

    @property
    def metrics_adapter_config(self) -> Path:
        """prometheus-adapter's rules: which series it serves as custom metrics, and how."""
        return self.run / "prometheus-adapter.yaml"

    @property
    def endpoints(self) -> Path:
        """The pod runner's table of pods and their loopback ports, read by the load generator."""
        return self.run / "endpoints.json"

    @property
    def pod_timings(self) -> Path:
        return self.run / "pod-timings.jsonl"


WORKER_PORT_STRIDE = 1000
"""Port offset between the worlds of parallel test workers (the default world is at 0; the
harness's own tests start worlds at offsets below this)."""
def workers_root() -> Path:
    """Where parallel test workers keep their worlds, one folder each (gw0, gw1, ...): inside the
    E2E_DIR of the run that starts them, so that two runs with their own E2E_DIR stay apart."""
    return Layout.default().root / "workers"


def worker_world(worker: str) -> tuple[Layout, int] | None:
    """The folder and port offset of a pytest-xdist worker's world ("gw1" -> .e2e/workers/gw1, 2000).

    The offset adds to E2E_PORT_OFFSET, so that checkouts run with different offsets on one
    machine also keep their workers' worlds apart.
    """
    index = worker.removeprefix("gw")
    if not worker.startswith("gw") or not index.isdigit():
        return None
    base = int(os.environ.get("E2E_PORT_OFFSET", "0"))
    return Layout(workers_root() / worker), base + WORKER_PORT_STRIDE * (int(index) + 1)


UNIT_WORLD = "unit"
UNIT_PORT_OFFSET = 500
"""`make test` runs the unit tests beside the e2e workers, in a world of their own: its folder is
`workers/unit`, its ports sit between the default world's and gw0's (no two ports meet)."""


def unit_world() -> tuple[Layout, int]:
    base = int(os.environ.get("E2E_PORT_OFFSET", "0"))
    return Layout(workers_root() / UNIT_WORLD), base + UNIT_PORT_OFFSET
