"""Bursts and pod spread, learnt from the stable pods: what the estimates see, and that they are predictable."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelrollout.core.analysis import robust, sequential

INTERVALS = 80


def world(rng, runs, rps=100.0, burst=1.0, pod_sd=0.0, ratio=1.0, canary_pods=1, stable_pods=9, base=0.01):
    """Per-pod requests and errors, 15 s intervals, a 10 % canary: (stable Pods, canary Pods)."""
    per_pod_s = rps * 15.0 * 0.9 / stable_pods
    per_pod_c = rps * 15.0 * 0.1 / canary_pods
    n_s = rng.poisson(per_pod_s, (runs, stable_pods, INTERVALS)).astype(float)
    n_c = rng.poisson(per_pod_c, (runs, canary_pods, INTERVALS)).astype(float)
    u_s = np.exp(rng.normal(0.0, pod_sd, (runs, stable_pods, 1)))
    u_c = np.exp(rng.normal(0.0, pod_sd, (runs, canary_pods, 1)))

    def errors(n, factor):
        mean = n * base * factor
        if burst <= 1.0:
            return rng.poisson(mean).astype(float)
        clusters = rng.poisson(mean / burst)
        return (clusters + rng.poisson(clusters * (burst - 1.0))).astype(float)

    return robust.Pods(n_s, errors(n_s, u_s)), robust.Pods(n_c, errors(n_c, u_c * ratio))


def test_independent_errors_are_not_tempered_once_the_data_can_tell():
    stable, canary = world(np.random.default_rng(1), 200)
    phi = robust.dispersion(stable, canary)
    assert (phi[:, 0] == robust.DEFAULT_KNOBS.prior_dispersion).all()  # no data yet: a burst is assumed
    assert np.mean(phi[:, 20:] == 1.0) > 0.95


def test_bursts_of_three_are_seen_as_such():
    stable, canary = world(np.random.default_rng(2), 200, burst=3.0)
    phi = robust.dispersion(stable, canary)
    # clusters of 1 + Poisson(2): E[K^2]/E[K] = (2 + 9) / 3
    assert np.median(phi[:, -1]) == pytest.approx(11.0 / 3.0, rel=0.15)


def test_the_estimates_are_predictable():
    """Changing interval t's data changes nothing at or before t: every factor is a fair bet."""
    stable, canary = world(np.random.default_rng(3), 1, burst=2.0, pod_sd=0.3)
    phi = robust.dispersion(stable, canary)
    tau = robust.spread(stable, phi)
    t = 40
    bumped = robust.Pods(stable.requests, stable.events.copy())
    bumped.events[..., 0, t] += 50.0
    phi2 = robust.dispersion(bumped, canary)
    tau2 = robust.spread(bumped, phi2)
    np.testing.assert_array_equal(phi[..., : t + 1], phi2[..., : t + 1])
    np.testing.assert_array_equal(tau[..., : t + 1], tau2[..., : t + 1])
    assert not np.array_equal(phi[..., t + 1 :], phi2[..., t + 1 :])


def test_pods_alike_have_no_spread_and_pods_that_differ_do():
    alike, _ = world(np.random.default_rng(4), 100, rps=1000.0)
    differ, _ = world(np.random.default_rng(4), 100, rps=1000.0, pod_sd=0.3)
    ones = np.ones((100, INTERVALS))
    assert np.mean(robust.spread(alike, ones)[:, -1] == 0.0) > 0.95
    assert np.median(robust.spread(differ, ones)[:, -1]) == pytest.approx(0.3, rel=0.35)


def test_allowance_shrinks_with_more_canary_pods():
    stable, one = world(np.random.default_rng(5), 1, canary_pods=1)
    _, four = world(np.random.default_rng(5), 1, canary_pods=4)
    tau = np.full((1, INTERVALS), 0.25)
    assert (robust.allowance(tau, stable, one, 0.003) > robust.allowance(tau, stable, four, 0.003)).all()
    assert robust.allowance(np.zeros((1, INTERVALS)), stable, one, 0.003) == pytest.approx(1.0)


def test_a_canary_pod_that_differs_like_stable_pods_do_is_not_rolled_back_for_it():
    # A/A with pods 30 % apart at 1000 req/s: the plain binomial rolls back a large share.
    stable, canary = world(np.random.default_rng(6), 300, rps=1000.0, pod_sd=0.3)
    robust_rate = np.mean(robust.first_failure(stable, canary, 1.1, True, 0.01 / 3) >= 0)
    x, n_c, n_s = canary.total_events, canary.total_requests, stable.total_requests
    path = sequential.log_mixture_path(sequential.share_log_lr(
        x, x + stable.total_events, n_c / n_s, 1.1, sequential.signed_offsets(True)))
    plain_rate = np.mean((path >= sequential.threshold(0.01 / 3)).any(axis=-1))
    assert plain_rate > 0.05
    assert robust_rate <= 0.02


def test_a_doubled_error_rate_is_still_caught():
    stable, canary = world(np.random.default_rng(7), 200, ratio=2.0)
    first = robust.first_failure(stable, canary, 1.1, True, 0.01 / 3)
    assert np.mean(first >= 0) > 0.95


def _cut(pods, run, end):
    return robust.Pods(pods.requests[run, :, :end], pods.events[run, :, :end])


def test_first_failure_is_where_compare_first_decides():
    stable, canary = world(np.random.default_rng(8), 30, ratio=1.8, pod_sd=0.2, burst=1.5)
    first = robust.first_failure(stable, canary, 1.1, True, 0.01 / 3)
    level = sequential.threshold(0.01 / 3)
    checked = 0
    for run in range(30):
        at = int(first[run])
        looks = [INTERVALS] if at < 0 else [at, at + 1]
        for end in looks:
            decided = robust.compare(_cut(stable, run, end), _cut(canary, run, end), 1.1, True,
                                     0.01 / 3).log_e_decisive >= level
            # compare reads running maxima, so "decided at end" means "decided by end"
            assert decided == (at >= 0 and end == at + 1), (run, at, end)
            checked += 1
    assert checked > 30


def test_candidates_are_averaged_into_one_e_process():
    stable, canary = world(np.random.default_rng(9), 1, ratio=3.0)
    quiet = robust.Pods(stable.requests, stable.events)
    stacked_s = robust.Pods(np.stack([quiet.requests, quiet.requests]), np.stack([quiet.events, quiet.events]))
    same = robust.Pods(np.stack([canary.requests, canary.requests]), np.stack([canary.events, canary.events]))
    single = robust.compare(quiet, canary, 1.1, True, 0.01)
    doubled = robust.compare(stacked_s, same, 1.1, True, 0.01, candidates=True)
    # two identical candidates average to the same e-process
    assert doubled.log_e == pytest.approx(single.log_e, rel=1e-9)
    assert math.isfinite(doubled.log_e_now)
