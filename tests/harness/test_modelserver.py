"""The e2e model server, as a real process: answers, faults and metrics.

The operator's judges only see what this server exports, so each fault must move the metric
it is meant to move, the counters must match the requests sent exactly, and OUTCOME_RATE must
convert that share of answered predictions.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping

import httpx
import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from e2e.modelserver import dataset, faults, model, process, server
from e2e.modelserver.faults import Faults

StartServer = Callable[[Mapping[str, str]], process.ServerProcess]


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """Starts healthy model servers with the given env; stops every one at the end."""
    started: list[process.ServerProcess] = []

    def start(env: Mapping[str, str]) -> process.ServerProcess:
        srv = process.start(process.free_port(), env)
        started.append(srv)
        process.wait_healthy(srv)
        return srv

    yield start
    for srv in started:
        process.stop(srv)


@pytest.fixture(scope="module")
def bodies() -> list[bytes]:
    return dataset.request_bodies(200, seed=7)


def wait_exit(proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> int:
    """The exit status, polling until a deadline; kills the process if it overstays."""
    try:
        return proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics as {(sample name, sorted labels): value}."""
    text = httpx.get(f"{url}/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


# ---- the model and its pieces, in-process -------------------------------------------------


@pytest.mark.parametrize("c", [1.0, model.SERVED_C])
def test_model_agrees_with_scikit_learn(c: float) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    data = dataset.load()
    ours = model.fit(data.x, data.y, c=c)
    scaler = StandardScaler().fit(data.x)
    theirs = LogisticRegression(C=c, max_iter=1000).fit(scaler.transform(data.x), data.y)
    p_ours = ours.scores(ours.standardise(data.x))
    p_theirs = theirs.predict_proba(scaler.transform(data.x))[:, 1]
    assert np.abs(p_ours - p_theirs).max() < 0.02
    assert ((p_ours >= 0.5) == (p_theirs >= 0.5)).mean() > 0.99
    assert ((p_ours >= 0.5) == data.y).mean() > 0.95


def test_served_scores_spread_over_the_unit_interval() -> None:
    served = model.train()
    scores = served.scores(served.standardise(dataset.sample_rows(dataset.load(), 2000, seed=2)))
    counts, _ = np.histogram(scores, bins=20, range=(0.0, 1.0))
    assert (counts > 0).all()
    assert counts.max() < 0.3 * len(scores)


def test_sample_rows_look_like_the_data() -> None:
    data = dataset.load()
    rows = dataset.sample_rows(data, 500, seed=3)
    assert rows.shape == (500, dataset.FEATURE_COUNT)
    assert (rows >= 0).all()
    relative = np.abs(rows.mean(axis=0) - data.x.mean(axis=0)) / data.x.std(axis=0)
    assert relative.max() < 0.3
    body = json.loads(dataset.request_bodies(1, seed=1)[0])
    assert len(body["features"]) == dataset.FEATURE_COUNT


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, Faults()),
        ({"FAULT_ERROR_RATE": "0.3"}, Faults(error_rate=0.3)),
        ({"FAULT_LATENCY_MS": "250", "FAULT_PREDICTION_SHIFT": "-1.5"}, Faults(latency_ms=250, prediction_shift=-1.5)),
        ({"FAULT_CRASH": "1"}, Faults(crash_after_s=1.0)),
        ({"FAULT_CRASH": "1", "FAULT_CRASH_AFTER_S": "0.2"}, Faults(crash_after_s=0.2)),
        ({"FAULT_CRASH": "0", "FAULT_CRASH_AFTER_S": "5"}, Faults()),
        ({"FAULT_ERROR_RATE": " "}, Faults()),
        ({"FAULT_ERROR_RATE": "0.05", "FAULT_ERROR_BURST": "3"}, Faults(error_rate=0.05, error_burst=3.0)),
        ({"OUTCOME_RATE": "0.3"}, Faults(outcome_rate=0.3)),
        ({"OUTCOME_RATE": "1"}, Faults(outcome_rate=1.0)),
    ],
)
def test_faults_from_env(env: dict[str, str], expected: Faults) -> None:
    assert faults.from_env(env) == expected


