"""The smoke test: one real request to the new revision before any traffic reaches it.

The request goes straight to one ready pod of the new revision (its pod IP and container port,
or an address a development cluster publishes on the pod), with httpx. The answer must have the
expected status and, if asked, the expected values at dotted JSON paths. A failure carries the
response (status and the start of the body) into the rollback reason.

    lookup({"prediction": {"label": "fraud"}}, "prediction.label") -> "fraud"
    lookup({"scores": [0.1, 0.9]}, "scores.1")                     -> 0.9
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import httpx

from modelrollout.api import durations, spec

_MISSING = object()


@dataclasses.dataclass(frozen=True)
class SmokeOutcome:
    passed: bool
    message: str


def lookup(document: Any, path: str) -> Any:
    """The value at a dotted path, list items by index; a sentinel when it is absent."""
    current = document
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.lstrip("-").isdigit() and -len(current) <= int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def judge(test: spec.SmokeTest, status: int, body: bytes) -> SmokeOutcome:
    """Pure: whether a response passes the smoke test, and what to say about it."""
    excerpt = body[:300].decode(errors="replace")
    if status != test.expect_status:
        return SmokeOutcome(False, f"{test.path} answered {status}, expected {test.expect_status}: {excerpt}")
    if test.expect_json:
        try:
            document = json.loads(body)
        except ValueError:
            return SmokeOutcome(False, f"{test.path} answered {status} with a body that is not JSON: {excerpt}")
        for path, expected in test.expect_json.items():
            actual = lookup(document, path)
            if actual is _MISSING:
                return SmokeOutcome(False, f"{test.path}: the response has no {path!r}: {excerpt}")
            if actual != expected:
                return SmokeOutcome(False, f"{test.path}: {path} is {actual!r}, expected {expected!r}")
    return SmokeOutcome(True, f"{test.path} answered {status} as expected")


def run(address: str, test: spec.SmokeTest) -> SmokeOutcome:
    """Sends the request to `address` (host:port) and judges the answer."""
    method = test.method.value if test.method else ("POST" if test.body is not None else "GET")
    timeout = durations.parse_duration(test.timeout).total_seconds()
    url = f"http://{address}{test.path}"
    try:
        response = httpx.request(method, url, json=test.body if test.body is not None else None,
                                 headers=dict(test.headers or {}), timeout=timeout)
    except httpx.HTTPError as error:
        return SmokeOutcome(False, f"{method} {url} failed: {type(error).__name__}: {error}")
    return judge(test, response.status_code, response.content)
