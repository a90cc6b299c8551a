"""The decision core: pure functions from (spec, status, observation, verdict, now) to a Decision.

Owns every rollout decision and every statistical judgement. It must not import kopf,
kubernetes, httpx or asyncio, and it never reads a clock: time is an
argument, so every decision can be replayed and tested with plain data.
"""
