"""An optional webhook told about every step, promotion and rollback (a JSON POST, with httpx).

Delivery is best effort and off the rollout's path: each notification is sent in its own task
with a timeout and a few retries with back-off, and a slow, failing or absent receiver never
blocks a tick nor changes what the operator does. Failures are logged, then dropped.

The body: {"namespace", "name", "revision", "type" (Normal|Warning), "reason", "message", "at"}.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
from collections.abc import Sequence

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

    def body(self) -> dict[str, str | None]:
        return {"namespace": self.namespace, "name": self.name, "revision": self.revision, "type": self.type,
                "reason": self.reason, "message": self.message, "at": self.at.isoformat()}


@dataclasses.dataclass(frozen=True)
class Delivery:
    timeout: float = 5.0
    attempts: int = 3
    backoff: float = 1.0


class Webhook:
    def __init__(self, url: str, delivery: Delivery | None = None) -> None:
        self.url = url
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
                    response = await client.post(self.url, json=notification.body())
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
