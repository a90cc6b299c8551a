"""Leader election on a coordination.k8s.io Lease, and the write gate that follows from it.

Replicas of the operator all run kopf, watch and keep their daemons; only the one holding the
Lease acts. A follower's daemons park, and the first tick after a takeover resumes from status,
which holds all progress. The Lease is the one client-go uses (holderIdentity, renewTime,
leaseDurationSeconds, leaseTransitions), so `kubectl get lease` reads as for any controller.

Why a Lease of our own and not kopf peering: peering runs the replica with the highest priority,
pauses all of them at equal priority (so each replica would need a distinct priority, which a
Deployment's identical pods do not have), and notices a crashed peer only after its `lifetime`
(60 s). It also has no notion of "stop writing now". The Lease fails over within the lease
duration plus one retry period (12 + 2 s by default), and tells each write whether it may go.

THE TIMING (`Election`, pure: the clock is passed in, tests step it by hand). Times are on this
process's monotonic clock; a wall-clock renewTime is written for people but never compared:

- A follower takes the Lease once its record (holder, renewTime) has not changed for the
  holder's leaseDurationSeconds, as seen from here, or at once when it is released (no holder).
- The leader renews every retry period. It may write until `renew_deadline` after the *start* of
  its last successful renewal: a follower first sees that renewal after it started, and waits a
  whole lease duration more, so the old leader is silent `duration - renew_deadline` (4 s)
  before anyone else may act. That margin covers clock-rate skew and a write already sent.
- Every write asks the gate first (`Leadership.gate`, run by the Kubernetes client before each
  request that is not a GET, retries included). Past the deadline it raises `errors.NotLeader`:
  a leader cut off from the API server stops at once, without waiting for its loop to notice.

Fencing the data is the other half: the status write carries the resourceVersion the decision
was based on, so a decision made on a stale object conflicts instead of overwriting a newer
one (see `handlers.progression`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import datetime
import enum
import logging
import math
import random
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from modelrollout import config, errors
from modelrollout.adapters import telemetry
from modelrollout.adapters.cluster import kube

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Timing:
    """Seconds; `retry_period < renew_deadline < duration` (OperatorConfig checks it)."""

    duration: float = 12.0
    renew_deadline: float = 8.0
    retry_period: float = 2.0


class Action(enum.Enum):
    ACQUIRE = "acquire"  # the Lease is free or its holder stopped renewing: take it
    RENEW = "renew"  # it is ours: renew it
    FOLLOW = "follow"  # someone else holds it and renews it


@dataclasses.dataclass
class Election:
    """What one replica knows about the Lease, and what it should do next. No I/O, no clock.

        e = Election("b", Timing())
        e.next_action({"holderIdentity": "a", "renewTime": "t1"}, now=100.0)  -> FOLLOW
        e.next_action({"holderIdentity": "a", "renewTime": "t1"}, now=111.9)  -> FOLLOW
        e.next_action({"holderIdentity": "a", "renewTime": "t1"}, now=112.0)  -> ACQUIRE (12 s unchanged)
        e.renewed(started=112.0); e.may_write(119.9) -> True; e.may_write(120.0) -> False
    """

    identity: str
    timing: Timing = Timing()
    seen: tuple[str, str | None] | None = None
    """The (holder, renewTime) last read from the Lease."""
    seen_since: float = 0.0
    """When that record was first read unchanged (local monotonic seconds)."""
    seen_duration: float = 0.0
    """The leaseDurationSeconds it carried."""
    until: float = -math.inf
    """This replica may write while the clock is before this."""

    def next_action(self, spec: Mapping[str, Any], now: float) -> Action:
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"))
        if record != self.seen:
            self.seen, self.seen_since = record, now
        if holder == self.identity:
            return Action.RENEW
        if not holder:
            return Action.ACQUIRE
        duration = self.seen_duration = float(spec.get("leaseDurationSeconds") or self.timing.duration)
        if now - self.seen_since >= duration:
            return Action.ACQUIRE
        self.until = -math.inf  # someone else leads: whatever this replica thought, it stops
        return Action.FOLLOW

    def claim(self, spec: Mapping[str, Any], action: Action, wall: str) -> dict[str, Any]:
        """The Lease's spec after this replica's renewal or acquisition at wall-clock time `wall`."""
        claimed = dict(spec, holderIdentity=self.identity, renewTime=wall,
                       leaseDurationSeconds=round(self.timing.duration))
        if action is Action.ACQUIRE:
            claimed["acquireTime"] = wall
            claimed["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if spec.get("holderIdentity")
                                                                                      or spec.get("acquireTime") else 0)
        return claimed

    def next_look(self, now: float, period: float) -> float:
        """Seconds until the next look at the Lease: `period`, or less when another holder's record
        expires sooner, so that a takeover waits for the expiry and not for the next period.

            seen ("a", "t1") since 100.0 with duration 12: next_look(now=111.0, period=2) -> 1.0
        """
        if self.seen is None or not self.seen[0] or self.seen[0] == self.identity:
            return period
        return max(0.0, min(period, self.seen_since + self.seen_duration - now))

    def renewed(self, started: float) -> None:
        """The write of `claim(...)`, begun at `started`, succeeded."""
        self.until = max(self.until, started + self.timing.renew_deadline)

    def step_down(self) -> None:
        self.until = -math.inf

    def may_write(self, now: float) -> bool:
        return now < self.until


def micro_time(now: datetime.datetime) -> str:
    """A Kubernetes MicroTime: 2026-12-05T07:50:00.123456Z."""
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def identity_of(settings: config.OperatorConfig) -> str:
    """The configured name (the pod's) or the host name, with a random suffix: each process is a new holder."""
    return f"{settings.leader_identity or socket.gethostname()}_{uuid.uuid4().hex[:8]}"


class Leadership:
    """The Lease loop of one replica, and its write gate.

    `run()` is a task for the life of the process; `gate()` is called from worker threads before
    every write; `may_write()` and `next_turn()` let daemons park while this replica follows."""

    def __init__(self, lease_client: kube.Kube, namespace: str, name: str, identity: str,
                 timing: Timing = Timing(), clock: Callable[[], float] = time.monotonic) -> None:
        self.kube = lease_client
        self.namespace, self.name = namespace, name
        self.election = Election(identity, timing)
        self.clock = clock
        self._lease: kube.Body | None = None  # the leader's copy of its last write: no GET before a renewal
        self._turn = asyncio.Event()
        # its own thread: a default executor busy with ticks must never delay a renewal
        self._thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="lease")
        self.leading = False
        telemetry.LEADER.labels(identity).set(0)

    @property
    def identity(self) -> str:
        return self.election.identity

    @classmethod
    def from_settings(cls, settings: config.OperatorConfig, lease_client: kube.Kube) -> Leadership:
        timing = Timing(*(settings.duration(v).total_seconds() for v in (
            settings.lease_duration, settings.lease_renew_deadline, settings.lease_retry_period)))
        return cls(lease_client, settings.lease_namespace, settings.lease_name, identity_of(settings), timing)

    def may_write(self) -> bool:
        return self.election.may_write(self.clock())

    def gate(self) -> None:
        """Raises errors.NotLeader unless this replica may write now (thread-safe: reads one float)."""
        if not self.may_write():
            telemetry.WRITE_CHECKS.labels("refused").inc()
            raise errors.NotLeader(f"{self.identity} does not hold Lease {self.namespace}/{self.name}")
        telemetry.WRITE_CHECKS.labels("allowed").inc()

    async def next_turn(self, timeout: float) -> None:
        """Returns after the next look at the Lease, or after `timeout` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._turn.wait(), timeout)

    async def run(self) -> None:
        """Renews or watches for the Lease every retry period (less 0-10 % jitter), until cancelled."""
        while True:
            await self.attempt()
            period = self.election.timing.retry_period * random.uniform(0.9, 1.0)  # jitter, never longer
            await asyncio.sleep(self.election.next_look(self.clock(), period))

    async def attempt(self) -> None:
        """One look at the Lease: renew it, take it, or follow; then tell the parked daemons."""
        started = self.clock()
        try:
            await self._try(started)
        except errors.ModelRolloutError as error:  # the API server did not answer in time, or a 409
            self._lease = None
            logger.warning("Lease %s/%s: %s", self.namespace, self.name, error)
        self._note(self.may_write())
        turn, self._turn = self._turn, asyncio.Event()
        turn.set()

    async def _call(self, method: Callable[..., kube.Body | None], *args: Any) -> kube.Body | None:
        return await asyncio.get_running_loop().run_in_executor(self._thread, method, *args)

    async def _try(self, started: float) -> None:
        lease = self._lease or await self._call(self.kube.get, kube.LEASE, self.namespace, self.name)
        if lease is None:
            lease = {"apiVersion": kube.LEASE.api_version, "kind": kube.LEASE.kind,
                     "metadata": {"name": self.name, "namespace": self.namespace},
                     "spec": self.election.claim({}, Action.ACQUIRE, micro_time(datetime.datetime.now(datetime.UTC)))}
            self._lease = await self._call(self.kube.create, lease)
            self.election.next_action(lease["spec"], started)
            self.election.renewed(started)
            return
        action = self.election.next_action(lease.get("spec") or {}, started)
        if action is Action.FOLLOW:
            self._lease = None
            return
        lease["spec"] = self.election.claim(lease.get("spec") or {}, action,
                                            micro_time(datetime.datetime.now(datetime.UTC)))
        self._lease = None
        written = await self._call(self.kube.replace, lease)
        self.election.renewed(started)
        self._lease = written

    async def release(self) -> None:
        """At a clean exit: stop writing, then hand the Lease over (no holder) so a follower takes it at once."""
        held = self.may_write()
        self.election.step_down()
        self._note(False)
        if not held:
            return
        try:
            lease = await self._call(self.kube.get, kube.LEASE, self.namespace, self.name)
            if lease is not None and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"] = dict(lease["spec"], holderIdentity=None, leaseDurationSeconds=1)
                await self._call(self.kube.replace, lease)
                logger.info("released Lease %s/%s", self.namespace, self.name)
        except errors.ModelRolloutError as error:
            logger.warning("could not release Lease %s/%s: %s", self.namespace, self.name, error)

    def _note(self, leading: bool) -> None:
        if leading != self.leading:
            self.leading = leading
            telemetry.LEADER.labels(self.identity).set(1 if leading else 0)
            logger.info("%s Lease %s/%s as %s", "holding" if leading else "not holding", self.namespace,
                        self.name, self.identity)
