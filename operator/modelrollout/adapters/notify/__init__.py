"""Adapter: notifications about rollouts to outside receivers."""
