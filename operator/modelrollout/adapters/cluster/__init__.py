"""Adapter: cluster."""
