"""Replica arithmetic: how many pods each revision runs at a step, within the GPU budget.

A canary step asks for a weight; this module turns it into pods. With a weighting provider
(GatewayAPI, Istio) the canary needs enough pods to carry its share, N * w / 100 rounded up
(`pods_for_weight`), and the
stable keeps as many of its N pods as the budget (`capacity.Budget.cap`) leaves room for. With
ReplicaRatio the weight *is* the pod ratio, so the split is the closest one the pods allow
(`ratio`). In both cases the split is the goal of the step, and each tick moves towards it like a
rolling update, without ever planning more pods than the budget:

* stable pods go only as candidate pods become ready: the stable keeps N - ready - u pods, where
  u is 0 when the budget has room for one more pod and 1 when it has none (then one stable pod
  makes room at a time: with maxExtraGPUs 0 an accelerator must be freed before the new pod can
  start, a one-pod dip the budget implies);
* the candidate gets whatever the budget leaves, up to its goal;
* while the stable still serves some traffic it keeps at least one pod (when two fit at all;
  with room for a single pod, a rollout replaces it and nothing serves while the new one loads).

Blue-green previews and shadows run beside the full stable instead (`beside`): they do not
take traffic from it, so the stable cannot shrink for them, and they wait for the whole room.
"""

from __future__ import annotations

import dataclasses
import fractions
import math


@dataclasses.dataclass(frozen=True)
class Split:
    """Pods of the stable and the candidate revision for one tick, and the step's goal."""

    stable: int
    candidate: int
    goal: int
    """Candidate pods that must be ready before the step's traffic moves to them."""

    stable_goal: int
    """Stable pods at the end of the step (with ReplicaRatio, the split is reached only then)."""


SLIVER = fractions.Fraction(1, 20)
"""A share of one pod small enough to round away: 34 % of 3 pods (1.02 pods) is one pod, not two."""


def pods_for_weight(total: int, weight: int) -> int:
    """Canary pods that carry `weight` % of what `total` pods carry: rounded up, but a sliver of
    less than 5 % of one pod is rounded away; at least one pod for a weight above 0.

        pods_for_weight(4, 25) -> 1
        pods_for_weight(4, 30) -> 2
        pods_for_weight(3, 34) -> 1
        pods_for_weight(10, 0) -> 0
    """
    if weight <= 0:
        return 0
    return max(1, math.ceil(fractions.Fraction(total * weight, 100) - SLIVER))


def effective_weight(stable_ready: int, candidate_ready: int) -> int:
    """The candidate's share of the ready pods, in whole percent, never 0 or 100 for a shared split.

        effective_weight(3, 1)   -> 25
        effective_weight(2, 1)   -> 33
        effective_weight(999, 1) -> 1
    """
    if candidate_ready <= 0:
        return 0
    if stable_ready <= 0:
        return 100
    share = fractions.Fraction(100 * candidate_ready, stable_ready + candidate_ready)
    return min(99, max(1, math.floor(share + fractions.Fraction(1, 2))))


def ratio(total: int, weight: int, cap: int) -> tuple[int, int]:
    """The (stable, canary) pods whose ratio comes closest to `weight`, within `cap` pods in all.

    Together they have at least `total` pods (the serving capacity does not shrink), neither side
    more than `total`; a weight above 0 gets at least one canary pod and a weight below 100 at
    least one stable pod, when the cap allows two pods (with room for one pod only, a canary step
    replaces it: the canary's pod comes first). Ties go to the total closest to `total`, then to
    fewer canary pods.

        ratio(4, 25, 4)  -> (3, 1)
        ratio(4, 5, 5)   -> (4, 1)      a spare pod brings 20 % closer to 5 % than 25 %
        ratio(4, 30, 8)  -> (4, 2)      33 % is closer than 25 %
        ratio(3, 50, 3)  -> (2, 1)
        ratio(1, 5, 1)   -> (0, 1)
    """
    best = _closest(total, weight, cap, stable_floor=True) or _closest(total, weight, cap, stable_floor=False)
    assert best is not None, "a total of at least one pod always has a split"
    return best


