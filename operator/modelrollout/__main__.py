"""`python -m modelrollout`: run the operator (the container's entrypoint, and `make run`)."""

from __future__ import annotations

import importlib

import kopf

from modelrollout import config, structured_logs


def main() -> None:
    settings = config.OperatorConfig.from_env()
    structured_logs.configure(settings.log_level, settings.log_format)
    importlib.import_module("modelrollout.handlers")  # registers every handler with kopf
    liveness = f"http://{settings.listen_host}:{settings.health_port}/healthz" if settings.health_port else None
    kopf.run(standalone=True, clusterwide=not settings.namespaces, namespaces=settings.namespaces,
             liveness_endpoint=liveness)


if __name__ == "__main__":
    main()
