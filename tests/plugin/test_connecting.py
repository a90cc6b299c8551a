"""The plugin picks cluster, context and namespace as kubectl does, and says what is wrong in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from modelrollout.kubectl_plugin import connecting


def kubeconfig(path: Path, current: str, contexts: dict[str, str | None]) -> Path:
    config: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config", "current-context": current,
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": name, "context": {"cluster": "c", "user": "u", **({"namespace": ns} if ns else {})}}
                     for name, ns in contexts.items()],
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def two_contexts(tmp_path: Path) -> Path:
    return kubeconfig(tmp_path / "config", "ml", {"ml": "ml-team", "plain": None})


def test_the_current_context_gives_the_namespace(two_contexts: Path) -> None:
    target = connecting.connect(str(two_contexts), None, None)
    assert (target.namespace, target.server) == ("ml-team", "https://127.0.0.1:6443")


def test_n_wins_over_the_context(two_contexts: Path) -> None:
    assert connecting.connect(str(two_contexts), None, "other").namespace == "other"


def test_a_context_without_namespace_means_default(two_contexts: Path) -> None:
    assert connecting.connect(str(two_contexts), "plain", None).namespace == "default"


def test_kubeconfig_comes_from_the_environment_as_a_list(two_contexts: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent'}:{two_contexts}")
    assert connecting.connect(None, None, None).namespace == "ml-team"


def test_an_unknown_context_names_the_known_ones(two_contexts: Path) -> None:
    with pytest.raises(connecting.ConnectError, match=r"context 'nope' is not in .* \(it has: ml, plain\)"):
        connecting.connect(str(two_contexts), "nope", None)


def test_no_kubeconfig_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    with pytest.raises(connecting.ConnectError, match=r"no kubeconfig: .*absent \(\$KUBECONFIG\) does not exist"):
        connecting.connect(None, None, None)


def test_a_broken_kubeconfig_is_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.write_text("apiVersion: v1\nkind: Config\ncontexts: []\n")
    with pytest.raises(connecting.ConnectError) as caught:
        connecting.connect(str(broken), None, None)
    assert "\n" not in str(caught.value)
