"""`python -m e2e.loadgen --kubeconfig K --endpoints FILE [--metrics-port P [--metrics-host H]]`.

Every second it re-reads the endpoints file and (in a loop of its own, so a slow API server
never delays pod changes) the ModelDeployments, Services, HTTPRoutes and VirtualServices,
rebuilds the routing table and hands it to the sender. Errors are logged when they change and
retried; so are the parts of a target's headers annotation or routes that the routing left out
(a malformed entry, a bad regular expression), which never stop the sending. SIGTERM or SIGINT
stops it cleanly with status 0.
"""

from __future__ import annotations

import os

# One BLAS thread (numpy only samples rows here) and no `_created` series.
_ONE = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "PROMETHEUS_DISABLE_CREATED_SERIES")
for _var in _ONE:
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import logging  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from e2e.loadgen import endpoints, routing  # noqa: E402
from e2e.loadgen.metrics import CONTENT_TYPE, LoadgenMetrics  # noqa: E402
from e2e.loadgen.sender import Sender, summary  # noqa: E402
from e2e.modelserver import dataset  # noqa: E402

log = logging.getLogger("loadgen")

REFRESH_S = 1.0
BODY_POOL = 2000


class Complaints:
    """Logs a failing source when its error changes, and once when it recovers."""

    def __init__(self) -> None:
        self._last: dict[str, str] = {}

    def failed(self, source: str, error: BaseException) -> None:
        message = f"{type(error).__name__}: {error}"
        if self._last.get(source) != message:
            self._last[source] = message
            log.warning("%s failed (retrying every %g s): %s", source, REFRESH_S, message)

    def ok(self, source: str) -> None:
        if self._last.pop(source, None) is not None:
            log.info("%s recovered", source)


class Gateway:
    """The refresh loops around one Sender; `snapshot` and `pods` are the last good reads."""

    def __init__(self, args: argparse.Namespace, sender: Sender) -> None:
        self.args = args
        self.sender = sender
        self.snapshot = routing.Snapshot()
        self.pods: list[routing.Pod] = []
        self.complaints = Complaints()
        self.problems: dict[tuple[str, str], tuple[str, ...]] = {}
        """Each target's routing problems as last logged."""

    async def watch_apiserver(self) -> None:
        """Re-reads the cluster objects every second; keeps the last snapshot on failure."""
        from e2e.loadgen.apiserver import ApiServer  # the kubernetes client is slow to import

        api: ApiServer | None = None
        try:
            while True:
                started = time.monotonic()
                try:
                    if api is None:
                        api = await asyncio.to_thread(ApiServer, self.args.kubeconfig)
                    self.snapshot = await asyncio.to_thread(api.fetch)
                    self.complaints.ok("API server")
                except Exception as e:  # never exit on a transient error
                    self.complaints.failed("API server", e)
                await asyncio.sleep(max(0.0, REFRESH_S - (time.monotonic() - started)))
        finally:
            if api is not None:
                api.close()

    async def route(self) -> None:
        """Every second: endpoints file + last snapshot -> a routing table for the sender."""
        path = Path(self.args.endpoints)
        while True:
            try:
                self.pods = endpoints.read(path)
                self.complaints.ok("endpoints file")
            except (OSError, endpoints.EndpointsError) as e:
                self.complaints.failed("endpoints file", e)
            try:
                table = routing.table(self.snapshot, self.pods)
                self.report_problems(table)
                self.sender.update(table)
            except Exception as e:
                self.complaints.failed("routing", e)
            await asyncio.sleep(REFRESH_S)

    def report_problems(self, table: routing.RoutingTable) -> None:
        """Logs what the routing left out of a target when that changes, not every second."""
        for (namespace, name), route in table.items():
            if self.problems.get((namespace, name), ()) == route.problems:
                continue
            if route.problems:
                log.warning("%s/%s: ignored %s", namespace, name, "; ".join(route.problems))
            else:
                log.info("%s/%s: annotation and routes read without problems again", namespace, name)
        self.problems = {key: route.problems for key, route in table.items() if route.problems}

    async def summarise(self) -> None:
        """One line per target every --summary-every seconds."""
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.args.summary_every)
            now = time.monotonic()
            for route, window in self.sender.take_window().values():
                log.info("%s", summary(route, window, now - last))
            last = now


async def serve_metrics(metrics: LoadgenMetrics, port: int, host: str = "127.0.0.1") -> web.AppRunner:
    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/metrics", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def run(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    metrics = LoadgenMetrics()
    runner = await serve_metrics(metrics, args.metrics_port, args.metrics_host) if args.metrics_port else None
    bodies = dataset.request_bodies(BODY_POOL, noise=args.noise, seed=args.seed)
    connector = aiohttp.TCPConnector(limit=2000, limit_per_host=0)
    # No cookie jar: a gateway keeps none, and a stored cookie would join the drawn Cookie header.
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as session:
        sender = Sender(session, bodies, metrics, random.Random(args.seed))
        gateway = Gateway(args, sender)
        loops = [
            asyncio.create_task(c)
            for c in (gateway.watch_apiserver(), gateway.route(), gateway.summarise())
        ]
        log.info("sending; endpoints %s, kubeconfig %s, metrics port %s",
                 args.endpoints, args.kubeconfig, args.metrics_port or "-")
        await stop.wait()
        log.info("stopping")
        for t in loops:
            t.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await sender.close()
    if runner is not None:
        await runner.cleanup()
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m e2e.loadgen", description=__doc__.splitlines()[0])
    p.add_argument("--kubeconfig", required=True, help="kubeconfig of the API server to read")
    p.add_argument("--endpoints", required=True, help="the pod runner's endpoints file (JSON)")
    p.add_argument("--metrics-port", type=int, default=0, help="serve /metrics on port P (0: off)")
    p.add_argument("--metrics-host", default="127.0.0.1",
                   help="the address to serve /metrics on (0.0.0.0 in a pod of its own, on kind)")
    p.add_argument("--summary-every", type=float, default=10.0, help="seconds between summary lines")
    p.add_argument("--noise", type=float, default=0.05, help="noise of request rows, in feature std devs")
    p.add_argument("--seed", type=int, default=None, help="seed for bodies and routing draws")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # its retry warnings repeat ours every second
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
