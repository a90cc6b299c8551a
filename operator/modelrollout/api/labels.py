"""The names the operator writes onto objects: label and annotation keys, the finalizer, the
environment variables of model-server containers, and the tracks pods belong to.

They are part of the contract, not an implementation detail: Prometheus series are told apart
by the track and revision labels, the chart's PodMonitor relabels them, the kubectl plugin and
the Argo CD actions write the command annotation, and the e2e load generator reads the rps
annotation. Keeping them in one module means a rename is one change.
"""

from __future__ import annotations

import enum

PREFIX = "modelrollout.io/"
"""Every key the operator owns starts with this; users may not set such labels in the template."""

NAME = "modelrollout.io/name"
"""Label on every object the operator makes: the ModelDeployment's name."""

TRACK = "modelrollout.io/track"
"""Label on pods, Deployments and Services: which `Track` they serve."""

REVISION = "modelrollout.io/revision"
"""Label on pods, Deployments and Services: the revision hash of model + pod template."""

MANAGED_BY = "app.kubernetes.io/managed-by"
"""The well-known label, set to `MANAGER` on every object the operator makes."""

MANAGER = "modelrollout"

COMMAND = "modelrollout.io/command"
"""Annotation on a ModelDeployment asking for promote, abort, retry, ... (see `commands`)."""

FINALIZER = "modelrollout.io/finalizer"
"""Finalizer that lets the operator restore routes before a ModelDeployment goes away."""

STORAGE_PREFIX = "modelrollout.io"
"""Prefix of kopf's progress and diff-base annotations."""

IGNORE = "modelrollout.io/ignore"
"""Label that takes a ModelDeployment out of the operator's hands (any value): nothing is read,
written or rolled out for it until the label goes. For maintenance and for tests of the API alone."""

RPS = "e2e.modelrollout.io/rps"
"""Annotation read by the e2e load generator: requests per second to send to this model."""

ENV_MODEL_NAME = "MODEL_NAME"
ENV_MODEL_VERSION = "MODEL_VERSION"
ENV_MODEL_URI = "MODEL_URI"
"""Environment variables the operator sets in every container from spec.model, so that a
model change alone (same image) is a new revision and the server knows what to load."""


class Track(enum.StrEnum):
    """The role a set of pods plays in a rollout.

    STABLE serves the last promoted revision. CANARY serves the new revision and takes a share of
    the traffic. PREVIEW runs the new revision of a blue-green rollout, reachable on its own
    Service before the switch. SHADOW runs the new revision on a mirrored copy of the traffic;
    its answers are discarded.
    """

    STABLE = "stable"
    CANARY = "canary"
    PREVIEW = "preview"
    SHADOW = "shadow"


def selector(name: str, track: Track) -> dict[str, str]:
    """The labels that pick one ModelDeployment's pods of one track, whatever their revision."""
    return {NAME: name, TRACK: track.value}
