"""Leader election: the pure timing of `Election`, then two `Leadership` loops sharing one Lease
held in memory (compare-and-swap on resourceVersion, as the API server does), on a clock the
tests step by hand."""

from __future__ import annotations

import asyncio
import copy
import math
from typing import Any, cast

import pytest

from modelrollout import config, errors
from modelrollout.adapters.cluster import kube
from modelrollout.runtime import leadership
from modelrollout.runtime.leadership import Action, Election, Timing

HELD_BY_A = {"holderIdentity": "a", "renewTime": "t1", "leaseDurationSeconds": 12}


@pytest.mark.parametrize("seen_for, expected", [
    (0.0, Action.FOLLOW),
    (11.9, Action.FOLLOW),
    (12.0, Action.ACQUIRE),  # unchanged for a whole lease duration, as seen from here
    (30.0, Action.ACQUIRE),
])
def test_a_follower_takes_over_once_the_record_stood_still_for_the_lease_duration(
        seen_for: float, expected: Action) -> None:
    election = Election("b", Timing())
    assert election.next_action(HELD_BY_A, now=100.0) is Action.FOLLOW
    assert election.next_action(HELD_BY_A, now=100.0 + seen_for) is expected


def test_a_renewal_restarts_the_follower_wait() -> None:
    election = Election("b", Timing())
    election.next_action(HELD_BY_A, now=100.0)
    renewed = dict(HELD_BY_A, renewTime="t2")
    assert election.next_action(renewed, now=110.0) is Action.FOLLOW
    assert election.next_action(renewed, now=121.9) is Action.FOLLOW
    assert election.next_action(renewed, now=122.0) is Action.ACQUIRE


def test_the_holders_own_duration_counts_and_a_released_lease_is_taken_at_once() -> None:
    election = Election("b", Timing())
    short = dict(HELD_BY_A, leaseDurationSeconds=1)
    election.next_action(short, now=0.0)
    assert election.next_action(short, now=1.0) is Action.ACQUIRE
    assert Election("b").next_action({"holderIdentity": None, "renewTime": "t1"}, now=0.0) is Action.ACQUIRE
    assert Election("b").next_action({}, now=0.0) is Action.ACQUIRE


@pytest.mark.parametrize("now, may", [(100.0, True), (107.9, True), (108.0, False), (120.0, False)])
def test_the_leader_writes_until_the_renew_deadline_after_its_last_renewal_began(now: float, may: bool) -> None:
    election = Election("a", Timing(duration=12, renew_deadline=8, retry_period=2))
    assert election.next_action(HELD_BY_A, now=100.0) is Action.RENEW
    election.renewed(started=100.0)
    assert election.may_write(now) is may


@pytest.mark.parametrize("now, expected", [(100.0, 2.0), (110.0, 2.0), (111.0, 1.0), (112.0, 0.0), (115.0, 0.0)])
def test_a_follower_looks_again_when_the_holders_record_expires_not_a_period_later(now: float, expected: float) -> None:
    election = Election("b", Timing())
    election.next_action(HELD_BY_A, now=100.0)
    assert election.next_look(now, period=2.0) == expected


def test_the_holder_and_a_free_lease_look_every_period() -> None:
    leader = Election("a")
    leader.next_action(HELD_BY_A, now=100.0)
    assert leader.next_look(111.5, period=2.0) == 2.0
    free = Election("b")
    free.next_action({}, now=100.0)
    assert free.next_look(100.0, period=2.0) == 2.0


def test_seeing_another_holder_stops_writes_at_once() -> None:
    election = Election("a")
    election.renewed(started=100.0)
    assert election.next_action(dict(HELD_BY_A, holderIdentity="b"), now=101.0) is Action.FOLLOW
    assert not election.may_write(101.0)


def test_claims_count_transitions_and_keep_the_acquire_time_on_renewal() -> None:
    election = Election("b", Timing())
    taken = election.claim(dict(HELD_BY_A, acquireTime="t0", leaseTransitions=3), Action.ACQUIRE, "t9")
    assert taken == {"holderIdentity": "b", "renewTime": "t9", "acquireTime": "t9", "leaseTransitions": 4,
                     "leaseDurationSeconds": 12}
    renewed = election.claim(taken, Action.RENEW, "t10")
    assert renewed["acquireTime"] == "t9" and renewed["leaseTransitions"] == 4 and renewed["renewTime"] == "t10"
    assert election.claim({}, Action.ACQUIRE, "t0")["leaseTransitions"] == 0  # a new Lease: no transition yet


def test_lease_timing_is_checked_and_the_identity_is_unique_per_process() -> None:
    with pytest.raises(ValueError, match="retry period"):
        config.OperatorConfig(lease_duration="8s", lease_renew_deadline="8s")
    settings = config.OperatorConfig(leader_identity="modelrollout-7d9-x2")
    first, second = leadership.identity_of(settings), leadership.identity_of(settings)
    assert first.startswith("modelrollout-7d9-x2_") and first != second


