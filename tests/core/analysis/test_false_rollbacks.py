"""The CI-sized false-rollback check: thousands of simulated rollouts through the core's arithmetic.

Each rollout is 5 steps of 12 looks (10 % to 50 % canary weight), Poisson traffic with a shared
AR(1) load factor, and errors (or latencies, or scores) whose level moves with a shared AR(1)
factor: exactly the time variation the conditional test must cancel. Every look is a decision
point (continuous monitoring). A test fails CI when its false-rollback rate exceeds its alpha by
more than three standard errors.

The vectorised path is the judges' own arithmetic (`sequential`, `buckets`, `drift`); a sample
of runs is replayed through the public judges to prove the two agree. The last test shows the
harness has teeth: a z-test read at every look, at the same alpha, fails it.
"""

import math

import numpy as np
import pytest

from modelrollout.api.verdicts import Verdict
from modelrollout.core.analysis import buckets, checks, drift, judges, robust, samples, sequential, settings

RUNS = 3000
LOOKS = 60
WEIGHTS = np.repeat([0.1, 0.2, 0.3, 0.4, 0.5], LOOKS // 5)
CONFIG = settings.DEFAULT


def ar1(rng, sd, phi=0.9):
    out = np.empty((RUNS, LOOKS))
    out[:, 0] = rng.normal(0.0, sd, RUNS)
    noise = rng.normal(0.0, sd * math.sqrt(1 - phi * phi), (RUNS, LOOKS))
    for t in range(1, LOOKS):
        out[:, t] = phi * out[:, t - 1] + noise[:, t]
    return out


def traffic(rng, per_look=300.0):
    rate = per_look * np.exp(ar1(rng, 0.2))
    return rng.poisson(rate * (1 - WEIGHTS)).astype(float), rng.poisson(rate * WEIGHTS).astype(float)


def bound(rate, runs):
    return rate + 3.0 * math.sqrt(rate * (1.0 - rate) / runs)


def gate(n_s, n_c):
    return (np.cumsum(n_s, axis=1) >= CONFIG.min_requests) & (np.cumsum(n_c, axis=1) >= CONFIG.min_requests)


def share_failures(x_c, x_s, n_c, n_s, theta0, alpha, candidates=False):
    """Runs the judges would fail at some look where the gate is met (each track one pod here).
    With `candidates`, the events have a leading axis of alternative definitions (tail boundaries)."""
    if candidates:
        n_c, n_s = (np.broadcast_to(n, x_c.shape) for n in (n_c, n_s))
    first = robust.first_failure(robust.single_pod(n_s, x_s), robust.single_pod(n_c, x_c), theta0, True, alpha,
                                 eligible=gate(n_s[0], n_c[0]) if candidates else gate(n_s, n_c),
                                 candidates=candidates)
    return first >= 0


def error_rollouts(seed, ratio):
    rng = np.random.default_rng(seed)
    n_s, n_c = traffic(rng)
    p = 0.02 * np.exp(ar1(rng, 0.3))
    return rng.binomial(n_c.astype(int), np.minimum(p * ratio, 1.0)).astype(float), \
        rng.binomial(n_s.astype(int), p).astype(float), n_c, n_s


@pytest.mark.parametrize("alpha", [CONFIG.alpha, 0.05])
def test_error_rate_a_a_false_rollbacks_hold_alpha(alpha):
    x_c, x_s, n_c, n_s = error_rollouts(1, 1.0)
    rate = share_failures(x_c, x_s, n_c, n_s, 1.1, alpha).mean()
    assert rate <= bound(alpha, RUNS)


def test_error_rate_at_the_edge_of_the_tolerance_holds_alpha():
    # The least favourable canary: exactly 1.1x stable's error rate with tolerance 0.10.
    x_c, x_s, n_c, n_s = error_rollouts(2, 1.1)
    rate = share_failures(x_c, x_s, n_c, n_s, 1.1, 0.05).mean()
    assert rate <= bound(0.05, RUNS)
    assert rate > 0.0  # the boundary null is reachable: the check above is not vacuous


def test_the_vectorised_path_is_what_the_public_judge_decides():
    x_c, x_s, n_c, n_s = error_rollouts(3, 1.6)
    expected = share_failures(x_c, x_s, n_c, n_s, 1.1, 0.01)
    assert 0 < expected[:60].sum() < 60
    for run in range(60):
        rows = (samples.CountInterval(n_s[run, t], x_s[run, t], n_c[run, t], x_c[run, t]) for t in range(LOOKS))
        series = samples.CountSamples("e", tuple(rows))
        result = judges.compare_counts(series, checks.Comparison(tolerance=0.1), alpha=0.01)
        assert (result.verdict is Verdict.FAIL) == bool(expected[run]), result.reason


def latency_histograms(rng, shift, bounds, n):
    """Lognormal latencies moved by an AR(1) log-scale factor `shift` (shared by the tracks), binned."""
    from scipy import special

    edges = np.log(np.asarray(bounds[:-1]))
    cdf = special.ndtr((edges[None, None, :] - math.log(0.05) - shift[..., None]) / 0.5)
    probs = np.diff(np.concatenate([np.zeros((RUNS, LOOKS, 1)), cdf, np.ones((RUNS, LOOKS, 1))], axis=-1), axis=-1)
    counts = np.zeros(probs.shape)
    left, remaining = np.ones(n.shape), n.astype(int)
    for k in range(probs.shape[-1] - 1):
        counts[..., k] = rng.binomial(remaining, np.clip(probs[..., k] / np.maximum(left, 1e-300), 0, 1))
        remaining -= counts[..., k].astype(int)
        left -= probs[..., k]
    counts[..., -1] = remaining
    return counts


BOUNDS = (0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, math.inf)


def test_p99_tail_a_a_false_rollbacks_hold_alpha():
    # The boundary is chosen from stable's earlier data, so the test stays valid while it moves.
    rng = np.random.default_rng(4)
    n_s, n_c = traffic(rng)
    shared = ar1(rng, 0.15)
    stable, canary = latency_histograms(rng, shared, BOUNDS, n_s), latency_histograms(rng, shared, BOUNDS, n_c)
    boundary = buckets.predictable_boundaries(stable, 0.01, True, judges.BOUNDARY_OBSERVATIONS / 0.01)
    beyond_c = buckets.counts_beyond(canary, boundary, True)
    beyond_s = buckets.counts_beyond(stable, boundary, True)
    failed = share_failures(beyond_c, beyond_s, canary.sum(-1), stable.sum(-1), 1.0, 0.05)
    assert failed.mean() <= bound(0.05, RUNS)


def test_p99_at_the_edge_of_the_tolerance_holds_alpha():
    # The least favourable canary: every latency exactly 1.1x stable's, with tolerance 0.10 on p99.
    rng = np.random.default_rng(7)
    n_s, n_c = traffic(rng)
    shared = ar1(rng, 0.15)
    stable = latency_histograms(rng, shared, BOUNDS, n_s)
    canary = latency_histograms(rng, shared + math.log(1.1), BOUNDS, n_c)
    found = judges.tail_events(stable, canary, np.asarray(BOUNDS), 0.99, checks.Comparison(tolerance=0.1))
    failed = share_failures(found.canary, found.stable_fail, canary.sum(-1), stable.sum(-1), 1.0, 0.05, True)
    assert failed.mean() <= bound(0.05, RUNS)
    # ...while 1.5x slower is caught in most runs: the check above is not vacuous.
    slow = latency_histograms(rng, shared + math.log(1.5), BOUNDS, n_c)
    found = judges.tail_events(stable, slow, np.asarray(BOUNDS), 0.99, checks.Comparison(tolerance=0.1))
    assert share_failures(found.canary, found.stable_fail, slow.sum(-1), stable.sum(-1), 1.0, 0.05, True).mean() > 0.5


def test_drift_a_a_false_rollbacks_hold_alpha():
    rng = np.random.default_rng(5)
    n_s, n_c = traffic(rng)
    shared = ar1(rng, 0.15)
    stable, canary = latency_histograms(rng, shared, BOUNDS, n_s), latency_histograms(rng, shared, BOUNDS, n_c)
    path = sequential.running_max(drift.log_e_path(stable, canary, 0.0))
    failed = (np.where(gate(n_s, n_c), path, 0.0) >= sequential.threshold(0.05)).any(axis=1)
    assert failed.mean() <= bound(0.05, RUNS)


def test_the_harness_catches_a_test_that_peeks():
    # A one-sided two-proportion z-test at every look, at alpha 0.05, on A/A data: it must fail.
    x_c, x_s, n_c, n_s = error_rollouts(6, 1.0)
    cx, cs, nc, ns = (np.cumsum(a, axis=1) for a in (x_c, x_s, n_c, n_s))
    pooled = (cx + cs) / (nc + ns)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (cx / nc - cs / ns) / np.sqrt(pooled * (1 - pooled) * (1 / nc + 1 / ns))
    rate = (np.nan_to_num(z) > 1.645).any(axis=1).mean()
    assert rate > bound(0.05, RUNS)
