"""Shared pytest fixtures: the e2e world (real control plane and Prometheus), namespaces, kubectl."""

pytest_plugins = ["e2e.fixtures.world"]
