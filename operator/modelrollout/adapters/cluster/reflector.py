"""A reflector: one LIST, then one long WATCH, of one kind, keeping a small projection per object.

Why our own and not kopf's indexes: one mechanism serves every kind the operator reads,
namespaced or cluster-wide, with its own server-side label or field selector (kopf ANDs the
selectors of all handlers of a kind, so it cannot watch our pods and every bound pod at once);
a relist *replaces* the map and reports every difference, so an object deleted while the
watch was down leaves no ghost (kopf keeps stale index entries until a restart); it keeps only
the projection, never a whole body; and it is a plain class over two client calls, so it is
tested with a fake client and no event loop.

The loop, in a daemon thread:

1. LIST in pages of 500 and `replace` the map (each change reported to `on_change`);
2. WATCH from the list's resourceVersion; ADDED/MODIFIED/DELETED update the map, BOOKMARK
   only moves the resourceVersion; when the server ends the watch (every `timeout_s`) it is
   opened again from the last resourceVersion, without a LIST;
3. a 410 Gone (the version is too old) relists once; a broken connection waits a jittered
   back-off (0.5 s doubling to 30 s, x U(0.5, 1.5)) and resumes the watch, relisting only if
   the server says the version is gone.

`project(body)` returns the projection to keep, or None to keep nothing for that object.
`on_change(old, new)` is called (in the reflector's thread) only when a projection differs.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Hashable, Iterator
from typing import Any, Generic, Protocol, TypeVar

from modelrollout import errors
from modelrollout.adapters.cluster import kube

P = TypeVar("P")
Body = dict[str, Any]
LOG = logging.getLogger(__name__)
PAGE = 500
MAX_BACKOFF_S = 30.0


class Source(Protocol):
    """The two calls a reflector makes (kube.Kube has them; tests pass a fake)."""

    def list_chunk(self, kind: kube.Kind, namespace: str | None, selector: str = "", fields: str = "",
                   limit: int = 500, token: str = "") -> kube.Page: ...

    def watch(self, kind: kube.Kind, namespace: str | None, resource_version: str, selector: str = "",
              fields: str = "", timeout_s: int = 300) -> Iterator[tuple[str, Body]]: ...


class Gone(Exception):
    """The watch's resourceVersion is too old (410): relist."""


def uid_of(body: Body) -> str:
    meta = body.get("metadata") or {}
    return str(meta.get("uid") or f"{meta.get('namespace', '')}/{meta.get('name', '')}")


class Reflector(Generic[P]):
    def __init__(self, source: Source, kind: kube.Kind, project: Callable[[Body], P | None], *,
                 namespace: str | None = None, selector: str = "", fields: str = "",
                 key: Callable[[P], Hashable] | None = None,
                 on_change: Callable[[P | None, P | None], None] | None = None, timeout_s: int = 300) -> None:
        self.source, self.kind, self.project, self.key = source, kind, project, key
        self.namespace, self.selector, self.fields, self.timeout_s = namespace, selector, fields, timeout_s
        self.on_change = on_change
        self.synced = threading.Event()
        """Set once the first LIST is in the map."""
        self.lists = 0
        self.restarts = 0
        self.on_restart: Callable[[str], None] | None = None
        """Told the resource each time the watch is opened again after an error, or relisted."""
        self._items: dict[str, P] = {}
        self._by_key: dict[Hashable, dict[str, P]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._version = ""
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Reflector({self.kind.plural}, {self.namespace or '*'}, {self.selector or self.fields or 'all'})"

    # reading
    def items(self) -> list[P]:
        with self._lock:
            return list(self._items.values())

    def get(self, key: Hashable) -> list[P]:
        """The projections whose `key` is `key` (an index kept up to date with the map)."""
        with self._lock:
            return list(self._by_key.get(key, {}).values())

    def __len__(self) -> int:
        return len(self._items)

    # the loop
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self.run, name=repr(self), daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                if not self._version:
                    self.relist()
                self.watch_once()
                failures = 0
            except Gone:
                self._version = ""
                self._restarted()
            except errors.ClusterError as error:
                failures += 1
                self._restarted()
                delay = backoff(failures)
                LOG.warning("%r: %s; again in %.1f s", self, error, delay)
                self._stop.wait(delay)
            except Exception:  # a bug must not end the cache for good
                failures += 1
                LOG.exception("%r failed", self)
                self._stop.wait(backoff(failures))

    def _restarted(self) -> None:
        self.restarts += 1
        if self.on_restart is not None:
            self.on_restart(self.kind.plural)

    def relist(self) -> None:
        fresh: dict[str, P] = {}
        token, version = "", ""
        while True:
            page, version, token = self.source.list_chunk(self.kind, self.namespace, self.selector, self.fields,
                                                          PAGE, token)
            for body in page:
                projected = self.project(body)
                if projected is not None:
                    fresh[uid_of(body)] = projected
            if not token:
                break
        self.lists += 1
        self.replace(fresh)
        self._version = version
        self.synced.set()

    def watch_once(self) -> None:
        for kind, body in self.source.watch(self.kind, self.namespace, self._version, self.selector,
                                            self.fields, self.timeout_s):
            if self._stop.is_set():
                return
            if kind == "ERROR":
                if body.get("code") == 410:
                    raise Gone(str(body.get("message", "")))
                raise errors.ClusterUnavailable(f"watch {self.kind.plural}: {body.get('message', body)}")
            version = (body.get("metadata") or {}).get("resourceVersion")
            if kind == "DELETED":
                self.put(uid_of(body), None)
            elif kind in ("ADDED", "MODIFIED"):
                self.put(uid_of(body), self.project(body))
            if version:
                self._version = str(version)

    # the map
    def put(self, uid: str, new: P | None) -> None:
        with self._lock:
            old = self._items.pop(uid, None) if new is None else self._items.get(uid)
            if new is not None:
                self._items[uid] = new
            self._index(uid, old, new)
        if old != new and self.on_change is not None:
            self.on_change(old, new)

    def replace(self, fresh: dict[str, P]) -> None:
        """Takes a relisted map, reporting what was added, changed and deleted meanwhile."""
        with self._lock:
            old, self._items = self._items, dict(fresh)
            if self.key is not None:
                self._by_key = {}
                for uid, item in fresh.items():
                    self._by_key.setdefault(self.key(item), {})[uid] = item
        if self.on_change is None:
            return
        for uid, before in old.items():
            after = fresh.get(uid)
            if before != after:
                self.on_change(before, after)
        for uid, after in fresh.items():
            if uid not in old:
                self.on_change(None, after)

    def _index(self, uid: str, old: P | None, new: P | None) -> None:
        if self.key is None:
            return
        if old is not None:
            bucket = self._by_key.get(self.key(old), {})
            bucket.pop(uid, None)
            if not bucket:
                self._by_key.pop(self.key(old), None)
        if new is not None:
            self._by_key.setdefault(self.key(new), {})[uid] = new


def backoff(failures: int) -> float:
    """Seconds to wait after `failures` failures in a row: 0.5 s doubling to 30 s, jittered x U(0.5, 1.5).

        backoff(1) -> 0.25..0.75;  backoff(3) -> 1..3;  backoff(20) -> 15..45
    """
    return min(MAX_BACKOFF_S, 0.5 * 2.0 ** (failures - 1)) * random.uniform(0.5, 1.5)