@pytest.mark.parametrize(
    "env",
    [{"FAULT_ERROR_RATE": "1.5"}, {"FAULT_ERROR_RATE": "lots"}, {"FAULT_LATENCY_MS": "-1"},
     {"FAULT_CRASH": "yes"}, {"FAULT_PREDICTION_SHIFT": "nan"}, {"FAULT_ERROR_BURST": "0.5"},
     {"OUTCOME_RATE": "1.5"}, {"OUTCOME_RATE": "-0.1"}, {"OUTCOME_RATE": "often"}, {"OUTCOME_RATE": "nan"}],
)
def test_bad_fault_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(faults.FaultConfigError, match=next(iter(env))):
        faults.from_env(env)


def test_added_latency_has_the_asked_mean() -> None:
    import random

    rng = random.Random(5)
    draws = [Faults(latency_ms=200).added_latency_s(rng) for _ in range(20000)]
    assert abs(sum(draws) / len(draws) - 0.2) < 0.01
    assert Faults().added_latency_s(rng) == 0.0


@pytest.mark.parametrize(
    ("body", "rows", "batched"),
    [
        (b'{"features": [1, 2.5]}', [[1.0, 2.5]], False),
        (b'{"instances": [[1], [2, 3]]}', [[1.0], [2.0, 3.0]], True),
    ],
)
def test_parse_rows(body: bytes, rows: list[list[float]], batched: bool) -> None:
    assert server.parse_rows(body) == (rows, batched)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "must be an object"),
        (b"{}", '"features" or "instances"'),
        (b'{"features": []}', "non-empty"),
        (b'{"features": "abc"}', "non-empty list"),
        (b'{"features": [1, true]}', r"features\[1\]"),
        (b'{"features": [1, "x"]}', r"features\[1\]"),
        (json.dumps({"features": [1.0] * 31}).encode(), "takes 30"),
        (b'{"instances": [[1], 7]}', r"instances\[1\]"),
        (b'{"instances": []}', "non-empty"),
    ],
)
def test_parse_rows_refuses(body: bytes, message: str) -> None:
    with pytest.raises(server.BadRequest, match=message):
        server.parse_rows(body)


async def test_not_ready_until_the_model_is_trained() -> None:
    state = server.State(identity=server.Identity(), faults=Faults())
    async with TestClient(TestServer(server.make_app(state))) as client:
        assert (await client.get("/healthz")).status == 503
        assert (await client.post("/v1/predict", data=b'{"features": [1]}')).status == 503
        state.model = model.train()
        assert (await client.get("/healthz")).status == 200
        assert (await client.post("/v1/predict", data=b'{"features": [1]}')).status == 200


# ---- the real process ---------------------------------------------------------------------


def test_predicts_and_says_which_version(start_server: StartServer, bodies: list[bytes]) -> None:
    srv = start_server({"MODEL_NAME": "fraud-scorer", "MODEL_VERSION": "2.3.0", "MODEL_URI": "s3://m/2.3.0"})
    answer = httpx.post(f"{srv.url}/v1/predict", content=bodies[0])
    assert answer.status_code == 200
    doc = answer.json()
    assert set(doc) == {"score", "label", "model", "version"}
    assert 0.0 <= doc["score"] <= 1.0
    assert doc["label"] == int(doc["score"] >= 0.5)
    assert (doc["model"], doc["version"]) == ("fraud-scorer", "2.3.0")

    rows = [json.loads(b)["features"] for b in bodies[:3]]
    batch = httpx.post(f"{srv.url}/v1/predict", json={"instances": rows}).json()
    assert len(batch["predictions"]) == 3
    assert batch["predictions"][0]["score"] == pytest.approx(doc["score"])
    assert batch["version"] == "2.3.0"

    short = httpx.post(f"{srv.url}/v1/predict", json={"features": [0.1, 0.2]})
    assert short.status_code == 200  # what a smoke test may send

    bad = httpx.post(f"{srv.url}/v1/predict", content=b"{nope")
    assert bad.status_code == 400
    assert "not JSON" in bad.json()["error"]


def test_error_rate_fault(start_server: StartServer, bodies: list[bytes]) -> None:
    srv = start_server({"FAULT_ERROR_RATE": "0.5"})
    n = 400
    with httpx.Client() as client:
        codes = [client.post(f"{srv.url}/v1/predict", content=bodies[i % len(bodies)]).status_code
                 for i in range(n)]
    failed = sum(c >= 500 for c in codes)
    assert set(codes) <= {200, 500}
    assert abs(failed - n * 0.5) <= 5 * math.sqrt(n * 0.25)  # binomial, 5 sigma
    metrics = scrape(srv.url)
    assert metrics[("model_requests_total", (("code", "500"),))] == failed
    assert metrics[("model_requests_total", (("code", "200"),))] == n - failed


