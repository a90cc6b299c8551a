"""The doing side of the operator: the adapters one process shares, and the three acts of a tick.

- `observing`: read the cluster into a core Observation;
- `judging`: read the metrics from Prometheus and judge them into evidence for the core;
- `applying`: carry out a core Decision through the adapters, in a safe order.

The kopf handlers call these and nothing else; the decisions themselves are the core's.
"""
