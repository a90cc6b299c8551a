"""Webhooks told about rollouts (a JSON POST, with httpx): the operator's own JSON, Slack or Teams.

Delivery is best effort and off the rollout's path: each notification is sent in its own task
with a timeout and a few retries with back-off, and a slow, failing or absent receiver never
blocks a tick nor changes what the operator does. Failures are logged, then dropped.

Bodies, by format:
- Webhook: {"namespace", "name", "revision", "type" (Normal|Warning), "reason", "message", "at"}, and
  "moment" (Started, Step, Paused, Promoted, RolledBack, Degraded) when sent for one;
- Slack: {"text"} in Slack's mrkdwn, as an incoming webhook takes it;
- Teams: a message with one Adaptive Card, as a Teams Workflows webhook takes it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
from collections.abc import Sequence
from typing import Any

import httpx

LOG = logging.getLogger("modelrollout.notify")


@dataclasses.dataclass(frozen=True)
class Notification:
    namespace: str
    name: str
    revision: str | None
    type: str
    reason: str
    message: str
    at: datetime.datetime
    moment: str | None = None

    def body(self) -> dict[str, str | None]:
        body = {"namespace": self.namespace, "name": self.name, "revision": self.revision, "type": self.type,
                "reason": self.reason, "message": self.message, "at": self.at.isoformat()}
        return body if self.moment is None else {**body, "moment": self.moment}

    def title(self) -> str:
        """One line: "ml/fraud-scorer: RolledBack (revision 5d8f...)"."""
        what = self.moment or self.reason
        return f"{self.namespace}/{self.name}: {what}" + (f" (revision {self.revision})" if self.revision else "")


FORMATS = ("Webhook", "Slack", "Teams")


def render(format: str, notification: Notification) -> dict[str, Any]:
    """The JSON body a receiver of `format` takes."""
    if format == "Slack":
        mark = ":warning: " if notification.type == "Warning" else ""
        return {"text": f"{mark}*{notification.title()}*\n{notification.message}"}
    if format == "Teams":
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": [
                {"type": "TextBlock", "text": notification.title(), "weight": "Bolder", "wrap": True,
                 "color": "Attention" if notification.type == "Warning" else "Default"},
                {"type": "TextBlock", "text": notification.message, "wrap": True},
                {"type": "FactSet", "facts": [{"title": "At", "value": notification.at.isoformat()},
                                              {"title": "Reason", "value": notification.reason}]},
            ],
        }
        return {"type": "message", "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}
    return dict(notification.body())


@dataclasses.dataclass(frozen=True)
class Delivery:
    timeout: float = 5.0
    attempts: int = 3
    backoff: float = 1.0


class Webhook:
    def __init__(self, url: str, delivery: Delivery | None = None, format: str = "Webhook") -> None:
        self.url = url
        self.format = format
        self.delivery = delivery or Delivery()
        self._tasks: set[asyncio.Task[bool]] = set()

    def send(self, notifications: Sequence[Notification]) -> None:
        """Schedules the notifications and returns at once."""
        for notification in notifications:
            task = asyncio.get_running_loop().create_task(self.deliver(notification))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def deliver(self, notification: Notification) -> bool:
        """POSTs one notification, retrying on errors and 5xx; True when the receiver took it."""
        delay = self.delivery.backoff
        for attempt in range(1, self.delivery.attempts + 1):
            try:
                async with httpx.AsyncClient(timeout=self.delivery.timeout) as client:
                    response = await client.post(self.url, json=render(self.format, notification))
                if response.status_code < 500:
                    if response.status_code >= 400:
                        LOG.warning("webhook refused %s: %s", notification.reason, response.status_code)
                    return response.status_code < 400
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as error:
                problem = f"{type(error).__name__}: {error}"
            if attempt < self.delivery.attempts:
                await asyncio.sleep(delay)
                delay *= 2
        LOG.warning("webhook gave up on %s after %d attempts: %s", notification.reason, self.delivery.attempts, problem)
        return False

    async def drain(self) -> None:
        """Waits for the notifications in flight (tests and shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class Receivers:
    """One Webhook per (URL, format), shared by the ModelDeployments that name it."""

    def __init__(self, delivery: Delivery | None = None) -> None:
        self.delivery = delivery or Delivery()
        self._hooks: dict[tuple[str, str], Webhook] = {}

    def get(self, url: str, format: str) -> Webhook:
        key = (url, format)
        if key not in self._hooks:
            self._hooks[key] = Webhook(url, self.delivery, format)
        return self._hooks[key]
