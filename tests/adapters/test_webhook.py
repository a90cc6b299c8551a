"""The notification webhook against a real HTTP receiver on loopback."""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from e2e.cluster.processes import free_port
from modelrollout.adapters.notify import webhook

NOTE = webhook.Notification("ml", "scorer", "7b21aa", "Warning", "RolledBack", "error-rate failed",
                            datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC))
QUICK = webhook.Delivery(timeout=0.5, attempts=3, backoff=0.05)

Handler = Callable[[web.Request], Any]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[dict[str, Any]], list[Handler]]]:
    received: list[dict[str, Any]] = []
    behaviours: list[Handler] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(await request.json())
        if behaviours:
            result: web.Response = await behaviours.pop(0)(request)
            return result
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/hook", received, behaviours
    await runner.cleanup()


async def test_delivers_the_event_as_json(receiver: Any) -> None:
    url, received, _ = receiver
    assert await webhook.Webhook(url, QUICK).deliver(NOTE) is True
    assert received == [{"namespace": "ml", "name": "scorer", "revision": "7b21aa", "type": "Warning",
                         "reason": "RolledBack", "message": "error-rate failed", "at": "2026-01-02T03:04:05+00:00"}]


async def test_retries_server_errors_then_delivers(receiver: Any) -> None:
    url, received, behaviours = receiver

    async def fail(_: web.Request) -> web.Response:
        return web.Response(status=503)

    behaviours += [fail, fail]
    assert await webhook.Webhook(url, QUICK).deliver(NOTE) is True
    assert len(received) == 3


async def test_a_slow_receiver_never_blocks_the_sender(receiver: Any) -> None:
    url, received, behaviours = receiver

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.json_response({})

    behaviours += [slow, slow, slow]
    hook = webhook.Webhook(url, QUICK)
    started = time.monotonic()
    hook.send([NOTE])
    assert time.monotonic() - started < 0.05  # scheduled, not awaited
    await hook.drain()
    assert len(received) >= 3


async def test_an_unreachable_receiver_gives_up_quietly() -> None:
    hook = webhook.Webhook(f"http://127.0.0.1:{free_port()}/hook", QUICK)
    assert await hook.deliver(NOTE) is False


MOMENT = webhook.Notification("ml", "scorer", "7b21aa", "Warning", "RolledBack", "error-rate failed",
                              datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC), moment="RolledBack")


async def test_slack_gets_mrkdwn_text(receiver: Any) -> None:
    url, received, _ = receiver
    assert await webhook.Webhook(url, QUICK, format="Slack").deliver(MOMENT) is True
    assert received == [{"text": ":warning: *ml/scorer: RolledBack (revision 7b21aa)*\nerror-rate failed"}]


async def test_teams_gets_one_adaptive_card(receiver: Any) -> None:
    url, received, _ = receiver
    assert await webhook.Webhook(url, QUICK, format="Teams").deliver(MOMENT) is True
    (message,) = received
    assert message["type"] == "message"
    (attachment,) = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    texts = [block["text"] for block in card["body"] if block["type"] == "TextBlock"]
    assert texts == ["ml/scorer: RolledBack (revision 7b21aa)", "error-rate failed"]
    assert card["body"][0]["color"] == "Attention"


async def test_the_webhook_format_names_the_moment(receiver: Any) -> None:
    url, received, _ = receiver
    assert await webhook.Webhook(url, QUICK).deliver(MOMENT) is True
    assert received[0]["moment"] == "RolledBack" and received[0]["reason"] == "RolledBack"


def test_receivers_share_one_webhook_per_url_and_format() -> None:
    receivers = webhook.Receivers(QUICK)
    assert receivers.get("http://a", "Slack") is receivers.get("http://a", "Slack")
    assert receivers.get("http://a", "Slack") is not receivers.get("http://a", "Teams")