class Leases:
    """One namespace's Leases in memory; a replace with a stale resourceVersion is a 409."""

    def __init__(self) -> None:
        self.objects: dict[str, kube.Body] = {}
        self.version = 0
        self.reachable = True

    def _check(self) -> None:
        if not self.reachable:
            raise errors.ClusterUnavailable("connection refused")

    def get(self, kind: kube.Kind, namespace: str, name: str) -> kube.Body | None:
        self._check()
        found = self.objects.get(name)
        return copy.deepcopy(found) if found else None

    def _store(self, body: kube.Body) -> kube.Body:
        self.version += 1
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.objects[body["metadata"]["name"]] = stored
        return copy.deepcopy(stored)

    def create(self, body: kube.Body) -> kube.Body:
        self._check()
        if body["metadata"]["name"] in self.objects:
            raise errors.ClusterUnavailable("409 already exists")
        return self._store(body)

    def replace(self, body: kube.Body) -> kube.Body:
        self._check()
        current = self.objects[body["metadata"]["name"]]
        if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise errors.Conflict("409 the object has been modified")
        return self._store(body)

    def holder(self) -> Any:
        return self.objects["leader"]["spec"].get("holderIdentity")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def replica(leases: Leases, identity: str, clock: Clock) -> leadership.Leadership:
    return leadership.Leadership(cast(kube.Kube, leases), "ops", "leader", identity, Timing(12, 8, 2), clock)


async def test_one_replica_leads_and_the_other_takes_over_within_the_lease_duration_after_a_crash() -> None:
    leases, clock = Leases(), Clock()
    a, b = replica(leases, "a", clock), replica(leases, "b", clock)
    await a.attempt()
    await b.attempt()
    assert leases.holder() == "a" and a.may_write() and not b.may_write()
    a.gate()
    with pytest.raises(errors.NotLeader):
        b.gate()
    for _ in range(5):  # a renews every period; b keeps following
        clock.now += 2
        await a.attempt()
        await b.attempt()
        assert a.may_write() and not b.may_write()
    crashed_at = clock.now  # a is killed: no more renewals
    while not b.may_write():
        clock.now += 2
        await b.attempt()
    assert leases.holder() == "b"
    assert clock.now - crashed_at <= 12 + 2
    assert leases.objects["leader"]["spec"]["leaseTransitions"] == 1


async def test_a_leader_cut_off_from_the_api_server_stops_writing_before_anyone_may_take_over() -> None:
    leases, clock = Leases(), Clock()
    a, b = replica(leases, "a", clock), replica(leases, "b", clock)
    await a.attempt()
    last_renewal = clock.now
    await b.attempt()
    b_saw = clock.now
    leases.reachable = False
    clock.now += 8
    assert not a.may_write()  # the gate closes on the clock, with no request needed
    with pytest.raises(errors.NotLeader):
        a.gate()
    leases.reachable = True
    clock.now = b_saw + 11.9
    await b.attempt()
    assert not b.may_write()  # b still waits: a's silence began 4 s before anyone may act
    clock.now = b_saw + 12
    await b.attempt()
    assert b.may_write() and clock.now - last_renewal >= 12


async def test_a_deposed_leader_sees_the_new_holder_and_stays_a_follower() -> None:
    leases, clock = Leases(), Clock()
    a, b = replica(leases, "a", clock), replica(leases, "b", clock)
    await a.attempt()
    await b.attempt()
    clock.now += 12  # a froze (a long pause): b takes over
    await b.attempt()
    assert b.may_write() and not a.may_write()
    await a.attempt()  # its cached Lease is stale: the renewal conflicts
    await a.attempt()  # then it reads the Lease and follows
    assert leases.holder() == "b" and not a.may_write() and b.may_write()


async def test_a_clean_exit_releases_the_lease_and_a_follower_takes_it_at_its_next_look() -> None:
    leases, clock = Leases(), Clock()
    a, b = replica(leases, "a", clock), replica(leases, "b", clock)
    await a.attempt()
    await b.attempt()
    await a.release()
    assert not a.may_write() and leases.holder() is None
    clock.now += 2
    await b.attempt()
    assert b.may_write() and leases.holder() == "b"


async def test_parked_daemons_wake_at_the_next_look_at_the_lease() -> None:
    leases, clock = Leases(), Clock()
    a = replica(leases, "a", clock)
    await a.next_turn(timeout=0.01)  # no look yet: times out
    assert not a.may_write()
    waiting = asyncio.ensure_future(a.next_turn(timeout=10))
    await asyncio.sleep(0)
    await a.attempt()
    await asyncio.wait_for(waiting, 1)
    assert a.may_write() and a.leading
    assert a.election.until == pytest.approx(clock.now + 8)
    assert not math.isinf(a.election.until)
