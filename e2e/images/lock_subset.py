"""The part of requirements.lock that one image needs, with its hashes, for `pip install --require-hashes`.

requirements.lock pins the operator's dependencies together with the dev and e2e extras (pytest,
mypy, scikit-learn...), which an image must not carry, and pip cannot check hashes on a subset
(hashes in a constraints file do not count in --require-hashes mode). So the image build keeps
the lock's entries, verbatim, for the named roots and everything they pull in, read from uv's
`# via` annotations: an entry is kept when a root or a kept entry needs it. The build then
installs them with `--no-deps` and runs `pip check`, which fails if an edge was missed.

    python3 lock_subset.py requirements.lock --pyproject pyproject.toml > operator.txt
    python3 lock_subset.py requirements.lock aiohttp numpy scikit-learn > modelserver.txt

Standard library only: it runs in the image's build stage, before anything is installed.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import tomllib
from pathlib import Path

_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==")
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    """PEP 503: case and runs of `-_.` do not matter."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclasses.dataclass
class Entry:
    name: str
    lines: list[str]  # the entry's text as in the lock: pin, hashes and its `# via` comment
    via: set[str]  # who needs it: package names, or `modelrollout (pyproject.toml)`


def entries(lock: str) -> list[Entry]:
    """The lock's entries in order; a name with platform markers can have several."""
    found: list[Entry] = []
    in_via = False
    for line in lock.splitlines():
        pinned = _NAME.match(line)
        if pinned:
            found.append(Entry(canonical(pinned.group(1)), [line], set()))
            in_via = False
            continue
        if not found:
            continue  # the header comment
        current = found[-1]
        current.lines.append(line)
        stripped = line.strip()
        if stripped == "# via":
            in_via = True
        elif stripped.startswith("# via "):
            current.via.add(stripped.removeprefix("# via ").strip())
        elif in_via and stripped.startswith("#   "):
            current.via.add(stripped.removeprefix("#   ").strip())
    for entry in found:
        entry.via = {via if via.endswith("(pyproject.toml)") else canonical(via) for via in entry.via}
    return found


def subset(lock: str, roots: set[str]) -> list[Entry]:
    """The entries of `roots` and of everything they need, in the lock's order."""
    all_entries = entries(lock)
    wanted = {canonical(root) for root in roots}
    known = {entry.name for entry in all_entries}
    missing = wanted - known
    if missing:
        raise SystemExit(f"not in the lock: {', '.join(sorted(missing))}")
    changed = True
    while changed:  # a fixpoint: the lock's graph is small (about 150 entries)
        changed = False
        for entry in all_entries:
            if entry.name not in wanted and entry.via & wanted:
                wanted.add(entry.name)
                changed = True
    return [entry for entry in all_entries if entry.name in wanted]


def project_dependencies(pyproject: Path) -> set[str]:
    """The names in [project.dependencies]: the operator's runtime roots."""
    requirements = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    names: set[str] = set()
    for requirement in requirements:
        found = _REQUIREMENT_NAME.match(requirement)
        assert found, requirement
        names.add(found.group(1))
    return names


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lock", type=Path)
    parser.add_argument("roots", nargs="*", help="package names; with --pyproject, added to its dependencies")
    parser.add_argument("--pyproject", type=Path, help="take the roots from its [project.dependencies]")
    args = parser.parse_intermixed_args(argv)
    roots = set(args.roots) | (project_dependencies(args.pyproject) if args.pyproject else set())
    if not roots:
        parser.error("no roots: name packages or give --pyproject")
    for entry in subset(args.lock.read_text(), roots):
        sys.stdout.write("\n".join(entry.lines) + "\n")


if __name__ == "__main__":
    main()
