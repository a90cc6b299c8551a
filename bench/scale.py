"""`make bench-scale`: the operator at fleet scale on the e2e world (issue 11, part 6).

N ModelDeployments in one namespace (default 1,000; `--objects` or BENCH_SCALE_OBJECTS): most are
one kwok pod that gets no process (`e2e.modelrollout.io/run: "none"`) and sit Succeeded; P of them
(default 50; `--progressing` or BENCH_SCALE_PROGRESSING) have real model-server pods, load-generator
traffic and a canary given a new version, so they are mid-analysis while the fleet is measured.

In order:
1. everything created in bulk (multi-document server-side applies), the operator started from source
   with a higher client QPS so that setup is quick, until all N are Succeeded;
2. idle: `apiserver_request_total` over a window with the operator running, then stopped (background);
3. cold start: the operator started again (default client settings, as in the chart), timed until
   every object has ticked once (its `modelrollout_objects_ticked` gauge);
4. half the canaries get a new version; once under analysis, the operator's Prometheus counters over
   a window; then the other half, and the same again (bytes should follow the rollouts analysed);
5. progressing: requests over a window with the operator running, then stopped, with its RSS, CPU;
6. throughout, the bench watches Pods and ModelDeployments itself: from a canary pod turning Ready
   (as the watch delivers it, monotonic clock) to its ModelDeployment's step or phase changing.

Prints a table with each target's pass or miss and writes bench/results/scale.json. The `baseline`
row there (the code before issue 11, at its own N) is kept as stored; `--baseline PATH` measures it
again with the operator found at PATH (e.g. a `git worktree` of commit 26ef7fd, `PATH/operator`).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import datetime
import json
import math
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "scale.json"

OBJECTS, PROGRESSING = 1000, 50
ON_GPUS = 8
WINDOW_S = 60.0
ANALYSIS_INTERVAL_S = 10
PROGRESSING_RPS = 2
"""Load per progressing object: enough samples for the analysis, little CPU for 2 cores."""
SERIES_SETTLE_S = 40
"""Two scrapes (15 s) and an analysis interval after the last canary is analysed: its series exist."""
PODS_PER_BENCH_NODE = 500
SETUP_QPS, SETUP_BURST = "100", "200"
"""The operator's client limits while the fleet is created (the measured runs use the defaults, 20/30)."""
BASELINE_COMMIT = "26ef7fd"

TARGETS: dict[str, tuple[str, float]] = {
    # measure key -> (comparison, bound)
    "idle_requests_per_second_per_object": ("<=", 0.01),
    "progressing_requests_per_second": ("<=", 20.0),
    "steady_state_lists": ("<=", 0),
    "ready_to_step_p99_s": ("<=", 2.0),
    "cold_start_s": ("<=", 60.0),
    "rss_mib": ("<=", 300.0),
    "prometheus_bytes_per_rollout_ratio": ("within", 0.5),
}
"""Issue 11's targets. The Prometheus one: the bytes per interval per rollout under analysis at P/2
and at P differ by at most 50 % (bytes follow the rollouts analysed, not the fleet)."""


