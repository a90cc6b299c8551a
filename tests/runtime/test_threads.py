"""Ticks that wait on Prometheus or a model server run on threads of their own, so that many of
them waiting together never hold back a tick that only moves a step."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

from modelrollout import config
from modelrollout.adapters.metrics import prometheus
from modelrollout.runtime import shared

SUBJECT: contextvars.ContextVar[str] = contextvars.ContextVar("subject", default="none")


def runtime(analysis_threads: int) -> shared.Runtime:
    unused: Any = None  # these tests make no request
    return shared.Runtime(settings=config.OperatorConfig(analysis_threads=analysis_threads), kube=unused,
                          workloads=unused, prometheus=prometheus.Sources())


async def test_outward_calls_waiting_together_do_not_hold_back_a_step() -> None:
    made = runtime(analysis_threads=4)
    fetch_done = threading.Event()
    loop = asyncio.get_running_loop()
    # More waiting analyses than the loop's shared threads (min(32, cpus + 4)) and the outward ones.
    waiting = [asyncio.ensure_future(made.in_thread(True, fetch_done.wait, 30)) for _ in range(40)]
    await asyncio.sleep(0.2)
    started = loop.time()
    moved = await asyncio.wait_for(made.in_thread(False, lambda: "step moved"), 5)
    assert moved == "step moved" and loop.time() - started < 1.0
    assert not any(w.done() for w in waiting)  # they were all still waiting
    fetch_done.set()
    assert all(await asyncio.gather(*waiting))


async def test_outward_threads_are_bounded_by_the_setting() -> None:
    made = runtime(analysis_threads=3)
    names: set[str] = set()
    release = threading.Event()

    def wait() -> None:
        names.add(threading.current_thread().name)
        release.wait(10)

    calls = [asyncio.ensure_future(made.in_thread(True, wait)) for _ in range(6)]
    await asyncio.sleep(0.3)
    assert len(names) == 3 and all(n.startswith("outward") for n in names)
    release.set()
    await asyncio.gather(*calls)


async def test_the_callers_context_reaches_the_thread() -> None:
    made = runtime(analysis_threads=1)
    SUBJECT.set("ml/fraud-detector")
    assert await made.in_thread(True, SUBJECT.get) == "ml/fraud-detector"
    assert await made.in_thread(False, SUBJECT.get) == "ml/fraud-detector"
