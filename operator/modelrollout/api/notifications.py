"""Where a ModelDeployment's rollout is told to people: Slack, Microsoft Teams or any webhook,
each for the moments its team cares about, with the URL kept in a Secret."""

from __future__ import annotations

import enum

import pydantic

from modelrollout.api import analyses, wire


class Format(enum.StrEnum):
    """The body a receiver expects."""

    WEBHOOK = "Webhook"  # the operator's own JSON (docs/notifications.md)
    SLACK = "Slack"  # a Slack incoming webhook: text in mrkdwn
    TEAMS = "Teams"  # a Teams Workflows webhook: an Adaptive Card


class Moment(enum.StrEnum):
    """A moment of a rollout a notification can be sent for."""

    STARTED = "Started"  # a new revision's rollout began
    STEP = "Step"  # the rollout moved to its next step
    PAUSED = "Paused"  # the rollout holds for a person or a pause step
    PROMOTED = "Promoted"  # the new revision serves all traffic
    ROLLED_BACK = "RolledBack"  # the new revision failed or was aborted
    DEGRADED = "Degraded"  # something needs a person


class UrlSecretRef(analyses.SecretKeyRef):
    """A key of a Secret in the ModelDeployment's namespace holding the receiver's URL."""

    key: str = pydantic.Field(default="url", min_length=1, max_length=253)
    """The key within the Secret."""


class Notification(wire.Object):
    """One receiver, and the moments it hears about."""

    format: Format = Format.WEBHOOK
    """Webhook (the operator's JSON), Slack or Teams."""

    url_secret: UrlSecretRef
    """The Secret (key url by default) with the receiver's URL, which often embeds a credential."""

    events: list[Moment] = pydantic.Field(default_factory=lambda: list(Moment), min_length=1, max_length=6,
                                      json_schema_extra={"x-kubernetes-list-type": "set"})
    """The moments to send: Started, Step, Paused, Promoted, RolledBack, Degraded (default: all)."""


NAMESPACE_SECRET = "modelrollout-notifications"
"""A Secret of this name in a namespace is the receiver of every ModelDeployment there that names
none of its own in spec.notifications. Its keys: `url` (required), `format` (default Webhook) and
`events` (comma-separated moments, default all)."""


def from_namespace_secret(namespace: str, data: dict[str, str]) -> tuple[Format, list[Moment]]:
    """The format and moments of a namespace's receiver from its Secret's decoded values; a
    ValueError names the Secret and the key at fault.

        from_namespace_secret("ml", {"url": "https://x", "format": "Slack", "events": "Promoted, RolledBack"})
            -> (Format.SLACK, [Moment.PROMOTED, Moment.ROLLED_BACK])
    """
    where = f"Secret {namespace}/{NAMESPACE_SECRET}"
    format_name = data.get("format", "").strip() or Format.WEBHOOK.value
    formats = {f.value.lower(): f for f in Format}
    if format_name.lower() not in formats:
        raise ValueError(f"{where}, key format: {format_name!r} is none of {', '.join(f.value for f in Format)}")
    moments = {m.value.lower(): m for m in Moment}
    wanted = [word.strip() for word in data.get("events", "").split(",") if word.strip()]
    unknown = [word for word in wanted if word.lower() not in moments]
    if unknown:
        raise ValueError(f"{where}, key events: {', '.join(map(repr, unknown))} not among "
                         f"{', '.join(m.value for m in Moment)}")
    chosen = list(dict.fromkeys(moments[word.lower()] for word in wanted)) or list(Moment)
    return formats[format_name.lower()], chosen
