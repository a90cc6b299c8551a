"""How the analysis decides: the error budget, the data-quality gate, the pass rule and the limits.

Called *settings*, like kopf's: one small frozen value with a documented default per field, and
`DEFAULT` for the common case (as httpx has `DEFAULT_TIMEOUT_CONFIG`). The handler builds one per
ModelDeployment from `spec.analysis` and passes it down; the judges read it and never change it.
"""

from __future__ import annotations

import dataclasses
import enum


class PassRule(str, enum.Enum):
    """When a test that has not failed may PASS at the end of an analysis window.

    Any test PASSes at any time when its confidence sequence lies entirely on the good side of
    the limit ("surely no worse"). These rules only say what else may PASS when the window closes.
    """

    NOT_FAILED = "not-failed"
    """No evidence of a regression after the minimum samples: what Argo and Flagger do."""
    ESTIMATE = "estimate"
    """Also the point estimate must be on the good side of the limit; otherwise INCONCLUSIVE
    extends the window (free for an anytime-valid test)."""
    CONFIDENT = "confident"
    """Only the confidence sequence may PASS; otherwise INCONCLUSIVE."""


@dataclasses.dataclass(frozen=True)
class AnalysisSettings:
    """The analysis settings of one ModelDeployment."""

    alpha: float = 0.01
    """Probability of rolling back a canary that is within its SLOs and tolerances, per complete
    rollout, however often it is looked at. Split evenly over every test of every metric
    (Bonferroni), and spent once per rollout: the evidence carries across steps. 1 % keeps a
    team that ships daily at about three false rollbacks a year."""

    min_requests: float = 100.0
    """Requests (or histogram observations) each track needs before any verdict; fewer gives
    INCONCLUSIVE. The tests are valid at any sample size; this guards the approximations and
    catches a canary that receives no traffic. At least 1: nothing passes on no data."""

    min_events: float = 0.0
    """Events (errors, observations beyond the boundary) both tracks together need before any
    verdict. 0 lets a canary and a stable with no errors at all pass."""

    compare_pass: PassRule = PassRule.NOT_FAILED
    """Pass rule for canary-versus-stable comparisons at the end of a window."""

    slo_pass: PassRule = PassRule.ESTIMATE
    """Pass rule for absolute SLO gates at the end of a window: a canary whose measured value
    breaks its SLO is not promoted on weak evidence, it waits for more."""

    consecutive_error_limit: int = 4
    """ERROR ticks in a row tolerated (retrying) before the analysis holds the rollout for a
    human; as Argo's consecutiveErrorLimit. An unreadable Prometheus never rolls back by itself."""

    inconclusive_limit: int = 2
    """Extra analysis windows granted when a window ends INCONCLUSIVE; beyond it the rollout holds
    for a human. Extending is free: the tests are valid under optional continuation."""

    promote_early: bool = False
    """Promote before the window ends when every test PASSes surely. Off: a step lasts at least
    its duration, so slow-burning regressions get the full window."""

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.min_requests < 1 or self.min_events < 0:
            raise ValueError("min_requests must be at least 1 (no verdict on no data) and min_events not negative")
        if self.consecutive_error_limit < 0 or self.inconclusive_limit < 0:
            raise ValueError("limits must not be negative")


DEFAULT = AnalysisSettings()
