"""e2e/images/lock_subset.py: the part of requirements.lock an image installs (with --no-deps) is
closed under the requirements the installed distributions declare, and leaves the dev tools out."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from e2e.images import lock_subset

REPO = Path(__file__).resolve().parents[1]
LOCK = (REPO / "requirements.lock").read_text()
OPERATOR = lock_subset.project_dependencies(REPO / "pyproject.toml")
# The roots e2e/modelserver/Dockerfile names (e2e/images/build.sh reads them there too).
MODELSERVER = set(re.findall(r"lock_subset\.py /src/requirements\.lock ([^>]+) >",
                             (REPO / "e2e/modelserver/Dockerfile").read_text())[0].split())


@pytest.mark.parametrize("roots", [OPERATOR, MODELSERVER], ids=["operator", "modelserver"])
def test_the_subset_holds_every_requirement_of_what_it_holds(roots: set[str]) -> None:
    entries = lock_subset.subset(LOCK, roots)
    kept = {entry.name for entry in entries}
    pinned = {(entry.name, entry.lines[0].split()[0].split("==")[1]) for entry in entries}
    checked = 0
    for name in kept:
        try:
            declared = importlib.metadata.requires(name) or []
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # only for other platforms (colorama on Windows): not installed here
        if (name, installed) not in pinned:
            continue  # `make test-min-deps` installs older versions, whose requirements differ
        checked += 1
        for spec in declared:
            requirement = Requirement(spec)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                assert canonicalize_name(requirement.name) in kept, f"{name} needs {requirement.name}"
    assert checked > len(kept) // 2, f"only {checked} of {len(kept)} installed as the lock pins them"


def test_the_model_server_roots_are_read_from_its_dockerfile() -> None:
    assert {"aiohttp", "numpy", "scikit-learn"} <= MODELSERVER


def test_the_operator_subset_leaves_dev_and_e2e_tools_out() -> None:
    kept = {entry.name for entry in lock_subset.subset(LOCK, OPERATOR)}
    assert {"kopf", "kubernetes", "pydantic", "scipy", "httpx"} <= kept
    assert not kept & {"pytest", "mypy", "ruff", "hypothesis", "scikit-learn", "lupa", "bcrypt"}


def test_entries_are_kept_verbatim_with_their_hashes_and_markers() -> None:
    text = "".join("\n".join(entry.lines) + "\n" for entry in lock_subset.subset(LOCK, {"numpy"}))
    assert text.count("numpy==") == LOCK.count("\nnumpy==") == 2  # one pin per Python range
    assert re.search(r"^numpy==\S+ ; python_full_version < '3\.12' \\\n    --hash=sha256:", text, re.MULTILINE)


def test_an_unknown_root_is_an_error() -> None:
    with pytest.raises(SystemExit, match="not in the lock: no-such-package"):
        lock_subset.subset(LOCK, {"no_such.package"})
