"""The scale bench's pure parts on plain data: percentiles, /proc parsing, Ready-to-step pairing,
target verdicts, and the API-request counting it shares with the fleet smoke test."""

from __future__ import annotations

from collections import Counter

import pytest

from bench import scale
from e2e.fixtures import apiserver


def test_percentile_interpolates_between_closest_ranks() -> None:
    assert scale.percentile([], 50) is None
    assert scale.percentile([3.0], 99) == 3.0
    assert scale.percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert scale.percentile([float(v) for v in range(101)], 99) == pytest.approx(99.0)
    assert scale.percentile([1.0, 2.0], 100) == 2.0


def test_cpu_seconds_reads_utime_and_stime_even_with_a_command_holding_parentheses() -> None:
    stat = "4242 (python (x) y) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 3 0 100 0 0"
    assert scale.cpu_seconds(stat, 100) == 3.0


def test_status_kib_reads_a_field_of_proc_status() -> None:
    status = "Name:\tpython\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n"
    assert scale.status_kib(status, "VmRSS") == 102400
    assert scale.status_kib(status, "VmHWM") == 204800
    with pytest.raises(ValueError):
        scale.status_kib(status, "VmSwap")


def test_ready_to_step_pairs_each_ready_with_the_next_move_of_the_same_object() -> None:
    readies = {"a": [10.0], "b": [20.0], "c": [30.0]}
    moves = {"a": [5.0, 10.4, 12.0], "b": [21.5], "c": [29.0]}  # c never moved after its pod turned Ready
    assert scale.ready_to_step(readies, moves) == pytest.approx([0.4, 1.5])


def test_judge_reads_each_target() -> None:
    assert scale.judge("ready_to_step_p99_s", 1.9) == "pass"
    assert scale.judge("ready_to_step_p99_s", 2.1) == "miss"
    assert scale.judge("steady_state_lists", 0) == "pass"
    assert scale.judge("prometheus_bytes_per_rollout_ratio", 1.3) == "pass"
    assert scale.judge("prometheus_bytes_per_rollout_ratio", 0.4) == "miss"
    assert scale.judge("cold_start_s", None) == "n/a"


def test_a_run_replaces_its_own_row_and_keeps_the_other() -> None:
    stored = {"current": {"objects": 1}, "baseline": {"objects": 100, "commit": "26ef7fd"}}
    assert scale.merged(stored, {"objects": 1000}, as_baseline=False) == {
        "current": {"objects": 1000}, "baseline": {"objects": 100, "commit": "26ef7fd"}}
    assert scale.merged(stored, {"objects": 50}, as_baseline=True)["baseline"] == {"objects": 50}


def test_measures_fall_back_to_the_api_servers_lists_for_a_baseline_without_its_own_count() -> None:
    row = {"progressing_window": {"requests_per_second": 150.0, "lists_with_operator_and_without": [900, 100]},
           "prometheus": [{"bytes_per_interval_per_rollout": 100}, {"bytes_per_interval_per_rollout": 120}]}
    figures = scale.measures(row)
    assert figures["steady_state_lists"] == 800
    assert figures["prometheus_bytes_per_rollout_ratio"] == 1.2
    assert figures["cold_start_s"] is None


METRICS = """# HELP apiserver_request_total Counter of apiserver requests
apiserver_request_total{code="200",component="apiserver",resource="pods",verb="LIST",version="v1"} 12
apiserver_request_total{code="200",component="apiserver",resource="pods",verb="WATCH",version="v1"} 3
apiserver_request_total{code="200",component="apiserver",resource="leases",verb="PUT",version="v1"} 500
apiserver_request_total{code="201",component="apiserver",resource="pods",verb="LIST",version="v1"} 1e+01
modelrollout_kube_requests_total{code="200",resource="deployments",verb="PATCH"} 4.0
modelrollout_kube_requests_total{code="409",resource="modeldeployments",verb="PATCH"} 1.0
"""


def test_request_counts_parse_by_verb_and_leave_heartbeats_out() -> None:
    assert apiserver.parse_server_requests(METRICS) == Counter({("LIST", "pods"): 22, ("WATCH", "pods"): 3})
    assert apiserver.parse_own_requests(METRICS) == Counter({"PATCH": 5})


def test_a_window_subtracts_the_background_per_verb() -> None:
    window = apiserver.Window(Counter({("LIST", "pods"): 30, ("PATCH", "x"): 20}),
                              Counter({("LIST", "pods"): 30, ("GET", "y"): 5}), seconds=10)
    assert window.operator_total == 15
    assert window.per_second == 1.5
    assert window.per_second_by_verb() == {"GET": 0.0, "LIST": 0.0, "PATCH": 2.0}
    assert window.lists() == (30, 30)
