"""`python -m e2e.modelserver --port P`: one model server process (one faked pod).

`--sample N` prints N request bodies instead, one JSON object a line, for curl or other tools.
The identity and faults come from the environment, as a pod's container env would set them:
MODEL_NAME, MODEL_VERSION, MODEL_URI, FAULT_ERROR_RATE, FAULT_ERROR_BURST, FAULT_LATENCY_MS,
FAULT_PREDICTION_SHIFT, FAULT_CRASH, FAULT_CRASH_AFTER_S, OUTCOME_RATE. Exit status: 0 after
SIGTERM or SIGINT, 2 on bad arguments or settings, CRASH_EXIT_CODE for an injected crash.
"""

from __future__ import annotations

import os

# One BLAS thread per process: many servers share two cores, and the model is tiny. No
# `_created` series: they double the series per pod and no query uses them.
_ONE = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "PROMETHEUS_DISABLE_CREATED_SERIES")
for _var in _ONE:
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import ipaddress  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from aiohttp import web  # noqa: E402

from e2e.modelserver import dataset, faults, model, server  # noqa: E402

#: Exit status of an injected crash (FAULT_CRASH=1), distinct from a Python error's 1.
CRASH_EXIT_CODE = 3

log = logging.getLogger("modelserver")


def loopback(host: str) -> str:
    """Argparse type: only loopback addresses (nothing here may listen beyond the machine)."""
    if host == "localhost" or ipaddress.ip_address(host).is_loopback:
        return host
    raise argparse.ArgumentTypeError(f"{host} is not a loopback address")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m e2e.modelserver", description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, help="port to listen on (required unless --sample)")
    p.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    p.add_argument("--in-container", action="store_true",
                   help="running as a pod's container (kind): any address, the pod's network is its own")
    p.add_argument("--sample", type=int, metavar="N", help="print N request bodies and exit")
    p.add_argument("--noise", type=float, default=0.05, help="noise of sampled rows, in feature std devs")
    p.add_argument("--seed", type=int, default=None, help="seed for --sample")
    args = p.parse_args(argv)
    if not args.in_container:
        try:
            loopback(args.host)
        except (argparse.ArgumentTypeError, ValueError) as error:
            p.error(f"argument --host: {error}")
    if args.sample is None and args.port is None:
        p.error("--port is required")
    return args


async def serve(host: str, port: int, state: server.State) -> int:
    """Listens, trains, then serves until SIGTERM/SIGINT (0) or an injected crash."""
    started = time.perf_counter()
    runner = web.AppRunner(server.make_app(state), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    code = 0
    try:
        state.model = model.train()
        log.info(
            "serving %s %s on %s:%d, ready in %.0f ms, faults %s",
            state.identity.name, state.identity.version, host, port,
            (time.perf_counter() - started) * 1000, state.faults,
        )
        crash = state.faults.crash_after_s
        try:
            await asyncio.wait_for(stop.wait(), timeout=crash)
        except TimeoutError:
            log.error("injected crash (FAULT_CRASH=1) after %.1f s", crash)
            code = CRASH_EXIT_CODE
    finally:
        await runner.cleanup()
    return code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.sample is not None:
        for body in dataset.request_bodies(args.sample, noise=args.noise, seed=args.seed):
            sys.stdout.write(body.decode() + "\n")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        injected = faults.from_env(os.environ)
    except faults.FaultConfigError as e:
        log.error("%s", e)
        return 2
    identity = server.Identity(
        name=os.environ.get("MODEL_NAME", "model"),
        version=os.environ.get("MODEL_VERSION", "unknown"),
        uri=os.environ.get("MODEL_URI", ""),
    )
    state = server.State(identity=identity, faults=injected)
    try:
        return asyncio.run(serve(args.host, args.port, state))
    except OSError as e:  # e.g. the port is taken
        log.error("cannot serve on %s:%d: %s", args.host, args.port, e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
