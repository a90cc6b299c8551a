"""Per-ModelDeployment memory of one operator process, keyed by uid and dropped on delete.

A `Slot` holds what a daemon keeps between ticks: its wake-up event, what the previous
decision asked (`Asked`), the generation and command last seen, and the last status
it wrote (to read its own write before the watch brings it back). Keyed by uid, a
ModelDeployment deleted and created again under the same name starts clean.

Wake-ups come by name, from the watches of pods and Deployments (which carry the
ModelDeployment's name as a label) in their own threads; `wake` is thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from typing import Any

from modelrollout.adapters import telemetry
from modelrollout.core import decision


@dataclasses.dataclass
class Asked:
    """What the previous decision for one ModelDeployment asked the next tick to do."""

    smoke_test: str | None = None
    analysis: decision.AnalysisWindow | None = None
    spec_problem: str | None = None
    """A problem applying the last decision revealed (the API server refused a Deployment)."""
    command_error_for: str | None = None
    """The annotation value whose parse error was already reported."""
    notifications_found: int | None = None
    """The spec generation whose notification Secrets were all found."""


@dataclasses.dataclass
class Slot:
    uid: str
    namespace: str
    name: str
    wakeup: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    asked: Asked = dataclasses.field(default_factory=Asked)
    seen: Any = None
    """The (generation, command annotation) last seen: a change wakes the daemon."""
    written: dict[str, Any] | None = None
    """The ModelDeployment as the last status write returned it."""
    loop: asyncio.AbstractEventLoop | None = None
    ticked: bool = False
    """This process has ticked the object at least once (counted by `Slots.mark_ticked`)."""

    def freshest(self, live: dict[str, Any]) -> dict[str, Any]:
        """The live body, or the object our last write returned if the watch has not brought it back yet.

        resourceVersions are compared as numbers when both are (etcd's revisions are); the live
        body wins otherwise, and once it has caught up the write is forgotten.
        """
        if self.written is None:
            return live
        mine = str((self.written.get("metadata") or {}).get("resourceVersion", ""))
        theirs = str((live.get("metadata") or {}).get("resourceVersion", ""))
        if mine.isdigit() and theirs.isdigit() and int(mine) > int(theirs):
            return self.written  # the newest state known, resourceVersion included (status writes are fenced by it)
        self.written = None
        return live


class Slots:
    def __init__(self) -> None:
        self._by_uid: dict[str, Slot] = {}
        self._by_name: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self._ticked = 0

    def __len__(self) -> int:
        return len(self._by_uid)

    def get(self, uid: str, namespace: str, name: str) -> Slot:
        """The slot of this object, made on first use (the uid names it; a new uid, a new slot)."""
        with self._lock:
            slot = self._by_uid.get(uid)
            if slot is None:
                stale = self._by_name.get((namespace, name))
                if stale is not None and stale != uid:
                    self._drop(stale)
                slot = self._by_uid[uid] = Slot(uid, namespace, name)
                self._by_name[(namespace, name)] = uid
            return slot

    def forget(self, uid: str) -> Slot | None:
        with self._lock:
            slot = self._drop(uid)
            if slot is not None and self._by_name.get((slot.namespace, slot.name)) == uid:
                del self._by_name[(slot.namespace, slot.name)]
            return slot

    def mark_ticked(self, slot: Slot) -> None:
        """Counts the first tick of a live object, for the cold-start gauge (`modelrollout_objects_ticked`)."""
        with self._lock:
            if slot.ticked or self._by_uid.get(slot.uid) is not slot:  # counted already, or forgotten meanwhile
                return
            slot.ticked = True
            self._ticked += 1
            telemetry.OBJECTS_TICKED.set(self._ticked)

    def _drop(self, uid: str) -> Slot | None:
        """Removes a slot by uid, uncounting its tick; the caller holds the lock."""
        slot = self._by_uid.pop(uid, None)
        if slot is not None and slot.ticked:
            self._ticked -= 1
            telemetry.OBJECTS_TICKED.set(self._ticked)
        return slot

    def wake(self, namespace: str, name: str) -> None:
        """Wakes the daemon of the named ModelDeployment, from any thread; unknown names are ignored."""
        with self._lock:
            uid = self._by_name.get((namespace, name))
            slot = self._by_uid.get(uid) if uid else None
        if slot is None or slot.loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: the operator is stopping
            slot.loop.call_soon_threadsafe(slot.wakeup.set)
