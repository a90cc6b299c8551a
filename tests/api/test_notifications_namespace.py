"""The namespace's receiver, read from its `modelrollout-notifications` Secret."""

from __future__ import annotations

import pytest

from modelrollout.api import notifications

Format, Moment = notifications.Format, notifications.Moment


def test_defaults_are_the_webhook_format_and_every_moment() -> None:
    assert notifications.from_namespace_secret("ml", {"url": "https://x"}) == (Format.WEBHOOK, list(Moment))


def test_format_and_events_are_read_in_any_case_with_spaces() -> None:
    assert notifications.from_namespace_secret(
        "ml", {"url": "u", "format": "slack", "events": " Promoted , rolledback,Promoted"}
    ) == (Format.SLACK, [Moment.PROMOTED, Moment.ROLLED_BACK])


@pytest.mark.parametrize("data, named", [
    ({"url": "u", "format": "Discord"}, "key format: 'Discord' is none of Webhook, Slack, Teams"),
    ({"url": "u", "events": "Promoted,Deployed"}, "key events: 'Deployed' not among Started, Step"),
])
def test_a_wrong_value_names_the_secret_and_the_key(data: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match="Secret ml/modelrollout-notifications") as raised:
        notifications.from_namespace_secret("ml", data)
    assert named in str(raised.value)
