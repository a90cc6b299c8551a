"""Telling a ModelDeployment's receivers (spec.notifications) about the moments a tick passed.

The URLs are read from Secrets when there is something to send, and sending runs in tasks of
its own (adapters/notify/webhook.py): a slow or failing receiver never holds a tick. That every
named Secret exists is checked once per generation of the spec, and on every tick while it
does not: a missing one makes the ModelDeployment Degraded, with the Secret named.
"""

from __future__ import annotations

import base64
import datetime
import logging

from modelrollout import errors
from modelrollout.adapters.notify import webhook
from modelrollout.api import notifications, resources
from modelrollout.core import decision, notices
from modelrollout.runtime import shared, slots

LOG = logging.getLogger(__name__)


def spec_problem(runtime: shared.Runtime, md: resources.ModelDeployment, asked: slots.Asked) -> str | None:
    """A notification Secret or key that is missing; None when all are there."""
    generation = md.metadata.generation
    if not md.spec.notifications or (generation is not None and asked.notifications_found == generation):
        return None
    try:
        for index, route in enumerate(md.spec.notifications):
            _url(runtime, md, index, route)
    except errors.SpecError as error:
        return str(error)
    asked.notifications_found = generation
    return None


def _url(runtime: shared.Runtime, md: resources.ModelDeployment, index: int,
         route: notifications.Notification) -> str:
    ref = route.url_secret
    return runtime.secret(md.metadata.namespace, ref.name, ref.key, f"spec.notifications[{index}].urlSecret")


Sends = list[tuple[webhook.Webhook, list[webhook.Notification]]]


def prepare(runtime: shared.Runtime, md: resources.ModelDeployment, plan: decision.Decision,
            now: datetime.datetime) -> Sends:
    """The notifications of this tick per receiver (blocking: reads the URL Secrets)."""
    found = notices.moments(md.status, plan.status)
    if not found:
        return []
    if not md.spec.notifications:
        return _namespace_receiver(runtime, md, plan, found, now)
    out: Sends = []
    for index, moments in notices.wanted(md.spec.notifications, found):
        route = md.spec.notifications[index]
        hook = runtime.receivers.get(_url(runtime, md, index, route), route.format.value)
        out.append((hook, [_notice(md, plan, moment, now) for moment in moments]))
    return out


def _namespace_receiver(runtime: shared.Runtime, md: resources.ModelDeployment, plan: decision.Decision,
                        found: list[notifications.Moment], now: datetime.datetime) -> Sends:
    """The namespace's receiver (its `modelrollout-notifications` Secret), for a ModelDeployment that
    names none; nothing when the namespace has none. A Secret that is there but wrong is a SpecError
    naming its key: the rollout goes on, and the tick logs it."""
    namespace = md.metadata.namespace or ""
    try:
        data = runtime.secret_cache.data(runtime.kube, namespace, notifications.NAMESPACE_SECRET)
    except errors.ClusterError as error:  # e.g. RBAC without the Secret's name: no namespace receiver
        LOG.warning("the namespace's notification Secret %s/%s cannot be read: %s",
                    namespace, notifications.NAMESPACE_SECRET, error)
        return []
    if data is None:
        return []
    values = {key: base64.b64decode(value).decode().strip() for key, value in data.items()}
    if not values.get("url"):
        raise errors.SpecError(f"Secret {namespace}/{notifications.NAMESPACE_SECRET}: key 'url' not found")
    try:
        body, wanted = notifications.from_namespace_secret(namespace, values)
    except ValueError as error:
        raise errors.SpecError(str(error)) from error
    moments = [moment for moment in found if moment in wanted]
    if not moments:
        return []
    return [(runtime.receivers.get(values["url"], body.value), [_notice(md, plan, m, now) for m in moments])]


def _notice(md: resources.ModelDeployment, plan: decision.Decision, moment: notifications.Moment,
            now: datetime.datetime) -> webhook.Notification:
    warning = moment in (notifications.Moment.ROLLED_BACK, notifications.Moment.DEGRADED) or any(
        event.type is decision.EventType.WARNING for event in plan.events)
    message = "; ".join(event.message for event in plan.events) or plan.status.message or ""
    revision = plan.status.canary_revision or plan.status.stable_revision
    return webhook.Notification(md.metadata.namespace or "", md.metadata.name or "", revision,
                                "Warning" if warning else "Normal", moment.value, message[:2000], now,
                                moment=moment.value)
