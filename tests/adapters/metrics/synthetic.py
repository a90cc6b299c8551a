"""A synthetic Prometheus for unit tests: raw scrapes stored as Prometheus stores them, read back
the way its range queries read them.

- A scrape stores every series of a target at the scrape's timestamp; a series that is gone
  from the next scrape, or a target that goes away, gets a stale marker.
- A range query evaluates at start, start + step, ..., end; each series' value at t is its
  latest sample at or before t within the 5-minute lookback, or nothing if that is a stale
  marker. Series are then summed by the grouping labels, as `sum by (...)` does.
- `Fetch` answers the adapter's batched queries, reading the owners, the metric name and a
  `code=~` filter out of the query text, and records every call.

`Pod` simulates a model server process: requests and errors at whole seconds, a counter per
status code that exists from its first increment, restarts that zero the counters, and scrapes
at a fixed phase with jitter and misses. `truth` is what really happened between two scrapes.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
from collections.abc import Callable
from typing import Any

from modelrollout import errors

LOOKBACK = 300.0
Labels = tuple[tuple[str, str], ...]


class Store:
    def __init__(self) -> None:
        self.samples: dict[Labels, list[tuple[float, float | None]]] = {}

    def add(self, labels: dict[str, str], t: float, value: float | None) -> None:
        """value None is a stale marker."""
        self.samples.setdefault(tuple(sorted(labels.items())), []).append((t, value))

    def value_at(self, key: Labels, t: float) -> float | None:
        found = None
        for stamp, value in self.samples[key]:
            if stamp > t:
                break
            if stamp > t - LOOKBACK:
                found = value
            if value is None:
                found = None
        return found

    def range(self, group_by: tuple[str, ...], wanted: Callable[[dict[str, str]], bool], start: float, end: float,
              step: float) -> list[dict[str, Any]]:
        out: dict[Labels, dict[float, float]] = {}
        t = start
        while t <= end + 1e-9:
            for key in self.samples:
                labels = dict(key)
                if not wanted(labels):
                    continue
                value = self.value_at(key, t)
                if value is None:
                    continue
                group = tuple((k, labels[k]) for k in group_by if k in labels)
                at = out.setdefault(group, {})
                at[t] = at.get(t, 0.0) + value
            t += step
        return [{"metric": dict(group), "values": [[stamp, str(v)] for stamp, v in sorted(points.items())]}
                for group, points in out.items()]


@dataclasses.dataclass
class Call:
    query: str
    start: float
    end: float
    step: float


class Fetch:
    """The cache's fetch function over a Store, for the presets' batched queries."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.calls: list[Call] = []
        self.fail: errors.MetricUnavailable | None = None
        self.before: Callable[[str], None] | None = None

    def __call__(self, query: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        self.calls.append(Call(query, start, end, step))
        if self.before is not None:
            self.before(query)
        if self.fail is not None:
            raise self.fail
        name = re.search(r"\(([a-zA-Z_:][a-zA-Z0-9_:]*)\{", query)
        assert name is not None, query
        filters = {label: re.compile(f"^(?:{pattern.replace(chr(92) * 2, chr(92))})$")
                   for label, pattern in re.findall(r'(\w+)=~"([^"]*)"', query)}
        group = tuple(re.search(r"by \(([^)]*)\)", query).group(1).replace(" ", "").split(","))  # type: ignore[union-attr]

        def wanted(labels: dict[str, str]) -> bool:
            return labels.get("__name__") == name.group(1) and all(
                pattern.match(labels.get(label, "")) for label, pattern in filters.items())
        return self.store.range(group, wanted, start, end, step)


@dataclasses.dataclass
class Pod:
    """One model-server process (and its restarts), scraped into a Store."""

    namespace: str
    name: str
    revision: str
    pod: str
    born: float
    phase: float
    """Offset of its scrapes within the interval."""
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    events: list[tuple[float, str]] = dataclasses.field(default_factory=list)
    """(time, code) of every request, for the truth."""
    restarts: list[float] = dataclasses.field(default_factory=list)
    scrapes: list[float] = dataclasses.field(default_factory=list)
    died: float = math.inf
    exposed: set[str] = dataclasses.field(default_factory=set)

    def labels(self, code: str) -> dict[str, str]:
        return {"__name__": "model_requests_total", "namespace": self.namespace, "modeldeployment": self.name,
                "revision": self.revision, "pod": self.pod, "track": "stable", "code": code}

    def serve(self, t: float, code: str) -> None:
        self.counts[code] = self.counts.get(code, 0) + 1
        self.events.append((t, code))

    def restart(self, t: float) -> None:
        self.counts = {}
        self.restarts.append(t)

    def scrape(self, store: Store, t: float) -> None:
        """Stores every series; one that disappeared since the last scrape gets a stale marker."""
        self.scrapes.append(t)
        for code in self.exposed - set(self.counts):
            store.add(self.labels(code), t, None)
        for code, value in self.counts.items():
            store.add(self.labels(code), t, float(value))
        self.exposed = set(self.counts)

    def die(self, store: Store, t: float) -> None:
        self.died = t
        for code in self.exposed:
            store.add(self.labels(code), t, None)

    def truth(self, after: float, until: float, codes: Callable[[str], bool] = lambda _: True) -> int:
        """Requests the scrapes can account for: those between the last scrape at or before `after`
        (the pod's birth if none) and the last scrape at or before `until`, less those lost between
        a restart's last scrape and the restart."""
        before = [s for s in self.scrapes if s <= after]
        low = before[-1] if before else self.born - 0.5  # all it served since it began
        high = max([s for s in self.scrapes if s <= until], default=low)
        lost = []
        for restart in self.restarts:
            last = max([s for s in self.scrapes if s < restart], default=self.born)
            lost.append((last, restart))
        return sum(1 for t, code in self.events if low < t <= high and codes(code)
                   and not any(a < t < b for a, b in lost))


def world(seed: int, start: float, end: float, interval: float = 15.0, name: str = "a",
          store: Store | None = None) -> tuple[Store, list[Pod]]:
    """Two revisions of one ModelDeployment (`name`, into `store` if given) with every nuisance of
    a real cluster.

    old-0, old-1: stable pods from before the window; old-1 restarts mid-window.
    new-0: a canary pod from before the window; new-1 is born mid-window; new-0 dies late.
    Requests arrive at random whole seconds; 2 % fail with 500, and 503s start mid-window
    (a new series). Scrapes are jittered by up to 40 ms and 5 % are missed.
    """
    rng = random.Random(seed)
    store = store or Store()
    pods = [
        Pod("ml", name, "old", f"{name}-old-0", born=start - 600, phase=3.0),
        Pod("ml", name, "old", f"{name}-old-1", born=start - 600, phase=11.0),
        Pod("ml", name, "new", f"{name}-new-0", born=start - 300, phase=7.0),
        Pod("ml", name, "new", f"{name}-new-1", born=start + 100, phase=1.0),
    ]
    restart_at, die_at, errors_from = start + 200, end - 70, start + 150
    t = start - 600.0
    while t <= end + 60:
        for pod in pods:
            if not pod.born <= t < pod.died:
                continue
            if pod.pod.endswith("old-1") and t == restart_at:
                pod.restart(t)
            for _ in range(rng.randint(0, 6)):
                draw = rng.random()
                code = "500" if draw < 0.02 else "503" if t >= errors_from and draw < 0.03 else "200"
                pod.serve(t, code)
            if pod.pod.endswith("new-0") and t >= die_at:
                pod.die(store, t + 0.5)
        for pod in pods:
            if pod.born <= t < pod.died and t % interval == pod.phase and rng.random() > 0.05:
                pod.scrape(store, t + rng.uniform(0.0, 0.04))
        t += 1.0
    return store, pods
