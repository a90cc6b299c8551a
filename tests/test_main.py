"""`python -m modelrollout --version`: what `docker run IMAGE --version` prints (e2e/test_images.py)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import modelrollout
from modelrollout import __main__ as entrypoint

REPO = Path(__file__).resolve().parents[1]


def test_version_prints_the_package_version_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        entrypoint.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"modelrollout {modelrollout.__version__}\n"


def test_the_package_version_is_the_distribution_version() -> None:
    # The image runs the sources from PYTHONPATH, without the distribution's metadata, and
    # reports __version__: it must say what pyproject.toml (and the chart's appVersion) says.
    assert modelrollout.__version__ == tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_version_does_not_import_kopf() -> None:
    # `--version` must answer where there is no cluster and nothing can be written.
    probe = ("import sys, runpy\nsys.argv = ['modelrollout', '--version']\n"
             "try:\n    runpy.run_module('modelrollout', run_name='__main__')\n"
             "except SystemExit:\n    pass\nassert 'kopf' not in sys.modules, 'kopf imported'\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(REPO / "operator")})
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"modelrollout {modelrollout.__version__}\n"


def test_an_unknown_option_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        entrypoint.main(["--bogus"])
    assert exited.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
