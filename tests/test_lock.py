"""requirements.lock, which CI and `make setup` install from, pins every declared dependency at a
version its declaration allows (for every Python the lock covers): a dependency added to or
tightened in pyproject.toml without `make lock` fails here."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]


def pins() -> dict[str, list[tuple[Version, Marker | None]]]:
    found: dict[str, list[tuple[Version, Marker | None]]] = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        pinned = re.match(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$", line)
        if pinned:
            marker = Marker(pinned.group(3)) if pinned.group(3) else None
            found.setdefault(canonicalize_name(pinned.group(1)), []).append((Version(pinned.group(2)), marker))
    return found


def declared() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = [*project["dependencies"], *project["optional-dependencies"]["dev"],
             *project["optional-dependencies"]["e2e"]]
    return [Requirement(spec) for spec in specs]


def test_every_declared_dependency_is_locked_within_its_range() -> None:
    locked = pins()
    for requirement in declared():
        versions = locked.get(canonicalize_name(requirement.name))
        assert versions, f"{requirement.name} is not in requirements.lock: run `make lock`"
        for version, _marker in versions:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"requirements.lock pins {requirement.name}=={version}, outside {requirement}: run `make lock`")


def test_the_lock_checks_hashes() -> None:
    text = (REPO / "requirements.lock").read_text()
    assert all("--hash=sha256:" in block for block in re.split(r"\n(?=[A-Za-z])", text) if "==" in block)
