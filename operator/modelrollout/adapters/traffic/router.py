"""The one interface every traffic provider implements.

A router makes its provider hold a `TrafficSplit`: the share of requests the new revision
answers, the share copied to it, and the cohort (requests matched by header or cookie) it answers
whatever the share. It reads back what the provider holds, so the handlers can tell a split that
was applied from one that was only asked for. A provider that cannot carry a split raises from
`apply` rather than carry part of it (`errors.SpecError` for a cohort it cannot route).
"""

from __future__ import annotations

from typing import Protocol

from modelrollout.adapters.cluster import manifests
from modelrollout.api import routing
from modelrollout.core import decision


class TrafficRouter(Protocol):
    def apply(self, owner: manifests.Owner, traffic: routing.Traffic, split: decision.TrafficSplit) -> None:
        """Make the provider route and mirror as `split` says (create its object if needed)."""

    def current(self, owner: manifests.Owner) -> tuple[int, int] | None:
        """(canary weight, mirror percent) the provider holds now, for requests outside any cohort;
        None if it holds nothing yet."""

    def problem(self, owner: manifests.Owner) -> str | None:
        """Why the provider's controller does not carry the split, in its words; None when it does,
        or when no controller reports on it."""
