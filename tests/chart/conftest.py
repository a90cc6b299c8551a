"""Fixtures of the chart tests: `chart` renders and lints charts/modelrollout with the real helm.

helm is the e2e world's own build (e2e/cluster/build.sh, idempotent and instant when cached),
so rendering needs no running world; only the server-side checks do. That helm is built without
Helm's version ldflags and would assume Kubernetes v1.20, so every call names the world's
version (e2e/cluster/versions.env) explicitly.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.cluster import world as local_world
from e2e.cluster.layout import REPO

CHART = REPO / "charts" / "modelrollout"


def kube_version() -> str:
    for line in (REPO / "e2e" / "cluster" / "versions.env").read_text().splitlines():
        if line.startswith("K8S_VERSION="):
            return line.split("=", 1)[1].strip()
    raise AssertionError("K8S_VERSION is missing from e2e/cluster/versions.env")


@dataclasses.dataclass(frozen=True)
class Chart:
    helm: Path
    home: Path
    kube_version: str
    path: Path = CHART

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "HELM_CACHE_HOME": str(self.home / "cache"), "HELM_CONFIG_HOME": str(self.home / "config"),
               "HELM_DATA_HOME": str(self.home / "data")}
        result = subprocess.run([str(self.helm), *args], capture_output=True, text=True, env=env, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def template_args(self, values: Path | None, namespace: str, release: str,
                      set_json: dict[str, Any] | None, include_crds: bool) -> list[str]:
        args = ["template", release, str(self.path), "--namespace", namespace, "--kube-version", self.kube_version]
        if values is not None:
            args += ["-f", str(values)]
        for key, value in (set_json or {}).items():
            args += ["--set-json", f"{key}={json.dumps(value)}"]
        if include_crds:
            args.append("--include-crds")
        return args

    def render(self, values: Path | None = None, *, namespace: str = "modelrollout", release: str = "mr",
               set_json: dict[str, Any] | None = None, include_crds: bool = False) -> list[dict[str, Any]]:
        """Every object the chart renders, in order."""
        out = self.run(*self.template_args(values, namespace, release, set_json, include_crds)).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]

    def refused(self, set_json: dict[str, Any]) -> str:
        """helm's error for values the chart must refuse (fails if it renders them)."""
        result = self.run(*self.template_args(None, "modelrollout", "mr", set_json, False), check=False)
        assert result.returncode != 0, f"the chart rendered {set_json}"
        return result.stderr


@pytest.fixture(scope="session")
def chart(tmp_path_factory: pytest.TempPathFactory) -> Chart:
    bin_dir, _ = local_world.build_binaries()
    return Chart(helm=bin_dir / "helm", home=tmp_path_factory.mktemp("helm-home"), kube_version=kube_version())
