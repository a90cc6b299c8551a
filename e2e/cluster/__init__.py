"""The local e2e world: a real control plane built from Go modules, kwok GPU nodes, Prometheus."""