async def _mean_latency(url: str, bodies: list[bytes], n: int) -> float:
    async with httpx.AsyncClient(timeout=30) as client:
        async def one(body: bytes) -> float:
            started = time.perf_counter()
            (await client.post(f"{url}/v1/predict", content=body)).raise_for_status()
            return time.perf_counter() - started

        return sum(await asyncio.gather(*(one(bodies[i]) for i in range(n)))) / n


def server_mean_latency(url: str) -> tuple[float, float]:
    """(count, mean seconds) of the server's own duration histogram."""
    m = scrape(url)
    count = m[("model_request_duration_seconds_count", ())]
    return count, m[("model_request_duration_seconds_sum", ())] / count


def test_latency_fault(start_server: StartServer, bodies: list[bytes]) -> None:
    fast = start_server({})
    slow = start_server({"FAULT_LATENCY_MS": "150"})
    n = 40
    client_side = [asyncio.run(_mean_latency(s.url, bodies, n)) for s in (fast, slow)]
    (fast_count, fast_mean), (slow_count, slow_mean) = (server_mean_latency(s.url) for s in (fast, slow))
    assert fast_count == slow_count == n
    # lognormal with mean 150 ms and sigma 0.5: the mean of 40 draws has a std dev of ~13 ms, so
    # it is above 85 ms at 5 sigma; a busy machine only adds. Client timings include the sleep.
    assert slow_mean > 0.085
    assert slow_mean - fast_mean > 0.05
    assert client_side[1] > 0.085


def test_prediction_shift_fault(start_server: StartServer, bodies: list[bytes]) -> None:
    plain = start_server({})
    shifted = start_server({"FAULT_PREDICTION_SHIFT": "2"})
    rows = [json.loads(b)["features"] for b in bodies[:100]]
    base = np.array([p["score"] for p in httpx.post(f"{plain.url}/v1/predict", json={"instances": rows})
                     .json()["predictions"]])
    moved = np.array([p["score"] for p in httpx.post(f"{shifted.url}/v1/predict", json={"instances": rows})
                      .json()["predictions"]])
    assert (moved >= base).all()
    assert moved.mean() - base.mean() > 0.08
    # the shift is on the logit: logit(moved) - logit(base) == 2 where scores are not saturated
    mid = (base > 0.01) & (base < 0.99)
    assert np.allclose(np.log(moved[mid] / (1 - moved[mid])) - np.log(base[mid] / (1 - base[mid])), 2.0)


def test_crash_fault_exits_non_zero() -> None:
    srv = process.start(process.free_port(), {"FAULT_CRASH": "1", "FAULT_CRASH_AFTER_S": "0.3"})
    try:
        code = wait_exit(srv.process)
    finally:
        process.stop(srv)
    assert code != 0


def test_sigterm_stops_cleanly(start_server: StartServer) -> None:
    srv = start_server({})
    assert process.stop(srv) == 0


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--port", "1", "--host", "0.0.0.0"], {}), (["--port", "1"], {"FAULT_ERROR_RATE": "2"}), ([], {})],
)
def test_refuses_bad_arguments(args: list[str], env: dict[str, str]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "e2e.modelserver", *args], cwd=process.ROOT,
        env={**process.child_env(), **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    assert wait_exit(proc) == 2


@pytest.mark.parametrize("rate", ["2", "-0.5", "often"])
def test_a_bad_outcome_rate_stops_the_server_with_a_message(rate: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "e2e.modelserver", "--port", str(process.free_port())], cwd=process.ROOT,
        env=process.child_env({"OUTCOME_RATE": rate}), capture_output=True, timeout=60,
    )
    assert done.returncode == 2
    assert f"OUTCOME_RATE={rate!r}" in done.stderr.decode()


def test_sample_command_prints_bodies() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "e2e.modelserver", "--sample", "3", "--seed", "1"], cwd=process.ROOT,
        env=process.child_env(), capture_output=True, check=True, timeout=60,
    ).stdout.decode().splitlines()
    assert len(out) == 3
    assert all(len(json.loads(line)["features"]) == dataset.FEATURE_COUNT for line in out)


