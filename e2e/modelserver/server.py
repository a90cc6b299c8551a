"""The HTTP side of the model server: /v1/predict, /healthz and /metrics on aiohttp.

aiohttp because many of these run at once on a small machine: one event loop per process,
no threads. The socket opens before the model is trained, so /healthz answers 503 until the
model is ready, as a real server's readiness probe would.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web

from e2e.modelserver import dataset
from e2e.modelserver.faults import Failures, Faults
from e2e.modelserver.metrics import CONTENT_TYPE, ServerMetrics
from e2e.modelserver.model import Model

log = logging.getLogger("modelserver")

#: Largest `instances` batch accepted in one request.
MAX_INSTANCES = 1000


class BadRequest(ValueError):
    """The body cannot be scored; the message goes back in the 400 response."""


@dataclass(frozen=True)
class Identity:
    """What the pod says it serves (MODEL_NAME, MODEL_VERSION, MODEL_URI); echoed, not used."""

    name: str = "model"
    version: str = "unknown"
    uri: str = ""


@dataclass
class State:
    """Everything one server process holds; `model` is None until trained."""

    identity: Identity
    faults: Faults
    metrics: ServerMetrics = field(default_factory=ServerMetrics)
    rng: random.Random = field(default_factory=random.Random)
    model: Model | None = None
    failures: Failures | None = None
    """Which requests fail (bursts carry state from one request to the next); from `faults`."""

    def __post_init__(self) -> None:
        self.failures = self.failures or Failures(self.faults)


STATE_KEY = web.AppKey("state", State)


def _row(values: Any, where: str) -> list[float]:
    if not isinstance(values, list) or not values:
        raise BadRequest(f"{where} must be a non-empty list of numbers")
    if len(values) > dataset.FEATURE_COUNT:
        raise BadRequest(f"{where} has {len(values)} values; the model takes {dataset.FEATURE_COUNT}")
    row: list[float] = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise BadRequest(f"{where}[{i}] is not a finite number: {v!r}")
        row.append(float(v))
    return row


def parse_rows(body: bytes) -> tuple[list[list[float]], bool]:
    """Body -> (rows, batched). Accepts `{"features": [...]}` or `{"instances": [[...], ...]}`.

    A row shorter than the model's 30 features is completed with the training means (so a
    smoke test may send a short body); a longer one is refused.
    """
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadRequest(f"body is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise BadRequest('body must be an object with "features" or "instances"')
    if "features" in doc:
        return [_row(doc["features"], "features")], False
    if "instances" in doc:
        instances = doc["instances"]
        if not isinstance(instances, list) or not instances:
            raise BadRequest("instances must be a non-empty list of rows")
        if len(instances) > MAX_INSTANCES:
            raise BadRequest(f"at most {MAX_INSTANCES} instances per request")
        return [_row(r, f"instances[{i}]") for i, r in enumerate(instances)], True
    raise BadRequest('body must have "features" or "instances"')


def _score(m: Model, rows: list[list[float]], shift: float) -> tuple[list[list[float]], list[float]]:
    full = np.tile(m.mean, (len(rows), 1))
    for i, r in enumerate(rows):
        full[i, : len(r)] = r
    z = m.standardise(full)
    return z.tolist(), m.scores(z, shift).tolist()


async def _answer(request: web.Request, state: State) -> web.Response:
    if state.model is None:
        return web.json_response({"error": "model not loaded yet"}, status=503)
    try:
        rows, batched = parse_rows(await request.read())
    except BadRequest as e:
        return web.json_response({"error": str(e)}, status=400)
    delay = state.faults.added_latency_s(state.rng)
    if delay > 0.0:
        await asyncio.sleep(delay)
    if state.failures is not None and state.failures.fails(state.rng):
        return web.json_response({"error": "injected fault (FAULT_ERROR_RATE)"}, status=500)
    z, scores = _score(state.model, rows, state.faults.prediction_shift)
    state.metrics.observe_rows(z, scores)
    ident = {"model": state.identity.name, "version": state.identity.version}
    preds = [{"score": s, "label": int(s >= 0.5)} for s in scores]
    if batched:
        return web.json_response({"predictions": preds, **ident})
    return web.json_response({**preds[0], **ident})


async def predict(request: web.Request) -> web.Response:
    """POST /v1/predict: scores rows; every answer is counted and timed, and each 200 converts
    with probability OUTCOME_RATE."""
    state = request.app[STATE_KEY]
    started = time.perf_counter()
    try:
        response = await _answer(request, state)
    except Exception:
        log.exception("prediction failed")
        response = web.json_response({"error": "internal error"}, status=500)
    state.metrics.requests.labels(code=str(response.status)).inc()
    if response.status == 200 and state.faults.converts(state.rng):
        state.metrics.converted.inc()
    state.metrics.duration.observe(time.perf_counter() - started)
    return response


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: 200 once the model is trained, 503 before."""
    ready = request.app[STATE_KEY].model is not None
    return web.json_response({"ready": ready}, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text exposition."""
    body = request.app[STATE_KEY].metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def make_app(state: State) -> web.Application:
    """The aiohttp application over `state` (tests may build one in-process)."""
    app = web.Application()
    app[STATE_KEY] = state
    app.router.add_post("/v1/predict", predict)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app
