"""Revisions: the short stable hash of a model and its pod template, and where their snapshots live.

A *revision* names one version of the model server: spec.model plus spec.template. Any change
to either is a new revision and starts a rollout; nothing else is (replicas, analysis settings
and traffic settings apply in place). Deployments are named `<md>-<revision>` and pods carry
the revision label, so the hash must be stable across operator versions and processes: it is
the sha256 of a canonical JSON form (sorted keys, no whitespace, camelCase names, fields left
at their default or null omitted, so that a later API version adding a defaulted field does not
roll out every ModelDeployment again), cut to `LENGTH` hex characters.

The stable revision's model and template are not in the spec during a rollout (the spec holds
the new ones), so they are kept as snapshots in status (stableSpec, history); `find` looks one up.
"""

from __future__ import annotations

import datetime
import hashlib
import json

from modelrollout.api import pods
from modelrollout.api import spec as api_spec
from modelrollout.api import status as api_status

LENGTH = 10
"""Hex characters of a revision: 40 bits, so a collision among one object's revisions is
negligible, and `<md>-<revision>` stays a valid object name (50 + 1 + 10 < 63)."""


def canonical(model: api_spec.Model, template: pods.PodTemplate) -> str:
    """The canonical JSON text a revision is computed from.

        canonical(Model(name="m", version="1"), template) -> '{"model":{"name":"m","version":"1"},"template":{...}}'
    """
    body = {
        "model": model.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True),
        "template": template.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def of(model: api_spec.Model, template: pods.PodTemplate) -> str:
    """The revision of a model and pod template: 10 hex characters of sha256 over `canonical`.

        of(Model(name="m", version="1"), t)   -> e.g. "3f2a9c01b7"
        of(Model(name="m", version="2"), t)   -> another hash: a new model is a new revision
    """
    return hashlib.sha256(canonical(model, template).encode()).hexdigest()[:LENGTH]


def of_spec(spec: api_spec.ModelDeploymentSpec) -> str:
    """The revision the spec asks for."""
    return of(spec.model, spec.template)


def snapshot(spec: api_spec.ModelDeploymentSpec) -> api_status.RevisionSnapshot:
    """The spec's model and template, kept so the revision can run again when the spec has moved on."""
    return api_status.RevisionSnapshot(revision=of_spec(spec), model=spec.model, template=spec.template)


def find(
    revision: str, spec: api_spec.ModelDeploymentSpec, status: api_status.ModelDeploymentStatus
) -> api_status.RevisionSnapshot | None:
    """Model and template of `revision`: the spec's, the stable's, or a promoted one in history."""
    if of_spec(spec) == revision:
        return snapshot(spec)
    if status.stable_spec is not None and status.stable_spec.revision == revision:
        return status.stable_spec
    for entry in reversed(status.history):
        if entry.revision == revision and entry.snapshot is not None:
            return entry.snapshot
    return None


def entry(
    revision: str,
    model: api_spec.Model | None,
    outcome: api_status.Outcome,
    reason: str,
    at: datetime.datetime,
    started_at: datetime.datetime | None = None,
    snapshot: api_status.RevisionSnapshot | None = None,
) -> api_status.HistoryEntry:
    """A history entry; promoted revisions carry their snapshot, which is what undo goes back to."""
    return api_status.HistoryEntry(
        revision=revision,
        model=model.version if model is not None else "unknown",
        outcome=outcome,
        reason=reason[:1024],
        started_at=started_at,
        at=at,
        snapshot=snapshot,
    )


def appended(
    history: list[api_status.HistoryEntry], new: api_status.HistoryEntry, limit: int
) -> list[api_status.HistoryEntry]:
    """History with a new entry, the oldest dropped to stay within `limit` (revisionHistoryLimit).

        appended([a, b, c], d, 3) -> [b, c, d]
        appended([], a, 10)       -> [a]
    """
    return [*history, new][-limit:]


def previous(status: api_status.ModelDeploymentStatus) -> str | None:
    """The revision undo goes back to: the last promoted one, other than the stable, that has a
    snapshot and was not rejected since (e.g. switched away from after a blue-green switch)."""
    for item in reversed(status.history):
        usable = item.snapshot is not None and item.revision not in status.rejected_revisions
        if item.outcome is api_status.Outcome.PROMOTED and usable and item.revision != status.stable_revision:
            return item.revision
    return None


def rejected(status: api_status.ModelDeploymentStatus, add: str | None = None, remove: str | None = None) -> list[str]:
    """status.rejectedRevisions with one added (at the end, once) and one removed.

        rejected(status with ["a", "b"], add="a")     -> ["b", "a"]
        rejected(status with ["a", "b"], remove="a")  -> ["b"]
    """
    kept = [revision for revision in status.rejected_revisions if revision not in (add, remove)]
    return [*kept, add] if add is not None else kept