def test_metrics_count_what_was_sent(start_server: StartServer, bodies: list[bytes]) -> None:
    srv = start_server({})
    rows = [json.loads(b)["features"] for b in bodies]
    with httpx.Client() as client:
        for body in bodies[:7]:
            assert client.post(f"{srv.url}/v1/predict", content=body).status_code == 200
        for i in range(2):
            assert client.post(f"{srv.url}/v1/predict", json={"instances": rows[i * 3: i * 3 + 3]}).is_success
        for _ in range(3):
            assert client.post(f"{srv.url}/v1/predict", content=b"{").status_code == 400
        client.get(f"{srv.url}/healthz")  # not a prediction: not counted
    m = scrape(srv.url)
    assert m[("model_requests_total", (("code", "200"),))] == 9
    assert m[("model_requests_total", (("code", "400"),))] == 3
    assert m[("model_request_duration_seconds_count", ())] == 12
    assert m[("model_request_duration_seconds_bucket", (("le", "10.0"),))] == 12
    assert m[("model_prediction_score_count", ())] == 13
    assert m[("model_prediction_score_bucket", (("le", "1.0"),))] == 13
    for feature in ("mean_radius", "mean_texture", "mean_perimeter", "mean_area"):
        assert m[("model_input_feature_count", (("feature", feature),))] == 13
    families = {name for name, _ in m}
    assert not any(name.endswith("_created") for name in families)
    assert not any("worst_" in str(labels) for _, labels in m)


@pytest.mark.parametrize("burst", [1.0, 3.0, 2.5])
def test_errors_in_bursts_keep_the_rate_and_come_in_runs_of_about_the_burst(burst: float) -> None:
    """Same mean error rate; runs of about `burst` failures; count variance about `burst` x binomial's."""
    rng = random.Random(7)
    failures = faults.Failures(Faults(error_rate=0.05, error_burst=burst))
    draws = [failures.fails(rng) for _ in range(400_000)]
    assert abs(sum(draws) / len(draws) - 0.05) < 0.003
    runs, current = [], 0
    for failed in draws:
        if failed:
            current += 1
        elif current:
            runs.append(current)
            current = 0
    assert abs(sum(runs) / len(runs) - burst) < 0.1 * burst + 0.1  # two bursts may touch: a little more
    blocks = [sum(draws[i:i + 200]) for i in range(0, len(draws), 200)]
    mean = sum(blocks) / len(blocks)
    variance = sum((b - mean) ** 2 for b in blocks) / len(blocks)
    assert 0.7 * burst < variance / (200 * 0.05 * 0.95) < 1.3 * burst + 0.2


# ---- the outcome counter ------------------------------------------------------------------

CONVERTED = ("model_outcomes_total", (("outcome", "converted"),))


def test_outcomes_are_exported_at_zero_without_an_outcome_rate(start_server: StartServer,
                                                                bodies: list[bytes]) -> None:
    srv = start_server({})
    assert scrape(srv.url)[CONVERTED] == 0  # the series exists before any request
    with httpx.Client() as client:
        for body in bodies[:50]:
            assert client.post(f"{srv.url}/v1/predict", content=body).status_code == 200
    m = scrape(srv.url)
    assert m[("model_requests_total", (("code", "200"),))] == 50
    assert m[CONVERTED] == 0


def test_outcome_rate_converts_that_share_of_answered_requests(start_server: StartServer,
                                                              bodies: list[bytes]) -> None:
    srv = start_server({"OUTCOME_RATE": "0.3"})
    rows = [json.loads(b)["features"] for b in bodies]
    n = 600
    with httpx.Client() as client:
        for i in range(n):
            if i % 4:
                answer = client.post(f"{srv.url}/v1/predict", content=bodies[i % len(bodies)])
            else:  # a batch of 5 rows is one request: it converts once at most
                answer = client.post(f"{srv.url}/v1/predict", json={"instances": rows[i % 190: i % 190 + 5]})
            assert answer.status_code == 200
    converted = scrape(srv.url)[CONVERTED]
    assert abs(converted - n * 0.3) <= 5 * math.sqrt(n * 0.3 * 0.7)  # binomial, 5 sigma


def test_only_answered_predictions_convert(start_server: StartServer, bodies: list[bytes]) -> None:
    srv = start_server({"OUTCOME_RATE": "1", "FAULT_ERROR_RATE": "0.5"})
    with httpx.Client() as client:
        codes = [client.post(f"{srv.url}/v1/predict", content=bodies[i]).status_code for i in range(100)]
        codes += [client.post(f"{srv.url}/v1/predict", content=b"{").status_code for _ in range(10)]
    assert codes.count(200) > 0 and codes.count(500) > 0 and codes.count(400) == 10
    m = scrape(srv.url)
    assert m[CONVERTED] == codes.count(200) == m[("model_requests_total", (("code", "200"),))]
