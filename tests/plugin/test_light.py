"""The plugin stays light: it imports none of the operator's heavy dependencies, and the light
distribution in plugin/ ships every module it imports."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("scipy", "numpy", "kopf", "httpx", "prometheus_client", "aiohttp")


def imported_by_the_plugin() -> set[str]:
    code = ("import sys, modelrollout.kubectl_plugin.cli as c; c.parser(); "
            "print('\\n'.join(sorted(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={"PYTHONPATH": str(REPO / "operator"), "PATH": "/usr/bin:/bin"})
    return set(result.stdout.split())


def test_the_plugin_imports_nothing_heavy() -> None:
    modules = imported_by_the_plugin()
    assert "modelrollout.kubectl_plugin.cli" in modules
    assert not {m.split(".")[0] for m in modules} & set(HEAVY)
    operator_only = ("modelrollout.core", "modelrollout.runtime", "modelrollout.handlers")
    assert not any(m.startswith(operator_only) for m in modules)


def test_the_light_distribution_ships_every_module_the_plugin_imports() -> None:
    project = tomllib.loads((REPO / "plugin" / "pyproject.toml").read_text())
    shipped = project["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    files = set()
    for source in shipped:
        path = (REPO / "plugin" / source).resolve()
        files |= {p for p in path.rglob("*.py")} if path.is_dir() else {path}
    needed = {m for m in imported_by_the_plugin() if m.startswith("modelrollout")}
    for module in needed:
        base = REPO / "operator" / Path(*module.split("."))
        assert base / "__init__.py" in files or base.with_suffix(".py") in files, module
    dependencies = {d.split(">")[0].split("=")[0].lower() for d in project["project"]["dependencies"]}
    assert dependencies == {"kubernetes", "pydantic", "pyyaml", "rich"}
