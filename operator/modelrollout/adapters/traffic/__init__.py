"""Adapter: traffic."""
