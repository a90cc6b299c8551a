"""The invalid and unactionable corpora, checked without a cluster.

Every file in invalid/ is refused by the API server (e2e/test_invalid_modeldeployments.py
checks the message); here the same files must be refused by the pydantic models too, so the
operator and the kubectl plugin agree with the CRD. Every file in unactionable/ passes both:
only the operator, at run time, can tell what is wrong with it.
"""

import pathlib
import re

import pydantic
import pytest
import yaml

from modelrollout.api import resources, spec

HERE = pathlib.Path(__file__).parent
INVALID = sorted((HERE / "invalid").glob("*.yaml"))
UNACTIONABLE = sorted((HERE / "unactionable").glob("*.yaml"))


def _header(path: pathlib.Path, key: str) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith(f"# {key}: "), f"{path.name} must start with '# {key}: ...'"
    return first.removeprefix(f"# {key}: ").strip()


def _field(expect: str) -> str:
    """The field an expected API server message names: `spec.a.b[2].c`."""
    quoted = re.search(r'"((?:spec|metadata)\.[^"]+)"', expect)
    return quoted.group(1) if quoted else expect.split(":")[0].strip()


def _path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as the API server writes it; the canary step's union tag is dropped."""
    text = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            text += f"[{part}]"
        elif not (i + 1 < len(loc) and loc[i + 1] == part and isinstance(loc[i - 1], int)):
            text += f".{part}" if text else part
    return text


def _related(a: str, b: str) -> bool:
    return a == b or a.startswith((b + ".", b + "[")) or b.startswith((a + ".", a + "["))


def test_the_corpora_are_large_enough() -> None:
    assert len(INVALID) >= 32
    assert len(UNACTIONABLE) >= 5


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_is_refused_by_the_models(path: pathlib.Path) -> None:
    expect = _header(path, "expect")
    assert "spec." in expect or "metadata.name" in expect, "the expected message must name the field"
    body = yaml.safe_load(path.read_text())
    if path.stem != "name-too-long":
        assert body["metadata"]["name"] == path.stem
    with pytest.raises(pydantic.ValidationError) as refused:
        resources.ModelDeployment.model_validate(body, context={spec.WRITTEN: True})  # as when applied
    field = _field(expect)
    paths = [_path(error["loc"]) for error in refused.value.errors()]
    assert any(_related(field, path) for path in paths), f"refused for {paths}, not for {field}"


@pytest.mark.parametrize("path", UNACTIONABLE, ids=lambda p: p.stem)
def test_unactionable_passes_the_models(path: pathlib.Path) -> None:
    assert _header(path, "reason")
    body = yaml.safe_load(path.read_text())
    assert body["metadata"]["name"] == path.stem
    resources.ModelDeployment.model_validate(body)
