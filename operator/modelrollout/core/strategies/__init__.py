"""One plan per rollout strategy; strategies are independent of each other."""
