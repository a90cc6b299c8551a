"""`python -m e2e.podrunner --kubeconfig K --endpoints F --targets DIR --timings F [--kubelets-run-every-pod]`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from e2e.podrunner import runner


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m e2e.podrunner")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--endpoints", required=True, type=Path)
    parser.add_argument("--targets", required=True, type=Path)
    parser.add_argument("--timings", required=True, type=Path)
    parser.add_argument("--kubelets-run-every-pod", action="store_true",
                        help="run nothing; list every pod for the load generator (a kind cluster)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    pod_runner = runner.Runner(args.kubeconfig, args.endpoints, args.targets, args.timings,
                               args.kubelets_run_every_pod)
    runner.install_signal_handlers(pod_runner)
    pod_runner.run()


if __name__ == "__main__":
    main()
