"""`python -m e2e.cluster up|down|status|build`: the commands behind `make cluster-up/-down`.

`E2E_CLUSTER=kind` hands the same verbs to the kind provider (for hosts with a Docker engine).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from e2e.cluster import world
from e2e.cluster.layout import REPO
from e2e.cluster.processes import StartError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.cluster")
    parser.add_argument("verb", choices=["up", "down", "status", "build"])
    args = parser.parse_args(argv)
    if os.environ.get("E2E_CLUSTER", "local") == "kind":
        return subprocess.call(["bash", str(REPO / "e2e/kind/cluster.sh"), args.verb],
                               env={**os.environ, "E2E_PYTHON": sys.executable})
    local = world.World()
    try:
        if args.verb == "up":
            local.up()
        elif args.verb == "down":
            local.down()
            if "E2E_DIR" not in os.environ:  # the default world's down also stops the workers' it holds
                for stray in world.worker_worlds():  # those parallel test workers left behind, if killed
                    stray.down(quiet=True)
        elif args.verb == "build":
            print(world.build_binaries()[0])
        else:
            running = local.supervisor.running()
            print("healthy" if local.healthy() else "not running", "; running:", ", ".join(running) or "nothing")
            return 0 if local.healthy() else 1
    except StartError as error:
        print(f"cluster {args.verb} failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
