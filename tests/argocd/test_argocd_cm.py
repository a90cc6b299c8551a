"""argocd/argocd-cm.yaml, the patch that installs the Lua files into Argo CD, holds them unchanged.

The Lua files are the source; the patch is derived from them. After editing a Lua file, rewrite
the patch with `REGENERATE=1 .venv/bin/python -m pytest tests/argocd/test_argocd_cm.py`.
"""

from __future__ import annotations

import os
import pathlib

import pytest
import yaml

from e2e.fixtures.world import Kubectl

REPO = pathlib.Path(__file__).resolve().parents[2]
ARGOCD = REPO / "argocd"
SCRIPTS = ARGOCD / "modelrollout.io" / "ModelDeployment"
PATCH = ARGOCD / "argocd-cm.yaml"
KEY = "modelrollout.io_ModelDeployment"
HEALTH_KEY = f"resource.customizations.health.{KEY}"
ACTIONS_KEY = f"resource.customizations.actions.{KEY}"


def _block(text: str, indent: int) -> str:
    pad = " " * indent
    return "".join(pad + line if line.strip() else "\n" for line in text.splitlines(keepends=True))


def actions() -> list[str]:
    return sorted(p.parent.name for p in (SCRIPTS / "actions").glob("*/action.lua"))


def render() -> str:
    """The patch, written out so that each Lua file stays a readable block."""
    definitions = "".join(
        f"    - name: {name}\n      action.lua: |\n{_block((SCRIPTS / 'actions' / name / 'action.lua').read_text(), 8)}"
        for name in actions()
    )
    return (
        "# Installs the modelrollout health check and resource actions into Argo CD (see docs/argocd.md):\n"
        "#   kubectl -n argocd patch configmap argocd-cm --patch-file argocd/argocd-cm.yaml\n"
        "# Generated from argocd/modelrollout.io/ModelDeployment/**.lua; edit those, then regenerate\n"
        "# (tests/argocd/test_argocd_cm.py says how).\n"
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: argocd-cm\n"
        "  labels:\n"
        "    app.kubernetes.io/name: argocd-cm\n"
        "    app.kubernetes.io/part-of: argocd\n"
        "data:\n"
        f"  {HEALTH_KEY}: |\n{_block((SCRIPTS / 'health.lua').read_text(), 4)}"
        f"  {ACTIONS_KEY}: |\n"
        f"    discovery.lua: |\n{_block((SCRIPTS / 'actions' / 'discovery.lua').read_text(), 6)}"
        "    definitions:\n"
        f"{definitions}"
    )


def test_the_patch_is_up_to_date() -> None:
    if os.environ.get("REGENERATE"):
        PATCH.write_text(render())
    assert PATCH.read_text() == render(), "argocd/argocd-cm.yaml is stale: REGENERATE=1 and run this test"


def test_the_patch_holds_every_script_unchanged() -> None:
    """Read as Argo CD reads it: argocd-cm's data, and the actions value parsed as YAML again."""
    config_map = yaml.safe_load(PATCH.read_text())
    assert (config_map["kind"], config_map["metadata"]["name"]) == ("ConfigMap", "argocd-cm")
    data = config_map["data"]
    assert set(data) == {HEALTH_KEY, ACTIONS_KEY}
    assert data[HEALTH_KEY] == (SCRIPTS / "health.lua").read_text()
    parsed = yaml.safe_load(data[ACTIONS_KEY])
    assert parsed["discovery.lua"] == (SCRIPTS / "actions" / "discovery.lua").read_text()
    definitions = {d["name"]: d["action.lua"] for d in parsed["definitions"]}
    assert set(definitions) == set(actions()) and len(definitions) == 6
    for name, script in definitions.items():
        assert script == (SCRIPTS / "actions" / name / "action.lua").read_text(), name


@pytest.mark.cluster
def test_the_patch_merges_into_an_existing_argocd_cm(kubectl: Kubectl, namespace: str) -> None:
    """Applied as docs/argocd.md says, by the real API server: the scripts join the settings already there."""
    kubectl("create", "configmap", "argocd-cm", "-n", namespace, "--from-literal=url=https://argocd.example")
    kubectl("patch", "configmap", "argocd-cm", "-n", namespace, "--patch-file", str(PATCH))
    data = yaml.safe_load(kubectl("get", "configmap", "argocd-cm", "-n", namespace, "-o", "yaml").stdout)["data"]
    assert data["url"] == "https://argocd.example"
    assert data[HEALTH_KEY] == (SCRIPTS / "health.lua").read_text()
    assert yaml.safe_load(data[ACTIONS_KEY])["discovery.lua"] == (SCRIPTS / "actions" / "discovery.lua").read_text()
