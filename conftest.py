"""Shared pytest fixtures: the e2e world (real control plane and Prometheus), namespaces, kubectl,
and the operator run from source."""

pytest_plugins = ["e2e.fixtures.world", "e2e.fixtures.operator", "e2e.fixtures.realnode", "e2e.fixtures.scheduling"]
