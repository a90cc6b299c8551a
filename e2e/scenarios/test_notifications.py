"""Notifications that teams use: Slack, Teams and the operator's JSON, each receiver for the
moments it asked, with its URL in a Secret, checked against a real HTTP receiver on loopback;
a missing Secret makes the ModelDeployment Degraded with the Secret named; a namespace's own
receiver tells of every ModelDeployment there that names none."""

from __future__ import annotations

import http.server
import json
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from e2e.fixtures import given, loopback, then, when
from e2e.fixtures.operator import OperatorProcess
from e2e.fixtures.world import Kubectl, eventually

pytestmark = pytest.mark.cluster

STEPS = [{"setWeight": 50}, {"pause": {"duration": "5s"}}]


class _Receiver(http.server.BaseHTTPRequestHandler):
    """Keeps every JSON body by path (/slack, /teams, /hook)."""

    got: ClassVar[dict[str, list[dict[str, Any]]]] = {}

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        type(self).got.setdefault(self.path, []).append(body)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.got = {}
    with loopback.serve(_Receiver) as url:
        yield url


def _url_secret(kubectl: Kubectl, namespace: str, name: str, url: str) -> None:
    kubectl("-n", namespace, "create", "secret", "generic", name, f"--from-literal=url={url}")


def _notified(routes: list[dict[str, Any]]) -> Any:
    def change(body: dict[str, Any]) -> None:
        body["spec"]["strategy"]["canary"]["steps"] = STEPS
        body["spec"]["notifications"] = routes
    return change


def test_each_receiver_hears_the_moments_it_asked_in_its_format(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess, receiver: str) -> None:
    for name, path in (("slack-webhook", "/slack"), ("teams-webhook", "/teams"), ("audit-webhook", "/hook")):
        _url_secret(kubectl, namespace, name, receiver + path)
    name = given.model_deployment(kubectl, namespace, given.example("canary-gateway-api"), change=_notified([
        {"format": "Slack", "urlSecret": {"name": "slack-webhook"}},
        {"format": "Teams", "urlSecret": {"name": "teams-webhook"}, "events": ["Promoted", "RolledBack"]},
        {"urlSecret": {"name": "audit-webhook"}, "events": ["Started"]},
    ]))
    then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)
    when.new_version(kubectl, namespace, name, "1.1.0")
    then.phase_becomes(kubectl, namespace, name, "Succeeded", 120)

    def slack_moments() -> list[str] | None:
        texts = [m["text"] for m in _Receiver.got.get("/slack", [])]
        moments = [word for text in texts for word in ("Started", "Step", "Paused", "Promoted") if f": {word} " in text]
        return moments if moments.count("Promoted") == 2 else None  # the first version, then 1.1.0
    moments = eventually(slack_moments, 30, what="Slack told of both promotions")
    assert moments[0] == "Promoted" and "Started" in moments and "Step" in moments, moments
    assert all(text.startswith(f"*{namespace}/{name}: ") for text in (m["text"] for m in _Receiver.got["/slack"]))

    cards = [m["attachments"][0]["content"] for m in _Receiver.got.get("/teams", [])]
    titles = [card["body"][0]["text"] for card in cards]
    assert len(titles) == 2 and all(": Promoted " in title for title in titles), titles
    assert all(card["type"] == "AdaptiveCard" for card in cards)

    audit = _Receiver.got.get("/hook", [])
    assert [m["moment"] for m in audit] == ["Started"], audit
    assert audit[0]["namespace"] == namespace and audit[0]["name"] == name


def test_a_missing_url_secret_is_degraded_with_the_secret_named(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> None:
    name = given.model_deployment(kubectl, namespace, given.example("canary-gateway-api"), change=_notified([
        {"format": "Slack", "urlSecret": {"name": "no-such-secret"}},
    ]))
    done = then.phase_becomes(kubectl, namespace, name, "Degraded", 60)
    assert "spec.notifications[0].urlSecret" in done["message"] and "no-such-secret" in done["message"], done


def test_the_namespace_receiver_hears_of_a_model_deployment_that_names_none(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess, receiver: str) -> None:
    kubectl("-n", namespace, "create", "secret", "generic", "modelrollout-notifications",
            f"--from-literal=url={receiver}/namespace", "--from-literal=format=Slack",
            "--from-literal=events=Promoted,RolledBack")
    name = given.model_deployment(kubectl, namespace, given.example("canary-gateway-api"))
    then.phase_becomes(kubectl, namespace, name, "Succeeded", 90)  # the first version: Promoted

    def told() -> list[str] | None:
        texts = [m["text"] for m in _Receiver.got.get("/namespace", [])]
        return texts or None
    texts = eventually(told, 30, what="the namespace's receiver told of the promotion")
    assert texts == [texts[0]] and texts[0].startswith(f"*{namespace}/{name}: Promoted "), texts
