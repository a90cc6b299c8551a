"""Revisions: what makes a new one, and the bookkeeping of history and rejected revisions."""

from __future__ import annotations

import datetime
import re

import hypothesis
from hypothesis import strategies as st

from modelrollout.api import status as api_status
from modelrollout.core import revisions
from tests.core import world

Outcome = api_status.Outcome
T0 = world.T0


def test_a_revision_is_ten_hex_characters_and_stable() -> None:
    spec = world.make_spec()
    revision = revisions.of_spec(spec)
    assert re.fullmatch(r"[0-9a-f]{10}", revision)
    assert revision == revisions.of_spec(world.make_spec())
    assert revision == "4f9012b553"  # a change here rolls out every ModelDeployment on an operator upgrade


def test_model_and_template_make_a_revision_nothing_else_does() -> None:
    base = revisions.of_spec(world.make_spec())
    assert revisions.of_spec(world.make_spec(version="2.0.0")) != base
    assert revisions.of_spec(world.make_spec(gpus=2)) != base
    assert revisions.of_spec(world.make_spec(replicas=7, max_extra=7, strategy="BlueGreen")) == base
    assert revisions.of_spec(world.make_spec(smoke=True, provider="Istio", rollback_delay="1m")) == base


def test_defaults_written_out_are_the_same_revision() -> None:
    spec = world.make_spec()
    body = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    body["model"]["uri"] = None
    assert revisions.of(type(spec.model).model_validate(body["model"]), spec.template) == revisions.of_spec(spec)


@hypothesis.given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_different_versions_are_different_revisions(first: str, second: str) -> None:
    hypothesis.assume(first != second)
    assert revisions.of_spec(world.make_spec(version=first)) != revisions.of_spec(world.make_spec(version=second))


def _entry(revision: str, outcome: Outcome, snapshot: bool = True) -> api_status.HistoryEntry:
    spec = world.make_spec()
    found = revisions.snapshot(spec).model_copy(update={"revision": revision}) if snapshot else None
    return revisions.entry(revision, spec.model, outcome, "", T0, snapshot=found)


def test_find_looks_in_the_spec_the_stable_snapshot_and_history() -> None:
    spec = world.make_spec(version="3.0.0")
    old = world.make_spec(version="1.0.0")
    status = api_status.ModelDeploymentStatus(
        stable_spec=revisions.snapshot(old), history=[_entry("aaaaaaaaaa", Outcome.PROMOTED)]
    )
    assert revisions.find(revisions.of_spec(spec), spec, status) == revisions.snapshot(spec)
    assert revisions.find(revisions.of_spec(old), spec, status) == revisions.snapshot(old)
    found = revisions.find("aaaaaaaaaa", spec, status)
    assert found is not None and found.revision == "aaaaaaaaaa"
    assert revisions.find("bbbbbbbbbb", spec, status) is None


def test_appended_keeps_the_newest_entries() -> None:
    a, b, c, d = (_entry(name * 10, Outcome.PROMOTED) for name in "abcd")
    assert revisions.appended([a, b, c], d, 3) == [b, c, d]
    assert revisions.appended([], a, 10) == [a]


def test_previous_is_the_last_promoted_revision_other_than_stable_and_not_rejected() -> None:
    history = [
        _entry("aaaaaaaaaa", Outcome.PROMOTED),
        _entry("bbbbbbbbbb", Outcome.PROMOTED),
        _entry("cccccccccc", Outcome.ROLLED_BACK, snapshot=False),
        _entry("dddddddddd", Outcome.PROMOTED),
    ]
    status = api_status.ModelDeploymentStatus(stable_revision="dddddddddd", history=history)
    assert revisions.previous(status) == "bbbbbbbbbb"
    rejected = status.model_copy(update={"rejected_revisions": ["bbbbbbbbbb"]})
    assert revisions.previous(rejected) == "aaaaaaaaaa"
    assert revisions.previous(api_status.ModelDeploymentStatus()) is None


def test_rejected_adds_once_at_the_end_and_removes() -> None:
    status = api_status.ModelDeploymentStatus(rejected_revisions=["a", "b"])
    assert revisions.rejected(status, add="a") == ["b", "a"]
    assert revisions.rejected(status, remove="a") == ["b"]
    assert revisions.rejected(status) == ["a", "b"]


def test_an_entry_is_bounded_and_names_the_model_version() -> None:
    entry = revisions.entry("aaaaaaaaaa", None, Outcome.ABORTED, "x" * 2000, T0 + datetime.timedelta(1))
    assert entry.model == "unknown" and len(entry.reason) == 1024