def _closest(total: int, weight: int, cap: int, stable_floor: bool) -> tuple[int, int] | None:
    best: tuple[fractions.Fraction, int, int] | None = None
    found: tuple[int, int] | None = None
    for pods in range(min(total, cap), min(cap, 2 * total) + 1):
        low = max(0, pods - total, 1 if weight > 0 else 0)
        high = min(total, pods - 1 if stable_floor and weight < 100 else pods)
        middle = round(pods * weight / 100)
        for canary in {min(high, max(low, guess)) for guess in (middle - 1, middle, middle + 1)}:
            if not low <= canary <= high:
                continue
            key = (abs(fractions.Fraction(100 * canary, pods) - weight), abs(pods - total), canary)
            if best is None or key < best:
                best, found = key, (pods - canary, canary)
    return found


def weighted(total: int, weight: int, cap: int, serving: int) -> tuple[int, int]:
    """The (stable, canary) goal of a weighted step: the canary carries its share, the stable keeps
    what the budget leaves, and one pod while it still serves (`serving` < 100).

        weighted(4, 25, 6, 0)    -> (4, 1)      room to surge: the stable stays whole
        weighted(4, 50, 4, 25)   -> (2, 2)      no room: pods are replaced
        weighted(4, 100, 4, 50)  -> (1, 3)      the last stable pod goes once the weight is 100
    """
    floor = 1 if serving < 100 and cap >= 2 else 0
    canary = max(0, min(pods_for_weight(total, weight), cap - floor))
    return max(floor, min(total, cap - canary)), canary


def canary(total: int, weight: int, cap: int, serving: int, ready: int, by_ratio: bool) -> Split:
    """The pods of a canary step for this tick, rolling towards the step's goal.

    `serving` is the weight traffic holds now, `ready` the canary's ready pods.

        canary(4, 25, 4, 0, 0, False)  -> Split(stable=3, candidate=1, goal=1, stable_goal=3)
        canary(4, 50, 5, 25, 1, False) -> Split(stable=3, candidate=2, goal=2, stable_goal=3)
        canary(4, 50, 5, 0, 0, True)   -> Split(stable=4, candidate=1, goal=2, stable_goal=2)
    """
    if by_ratio:
        stable_goal, goal = ratio(total, weight, cap)
    else:
        stable_goal, goal = weighted(total, weight, cap, serving)
    unavailable = 0 if cap > total else 1
    stable = min(total, max(stable_goal, total - ready - unavailable))
    return Split(stable, max(0, min(goal, cap - stable)), goal, stable_goal)


def beside(total: int, pods: int, cap: int, existing: int) -> Split:
    """The pods of a candidate that runs beside the whole stable (preview, shadow, a switch).

    The candidate gets all its pods or, when the budget has no room for all of them, no more than
    it already has: a half-built preview would only hold accelerators.

        beside(4, 4, 8, 0)  -> Split(stable=4, candidate=4, goal=4, stable_goal=4)
        beside(4, 4, 6, 0)  -> Split(stable=4, candidate=0, goal=4, stable_goal=4)
        beside(4, 2, 6, 1)  -> Split(stable=4, candidate=2, goal=2, stable_goal=4)
    """
    room = max(0, cap - total)
    candidate = pods if room >= pods else min(existing, room)
    return Split(total, candidate, pods, total)


def kept(desired: int, cap: int, active: int) -> int:
    """Pods a retiring revision keeps during its scale-down delay: what the budget leaves after the
    serving revisions (`active` pods); the serving ones come first.

        kept(4, 8, 4) -> 4
        kept(4, 6, 4) -> 2
        kept(2, 4, 4) -> 0
    """
    return max(0, min(desired, cap - active))
