"""Prints `name==floor` for the named dependencies of pyproject.toml, as a pip constraints file.

    python .ci/minimum-versions.py pyproject.toml kubernetes kopf   ->   kubernetes==37 / kopf==1.44

`make test-min-deps` installs the project with these constraints, so the unit tests run against
the oldest versions the project declares it works with.
"""

from __future__ import annotations

import re
import sys
import tomllib


def main(path: str, names: list[str]) -> int:
    with open(path, "rb") as file:
        dependencies = tomllib.load(file)["project"]["dependencies"]
    floors = {}
    for spec in dependencies:
        found = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9A-Za-z.]*)", spec)
        if found:
            floors[found.group(1).lower()] = found.group(2)
    missing = [n for n in names if n.lower() not in floors]
    if missing:
        print(f"no >= floor declared for {', '.join(missing)} in {path}", file=sys.stderr)
        return 1
    for name in names:
        print(f"{name}=={floors[name.lower()]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