# -- pure parts (tests/bench/test_scale.py) ------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation between closest ranks, None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def cpu_seconds(stat: str, ticks_per_second: float) -> float:
    """utime + stime of a /proc/<pid>/stat line, in seconds (the command may hold spaces and parentheses)."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / ticks_per_second  # fields 14 and 15 of proc(5)


def status_kib(status: str, field: str) -> int:
    """A `VmRSS:  1234 kB` line of /proc/<pid>/status, in KiB."""
    for line in status.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise ValueError(f"no {field} in /proc status")


def ready_to_step(readies: dict[str, list[float]], moves: dict[str, list[float]]) -> list[float]:
    """For each canary pod turning Ready, the seconds until its ModelDeployment's next step move
    (none if it never moved after)."""
    out = []
    for name, times in readies.items():
        for ready in times:
            after = [m for m in moves.get(name, []) if m >= ready]
            if after:
                out.append(min(after) - ready)
    return out


def judge(measure: str, value: float | None) -> str:
    """'pass', 'miss', or 'n/a' for a value not measured."""
    if value is None:
        return "n/a"
    comparison, bound = TARGETS[measure]
    if comparison == "<=":
        return "pass" if value <= bound else "miss"
    return "pass" if abs(value - 1.0) <= bound else "miss"


def merged(stored: dict[str, Any], run: dict[str, Any], as_baseline: bool) -> dict[str, Any]:
    """The JSON to write: this run as `current` (or `baseline`), the other row kept as stored."""
    out = dict(stored)
    out["baseline" if as_baseline else "current"] = run
    return out


# -- the run -------------------------------------------------------------------------------------


@dataclasses.dataclass
class Watcher:
    """The bench's own watches of Pods and ModelDeployments in the namespace, with monotonic receipt times."""

    kubeconfig: Path
    namespace: str
    readies: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    moves: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    statuses: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    _ready_pods: set[str] = dataclasses.field(default_factory=set)
    _stop: threading.Event = dataclasses.field(default_factory=threading.Event)
    _threads: list[threading.Thread] = dataclasses.field(default_factory=list)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def start(self) -> None:
        from kubernetes import client, config

        api = config.new_client_from_config(config_file=str(self.kubeconfig))
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        pods = lambda **kw: core.list_namespaced_pod(self.namespace, **kw)  # noqa: E731
        mdeps = lambda **kw: custom.list_namespaced_custom_object(  # noqa: E731
            "modelrollout.io", "v1alpha1", self.namespace, "modeldeployments", **kw)
        for lister, on_event in ((pods, self._pod), (mdeps, self._mdep)):
            thread = threading.Thread(target=self._follow, args=(lister, on_event), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def _follow(self, lister: Callable[..., Any], on_event: Callable[[dict[str, Any], float], None]) -> None:
        from kubernetes import watch

        while not self._stop.is_set():
            try:  # the listers are lambdas, so the client hands back plain dicts
                for event in watch.Watch().stream(lister, timeout_seconds=10, _request_timeout=30):
                    on_event(event["object"], time.monotonic())
                    if self._stop.is_set():
                        return
            except Exception as error:  # an expired or broken watch is opened again (a relist)
                print(f"  bench watch: {type(error).__name__}: {error}", flush=True)
                self._stop.wait(1.0)

    def _pod(self, pod: dict[str, Any], at: float) -> None:
        meta = pod["metadata"]
        labels = meta.get("labels") or {}
        if labels.get("modelrollout.io/track") != "canary" or meta["uid"] in self._ready_pods:
            return
        conditions = (pod.get("status") or {}).get("conditions") or []
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            with self._lock:
                self._ready_pods.add(meta["uid"])
                self.readies.setdefault(labels.get("modelrollout.io/name", ""), []).append(at)

    def _mdep(self, body: dict[str, Any], at: float) -> None:
        name, status = body["metadata"]["name"], body.get("status") or {}
        with self._lock:
            before = self.statuses.get(name)
            self.statuses[name] = status
            if before is not None and (before.get("currentStep"), before.get("phase")) != (
                    status.get("currentStep"), status.get("phase")):
                self.moves.setdefault(name, []).append(at)

    def count(self, check: Callable[[dict[str, Any]], bool], names: Sequence[str] | None = None) -> int:
        with self._lock:
            chosen = self.statuses.items() if names is None else [(n, self.statuses.get(n, {})) for n in names]
            return sum(1 for _, status in chosen if check(status))


def _succeeded(status: dict[str, Any]) -> bool:
    return status.get("phase") == "Succeeded"


def _analysing(status: dict[str, Any]) -> bool:
    return status.get("phase") == "Progressing" and status.get("currentStep") == 1


def progressing_body(name: str, version: str) -> dict[str, Any]:
    """A one-replica canary behind an HTTPRoute with real model-server pods and a little traffic:
    setWeight 50 (its canary pod turning Ready moves the step), then an analysis that outlasts the bench."""
    from e2e.fixtures import given

    body = copy.deepcopy(given.example("canary-gateway-api"))
    body["metadata"] = {"name": name, "annotations": {given.RPS_ANNOTATION: str(PROGRESSING_RPS)}}
    spec = body["spec"]
    spec["replicas"] = 1
    spec["model"]["version"] = version
    for key in ("gpuPool", "smokeTest"):
        spec.pop(key)
    template = spec["template"]["spec"]
    template.pop("tolerations")
    template["containers"][0].pop("resources")
    spec["strategy"]["canary"]["steps"] = [{"setWeight": 50}, {"analyze": {"duration": "30m"}}]
    spec["analysis"]["interval"] = f"{ANALYSIS_INTERVAL_S}s"
    spec["analysis"]["metrics"] = [m for m in spec["analysis"]["metrics"] if "query" not in m]  # presets: batched
    return body


def _wait(what: str, check: Callable[[], bool], timeout: float, interval: float = 2.0,
          progress: Callable[[], str] | None = None) -> float:
    started = time.monotonic()
    last_said = started
    while not check():
        now = time.monotonic()
        if now - started > timeout:
            raise TimeoutError(f"not within {timeout:.0f} s: {what}" + (f" ({progress()})" if progress else ""))
        if progress and now - last_said >= 30:
            print(f"  ... {what}: {progress()} after {now - started:.0f} s", flush=True)
            last_said = now
        time.sleep(interval)
    return time.monotonic() - started


@dataclasses.dataclass
class ProcessReading:
    at: float
    cpu_s: float
    rss_kib: int
    hwm_kib: int

    @classmethod
    def of(cls, pid: int) -> ProcessReading:
        proc = Path(f"/proc/{pid}")
        status = (proc / "status").read_text()
        return cls(time.monotonic(), cpu_seconds((proc / "stat").read_text(), os.sysconf("SC_CLK_TCK")),
                   status_kib(status, "VmRSS"), status_kib(status, "VmHWM"))


def _prometheus_counters(metrics: str) -> tuple[float, float]:
    """(queries, response bytes) from the operator's /metrics text, all kinds."""
    queries = bytes_ = 0.0
    for line in metrics.splitlines():
        name = line.partition("{")[0]
        if name in ("modelrollout_prometheus_queries_total", "modelrollout_prometheus_response_bytes_total"):
            value = float(line.rsplit(" ", 1)[1])
            if name.endswith("queries_total"):
                queries += value
            else:
                bytes_ += value
    return queries, bytes_


@contextlib.contextmanager
def _bench_nodes(kubectl: Callable[..., Any], objects: int) -> Iterator[None]:
    """kwok CPU nodes with room for the fleet's pods (the world's own pools hold 770), removed after."""
    from e2e.cluster import nodepools

    pool = nodepools.Pool("bench-scale", max(1, math.ceil(objects * 1.2 / PODS_PER_BENCH_NODE)),
                          {"cpu": "512", "memory": "2Ti", "pods": str(PODS_PER_BENCH_NODE)})
    nodes = nodepools.nodes([pool])
    kubectl("create", "-f", "-", input=yaml.safe_dump_all(nodes), check=False)
    try:
        yield
    finally:
        kubectl("delete", "node", "-l", f"{nodepools.POOL_LABEL}=bench-scale", "--wait=false", check=False)


@contextlib.contextmanager
def _crd_of(kubectl: Callable[..., Any], checkout: Path | None) -> Iterator[None]:
    """The other checkout's CRD while its operator runs (its status shape may differ: the code before
    issue 11 wrote status.replicas as an object), the current one put back after."""
    if checkout is None:
        yield
        return
    apply = ("apply", "--server-side", "--force-conflicts", "-f")
    kubectl(*apply, str(checkout / "crds" / "modeldeployments.yaml"))
    try:
        yield
    finally:
        kubectl(*apply, str(REPO / "crds" / "modeldeployments.yaml"))


def run(objects: int, progressing: int, window: float, baseline_checkout: Path | None = None) -> dict[str, Any]:
    from e2e.cluster.layout import Layout
    from e2e.fixtures import apiserver, given
    from e2e.fixtures.operator import OperatorProcess
    from e2e.fixtures.world import kubectl_for, open_world

    world, started_here = open_world()
    kubectl = kubectl_for(world)
    namespace = f"bench-scale-{uuid.uuid4().hex[:5]}"
    log_dir = Layout.default().logs
    log_dir.mkdir(parents=True, exist_ok=True)
    operator = OperatorProcess(world, log_dir, label="bench-scale",
                               env={"MODELROLLOUT_KUBE_QPS": SETUP_QPS, "MODELROLLOUT_KUBE_BURST": SETUP_BURST})
    watcher = Watcher(world.kubeconfig, namespace)
    idle_count = objects - progressing
    idle_bodies = [given.idle(f"idle-{i:04d}", on_gpus=i < ON_GPUS) for i in range(idle_count)]
    canaries = [f"canary-{i:03d}" for i in range(progressing)]
    result: dict[str, Any] = {"objects": objects, "progressing": progressing, "window_s": window,
                              "measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    server = lambda: apiserver.server_requests(kubectl)  # noqa: E731
    try:
        with _crd_of(kubectl, baseline_checkout), _bench_nodes(kubectl, objects):
            kubectl("create", "namespace", namespace)
            watcher.start()
            operator.start()
            started = time.monotonic()
            given.apply_all(kubectl, namespace, idle_bodies + [progressing_body(n, "1.0.0") for n in canaries])
            _wait(f"{objects} ModelDeployments Succeeded", lambda: watcher.count(_succeeded) >= objects, 1800,
                  progress=lambda: f"{watcher.count(_succeeded)} Succeeded")
            result["setup_s"] = round(time.monotonic() - started, 1)  # from the first apply
            print(f"  {objects} Succeeded after {result['setup_s']:.0f} s", flush=True)
            time.sleep(20)  # the last writes and wake-ups settle
            _events_drained(server)

            # idle: everything Succeeded (but the operator's setup QPS does not matter: it is idle)
            own_before = apiserver.parse_own_requests(operator.metrics())
            with_operator = apiserver.over_window(server, window)
            own = apiserver.parse_own_requests(operator.metrics())
            own.subtract(own_before)
            operator.stop()
            idle = apiserver.Window(with_operator, apiserver.over_window(server, window), window)
            print(f"  idle: {idle.describe()}", flush=True)
            result["idle"] = {
                "requests_per_second": round(idle.per_second, 3),
                "requests_per_second_per_object": round(idle.per_second / objects, 5),
                "by_verb_per_second": idle.per_second_by_verb(),
                "lists_with_operator_and_without": idle.lists(),
                "operator_own_requests": dict(own),
            }

            # cold start, with the chart's default client limits
            operator.env = {}
            restarted = time.monotonic()
            operator.start()
            pid = operator.process.pid if operator.process else 0
            try:
                if "modelrollout_objects_ticked" not in operator.metrics():
                    raise TimeoutError("this operator has no modelrollout_objects_ticked gauge")
                _wait("every object ticked once", lambda: operator.sample("modelrollout_objects_ticked") >= objects,
                      300, interval=0.5, progress=lambda: f"{operator.sample('modelrollout_objects_ticked'):.0f}")
                result["cold_start_s"] = round(time.monotonic() - restarted, 1)  # from the process's spawn
                print(f"  cold start: every object ticked within {result['cold_start_s']} s", flush=True)
            except TimeoutError as error:
                print(f"  cold start: {error}", flush=True)
                result["cold_start_s"] = None
            after_start = ProcessReading.of(pid)
            time.sleep(15)

            # two waves of canaries, Prometheus cost per interval at each
            waves = [canaries[: progressing // 2], canaries[progressing // 2:]]
            prometheus_waves = []
            for wave_number, wave in enumerate(waves, 1):
                given.apply_all(kubectl, namespace, [progressing_body(n, "2.0.0") for n in wave])
                under = sum(len(w) for w in waves[:wave_number])

                def all_analysing(under: int = under) -> bool:
                    return watcher.count(_analysing, canaries) >= under

                _wait(f"wave {wave_number}: {under} canaries under analysis", all_analysing, 600,
                      progress=lambda: f"{watcher.count(_analysing, canaries)} analysing")
                time.sleep(SERIES_SETTLE_S)  # the new pods' first scrapes and backfill queries pass first
                queries_before, bytes_before = _prometheus_counters(operator.metrics())
                time.sleep(window)
                queries_after, bytes_after = _prometheus_counters(operator.metrics())
                intervals = window / ANALYSIS_INTERVAL_S
                analysing = watcher.count(_analysing, canaries)
                per_interval = {
                    "rollouts_under_analysis": analysing,
                    "queries_per_interval": round((queries_after - queries_before) / intervals, 2),
                    "bytes_per_interval": round((bytes_after - bytes_before) / intervals),
                }
                per_interval["bytes_per_interval_per_rollout"] = round(
                    per_interval["bytes_per_interval"] / max(1, analysing))
                per_interval["queries_per_interval_per_rollout"] = round(
                    per_interval["queries_per_interval"] / max(1, analysing), 3)
                prometheus_waves.append(per_interval)
                print(f"  prometheus, wave {wave_number}: {per_interval}", flush=True)
            result["prometheus"] = prometheus_waves

            # progressing: the whole fleet, P canaries under analysis
            own_before = apiserver.parse_own_requests(operator.metrics())
            before = ProcessReading.of(pid)
            with_operator = apiserver.over_window(server, window)
            after = ProcessReading.of(pid)
            own = apiserver.parse_own_requests(operator.metrics())
            own.subtract(own_before)
            result["analysing_at_end"] = watcher.count(_analysing, canaries)
            operator.stop()
            busy = apiserver.Window(with_operator, apiserver.over_window(server, window), window)
            print(f"  progressing: {busy.describe()}", flush=True)
            result["progressing_window"] = {
                "requests_per_second": round(busy.per_second, 3),
                "by_verb_per_second": busy.per_second_by_verb(),
                "lists_with_operator_and_without": busy.lists(),
                "operator_own_requests": dict(own),
            }
            result["rss_mib"] = round(max(after_start.rss_kib, before.rss_kib, after.rss_kib) / 1024, 1)
            result["rss_peak_mib"] = round(after.hwm_kib / 1024, 1)
            result["cpu_seconds_per_minute"] = round((after.cpu_s - before.cpu_s) / (after.at - before.at) * 60, 2)
            latencies = ready_to_step(watcher.readies, watcher.moves)
            result["ready_to_step"] = {"samples": len(latencies),
                                       "p50_s": _rounded(percentile(latencies, 50)),
                                       "p99_s": _rounded(percentile(latencies, 99)),
                                       "max_s": _rounded(max(latencies) if latencies else None),
                                       "all_s": sorted(round(v, 3) for v in latencies)}
    finally:
        operator.stop()
        watcher.stop()
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        if started_here and world.local is not None:
            world.local.down()
    return result


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def measures(run: dict[str, Any]) -> dict[str, float | None]:
    """The figures the targets judge, from one run's row (a baseline row may lack some)."""
    own_lists = run.get("progressing_window", {}).get("operator_own_requests", {}).get("LIST")
    if own_lists is None:  # no count of its own (the code before issue 11): the API server's difference
        with_op, without = run.get("progressing_window", {}).get("lists_with_operator_and_without", (None, None))
        own_lists = None if with_op is None else max(0, with_op - without)
    waves = run.get("prometheus") or []
    ratio = None
    if len(waves) == 2 and waves[0]["bytes_per_interval_per_rollout"]:
        ratio = waves[1]["bytes_per_interval_per_rollout"] / waves[0]["bytes_per_interval_per_rollout"]
    return {
        "idle_requests_per_second_per_object": run.get("idle", {}).get("requests_per_second_per_object"),
        "progressing_requests_per_second": run.get("progressing_window", {}).get("requests_per_second"),
        "steady_state_lists": own_lists,
        "ready_to_step_p99_s": run.get("ready_to_step", {}).get("p99_s"),
        "cold_start_s": run.get("cold_start_s"),
        "rss_mib": run.get("rss_mib"),
        "prometheus_bytes_per_rollout_ratio": None if ratio is None else round(ratio, 3),
    }


def table(rows: dict[str, dict[str, Any]]) -> str:
    """One line per target: each row's value (current, baseline) and the current one's pass or miss."""
    names = [n for n in ("current", "baseline") if n in rows]
    header = "".join(f"{n + ' (N=' + str(rows[n].get('objects')) + ')':>22}" for n in names)
    lines = [f"{'measure':<40}{header}  target"]
    figures = {n: measures(rows[n]) for n in names}
    for measure, (comparison, bound) in TARGETS.items():
        cells = "".join(f"{'-' if figures[n][measure] is None else figures[n][measure]:>22}" for n in names)
        goal = f"{comparison} {bound}" if comparison == "<=" else f"1 ± {bound}"
        verdict = judge(measure, figures["current"][measure]) if "current" in figures else ""
        lines.append(f"{measure:<40}{cells}  {goal:<10} {verdict}")
    for n in names:
        extra = {k: rows[n].get(k) for k in ("cpu_seconds_per_minute", "rss_peak_mib", "ready_to_step", "setup_s")}
        lines.append(f"{n}: {extra}")
    return "\n".join(lines)


EVENTS_QUIET_S = 10.0
"""How long no Event may be created before the idle window starts."""


def _events_drained(read: Callable[[], Any], limit_s: float = 600.0) -> None:
    """Waits until the API server creates no Event for EVENTS_QUIET_S: kopf posts Events from a
    queue, so the Deploying and Ready Events of a fleet created in bulk arrive minutes after the
    objects Succeeded, and would count against the idle window."""
    def posted() -> int:
        return sum(count for (verb, resource), count in read().items() if verb == "POST" and resource == "events")

    deadline, last, started = time.monotonic() + limit_s, posted(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(EVENTS_QUIET_S)  # polling the API server's counter, not a fixed wait
        now = posted()
        if now == last:
            print(f"  Events drained after {time.monotonic() - started:.0f} s", flush=True)
            return
        last = now
    print(f"  Events still being posted after {limit_s:.0f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--objects", type=int, default=int(os.environ.get("BENCH_SCALE_OBJECTS", OBJECTS)))
    parser.add_argument("--progressing", type=int,
                        default=int(os.environ.get("BENCH_SCALE_PROGRESSING", PROGRESSING)))
    parser.add_argument("--window", type=float, default=float(os.environ.get("BENCH_SCALE_WINDOW", WINDOW_S)),
                        help="seconds of each measurement window")
    parser.add_argument("--baseline", metavar="OPERATOR_PATH",
                        help="measure the baseline row with the operator package at this path instead")
    args = parser.parse_args(argv)
    if args.baseline:
        os.environ["E2E_OPERATOR_PATH"] = str(Path(args.baseline).resolve())
    checkout = Path(args.baseline).resolve().parent if args.baseline else None
    row = run(args.objects, args.progressing, args.window, checkout)
    if checkout is not None:
        commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        row["commit"] = commit or BASELINE_COMMIT
    stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    out = merged(stored, row, as_baseline=bool(args.baseline))
    out["targets"] = {k: f"{c} {b}" for k, (c, b) in TARGETS.items()}
    if "current" in out:
        out["current"]["verdicts"] = {k: judge(k, v) for k, v in measures(out["current"]).items()}
    print(table(out))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    if args.baseline or "current" not in out:
        return 0
    return 1 if "miss" in out["current"]["verdicts"].values() else 0


if __name__ == "__main__":
    sys.exit(main())
