"""Adapter: endpoint."""
