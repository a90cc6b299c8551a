"""The sending loop: a Poisson stream per target, routed by whatever table it was last given.

It knows nothing of the API server or the endpoints file: `update()` swaps in a routing table
(the refresh loop calls it every second; tests call it with a literal table). Each request is
its own task, so a slow backend never slows the arrival process, and the arrival times are
scheduled absolutely so the rate holds on a busy machine (a backlog over a second is dropped
rather than sent in a burst).

Each request draws its headers (and cookies) from the route first, then takes the first rule
they match, then a backend of that rule by weight; the headers go to the backend and to any
mirror. A request no rule takes is counted as the gateway's 404, with no backend.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from e2e.loadgen import routing
from e2e.loadgen.metrics import LoadgenMetrics

log = logging.getLogger("loadgen")

JSON_HEADERS = {"Content-Type": "application/json"}
#: Catch-up limit: when the loop falls further behind than this, the backlog is skipped.
MAX_LAG_S = 1.0


@dataclass
class Window:
    """What one target sent since the last summary."""

    sent: int = 0
    codes: collections.Counter[str] = field(default_factory=collections.Counter)
    backends: collections.Counter[str] = field(default_factory=collections.Counter)
    mirrored: int = 0


class Sender:
    """Drives every target of the current routing table until `close()`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        bodies: Sequence[bytes],
        metrics: LoadgenMetrics,
        rng: random.Random | None = None,
        timeout_s: float = 10.0,
        mirror_timeout_s: float = 5.0,
    ) -> None:
        if not bodies:
            raise ValueError("need at least one request body")
        self._session = session
        self._bodies = bodies
        self._metrics = metrics
        self._rng = rng or random.Random()
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._mirror_timeout = aiohttp.ClientTimeout(total=mirror_timeout_s)
        self._routes: dict[tuple[str, str], routing.Route] = {}
        self._drivers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._in_flight: set[asyncio.Task[None]] = set()
        self._windows: dict[tuple[str, str], Window] = collections.defaultdict(Window)

    @property
    def routes(self) -> dict[tuple[str, str], routing.Route]:
        return dict(self._routes)

    @property
    def in_flight(self) -> int:
        """Requests (user and mirrored) sent and not yet answered."""
        return len(self._in_flight)

    def update(self, table: routing.RoutingTable) -> None:
        """Takes a new routing table: starts new targets, stops vanished ones, reroutes the rest."""
        for key in set(self._routes) - set(table):
            self._metrics.intended.remove(*key)
            self._drivers.pop(key).cancel()
        self._routes = dict(table)
        for key, route in self._routes.items():
            self._metrics.intended.labels(*key).set(route.rps)
            if key not in self._drivers:
                self._drivers[key] = asyncio.create_task(self._drive(key), name=f"loadgen {key[0]}/{key[1]}")

    def take_window(self) -> dict[tuple[str, str], tuple[routing.Route, Window]]:
        """Each current target with what it sent since the last call (then starts afresh)."""
        windows, self._windows = self._windows, collections.defaultdict(Window)
        return {key: (route, windows.get(key, Window())) for key, route in self._routes.items()}

    async def close(self) -> None:
        """Stops every target and abandons requests still in flight."""
        tasks = [*self._drivers.values(), *self._in_flight]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._drivers.clear()
        self._routes.clear()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _drive(self, key: tuple[str, str]) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while (route := self._routes.get(key)) is not None:
            next_at += self._rng.expovariate(route.rps)
            lag = loop.time() - next_at
            if lag < 0:
                await asyncio.sleep(-lag)
            elif lag > MAX_LAG_S:
                next_at = loop.time()
            if (route := self._routes.get(key)) is None:
                return
            self._spawn(self._send(route))

    async def _send(self, route: routing.Route) -> None:
        body = self._rng.choice(self._bodies)
        drawn = routing.request_headers(route, self._rng)
        headers = {**JSON_HEADERS, **drawn}
        tagged = "yes" if drawn else "no"
        rule = routing.matching_rule(route, headers)
        if rule is None:
            self._count(route, "", "404", tagged)  # a gateway's answer when no rule matches
            return
        backend, pod = routing.pick(rule, self._rng)
        for mirror_backend, mirror_pod in routing.mirrored(rule, self._rng):
            self._spawn(self._mirror(route, mirror_backend, mirror_pod, body, headers))
        code = "503"  # a gateway's answer when the backend has no ready endpoint
        if pod is not None:
            try:
                async with self._session.post(
                    f"http://{pod.host}:{pod.port}/v1/predict", data=body, headers=headers,
                    timeout=self._timeout,
                ) as response:
                    await response.read()
                    code = str(response.status)
            except TimeoutError:
                code = "504"
            except aiohttp.ClientError:
                code = "503"  # refused or reset: upstream unavailable
        self._count(route, backend, code, tagged)

    def _count(self, route: routing.Route, backend: str, code: str, tagged: str) -> None:
        self._metrics.requests.labels(route.namespace, route.target, backend, code, tagged).inc()
        window = self._windows[(route.namespace, route.target)]
        window.sent += 1
        window.codes[code] += 1
        window.backends[backend] += 1

    async def _mirror(
        self, route: routing.Route, backend: str, pod: routing.Pod, body: bytes, headers: dict[str, str]
    ) -> None:
        self._metrics.mirrored.labels(route.namespace, route.target, backend).inc()
        self._windows[(route.namespace, route.target)].mirrored += 1
        try:
            async with self._session.post(
                f"http://{pod.host}:{pod.port}/v1/predict", data=body, headers=headers,
                timeout=self._mirror_timeout,
            ) as response:
                await response.read()
        except (TimeoutError, aiohttp.ClientError):
            pass  # fire and forget: a mirror's failure never reaches the user


def summary(route: routing.Route, window: Window, seconds: float) -> str:
    """One log line for one target's window.

    e.g. `ml/scorer via HTTPRoute/scorer: 98 req in 10 s (9.8/s of 10/s) codes 200=98 backends
    scorer-stable=89 scorer-canary=9 mirrored 0`
    """
    codes = " ".join(f"{c}={n}" for c, n in sorted(window.codes.items())) or "-"
    backends = " ".join(f"{b or '(none)'}={n}" for b, n in sorted(window.backends.items())) or "-"
    return (
        f"{route.namespace}/{route.target} via {route.via}: {window.sent} req in {seconds:.0f} s "
        f"({window.sent / seconds:.1f}/s of {route.rps:g}/s) codes {codes} backends {backends} "
        f"mirrored {window.mirrored}"
    )
