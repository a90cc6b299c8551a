"""`python -m modelrollout`: run the operator (the container's entrypoint, and `make run`).

Settings come from the environment (`config.OperatorConfig.from_env`), as a pod's container env
sets them; the only option is `--version`, which answers without importing kopf or touching a
cluster, so that an image can be checked with `docker run IMAGE --version`.
"""

from __future__ import annotations

import argparse
import importlib

import modelrollout


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m modelrollout", description=__doc__.splitlines()[0],
                                     epilog="Settings are read from MODELROLLOUT_* environment variables.")
    parser.add_argument("--version", action="version", version=f"modelrollout {modelrollout.__version__}")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    parse_args(argv)
    # Imported here, after the arguments: kopf and the handlers take a second to import.
    import kopf

    from modelrollout import config, structured_logs

    settings = config.OperatorConfig.from_env()
    structured_logs.configure(settings.log_level, settings.log_format)
    importlib.import_module("modelrollout.handlers")  # registers every handler with kopf
    liveness = f"http://{settings.listen_host}:{settings.health_port}/healthz" if settings.health_port else None
    kopf.run(standalone=True, clusterwide=not settings.namespaces, namespaces=settings.namespaces,
             liveness_endpoint=liveness)


if __name__ == "__main__":
    main()
