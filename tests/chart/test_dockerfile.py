"""The operator image's Dockerfile, read (e2e/test_images.py builds and runs it): it runs the package
as the non-root user the chart expects, with the entrypoint the chart's Deployment uses, from a
build context that holds the package and nothing else."""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    assert not pending, "a continuation line at the end"
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _pattern(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def in_context(path: str) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or one of its parents wins."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = _pattern(line.lstrip("!").strip("/"))
        if any(pattern.fullmatch(c) for c in candidates):
            included = negate
    return included


def deployment_container(chart: Any) -> dict[str, Any]:
    objects = chart.render()
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 65532
    return container


def test_the_image_runs_the_package_as_the_non_root_user(chart: Any) -> None:
    steps = instructions()
    froms = [args for kind, args in steps if kind == "FROM"]
    defaults = dict(args.split("=", 1) for kind, args in steps if kind == "ARG")
    assert froms[-1].split()[0] == "${BASE}${BASE_DIGEST}"
    # The public base by default; a release pins its digest.
    assert defaults == {"BASE": "python:3.11-slim", "BASE_DIGEST": ""}
    users = [args for kind, args in steps if kind == "USER"]
    assert users, "no USER: the image would run as root"
    uid = users[-1].split(":")[0]
    assert uid == "65532", "a numeric uid, so that the kubelet can verify runAsNonRoot"
    last_user = max(i for i, (kind, _) in enumerate(steps) if kind == "USER")
    assert all(kind not in ("RUN", "COPY", "ADD") for kind, _ in steps[last_user:]), "nothing runs as root after USER"
    entrypoints = [args for kind, args in steps if kind == "ENTRYPOINT"]
    assert json.loads(entrypoints[-1]) == ["python", "-m", "modelrollout"]
    container = deployment_container(chart)
    assert container["command"] == json.loads(entrypoints[-1])
    exposed = {int(p.split("/")[0]) for kind, args in steps if kind == "EXPOSE" for p in args.split()}
    assert exposed == {p["containerPort"] for p in container["ports"]}
    installs = [args for kind, args in steps if kind == "RUN" and "install-locked.sh" in args]
    assert installs, "the dependencies come from the lock"
    assert "--require-hashes" in (REPO / "e2e/images/install-locked.sh").read_text()
    assert not any(kind == "ADD" for kind, _ in steps), "COPY, not ADD"


def test_the_build_context_holds_the_package_and_nothing_else() -> None:
    steps = instructions()
    sources = [src for kind, args in steps if kind == "COPY" and "--from" not in args for src in args.split()[:-1]]
    assert sources
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: missing"
        assert in_context(source), f"COPY {source}: excluded by .dockerignore"
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'where = ["operator"]' in pyproject, "the package is found under operator/, which the image copies"
    for path in (REPO / "operator" / "modelrollout").rglob("*.py"):
        assert in_context(str(path.relative_to(REPO))), path
    for outside in ("tests/chart/test_dockerfile.py", ".venv/bin/python", ".e2e/env", ".git/HEAD", "e2e/test_world.py",
                    "operator/modelrollout/__pycache__/config.cpython-311.pyc", "charts/modelrollout/Chart.yaml"):
        assert not in_context(outside), f"{outside} is in the build context"


def test_the_chart_app_version_is_the_package_version() -> None:
    chart = yaml.safe_load((REPO / "charts" / "modelrollout" / "Chart.yaml").read_text())
    version = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert version and chart["appVersion"] == version[1]
