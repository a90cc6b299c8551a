"""`python -m e2e.podrunner --kubeconfig K --endpoints F --targets DIR --timings F`."""

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
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    pod_runner = runner.Runner(args.kubeconfig, args.endpoints, args.targets, args.timings)
    runner.install_signal_handlers(pod_runner)
    pod_runner.run()


if __name__ == "__main__":
    main()
