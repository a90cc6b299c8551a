"""docs/argocd/application.yaml deploys examples/ and needs no ignoreDifferences."""

from __future__ import annotations

import pathlib

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
APPLICATION = REPO / "docs" / "argocd" / "application.yaml"


def test_the_application_deploys_the_examples_with_self_heal() -> None:
    application = yaml.safe_load(APPLICATION.read_text())
    assert (application["apiVersion"], application["kind"]) == ("argoproj.io/v1alpha1", "Application")
    spec = application["spec"]
    path = REPO / spec["source"]["path"]
    assert path == REPO / "examples" and sorted(path.glob("*.yaml")), "examples/ holds the ModelDeployments"
    assert all(yaml.safe_load(p.read_text())["kind"] == "ModelDeployment" for p in path.glob("*.yaml"))
    assert spec["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert "ignoreDifferences" not in spec, "the operator never writes spec: nothing to ignore"
