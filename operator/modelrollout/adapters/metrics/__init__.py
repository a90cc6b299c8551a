"""Adapter: metrics."""
