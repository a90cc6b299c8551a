"""modelrollout: progressive, statistically judged rollouts of ML model servers on Kubernetes.

The layers, from the bottom up (each may import only those below it; `.importlinter` checks):

- `api`: the CRD contract as pydantic models, label keys and the CRD renderer. Data only.
- `core`: pure decisions. Given a spec, a status, an observation of the cluster and a verdict,
  it says what the world should look like next. No I/O, no clock, no asyncio.
- `adapters`: one subpackage per outside system (the cluster, traffic providers, Prometheus,
  the model endpoint), each a small Protocol with one real implementation per system.
- `runtime`: the adapters one operator process shares.
- `handlers`: the kopf wiring; `kubectl_plugin`: the command-line companion.
"""

__version__ = "0.1.0"
