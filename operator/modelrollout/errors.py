"""The operator's exceptions, and how each kind maps to kopf's retry semantics.

    ModelRolloutError
    ├── SpecError                 the object asks for something that cannot be done (Degraded; no retry
    │                             until the spec changes)
    ├── ClusterError
    │   ├── ClusterUnavailable    the API server could not be reached or asked to retry (temporary)
    │   └── ClusterRejected       the API server refused an object the operator built (permanent for
    │                             this spec: a bug or a user template the API server will not take)
    ├── MetricsError
    │   └── MetricUnavailable     a query failed or answered garbage: Verdict ERROR, never a promotion
    └── EndpointError             the model endpoint could not be reached for the smoke test

Handlers turn `ClusterUnavailable` into `kopf.TemporaryError` (retry with a delay); `SpecError` and
`ClusterRejected` mark the ModelDeployment Degraded with the message; metric and endpoint errors are
evidence for the decision core, not exceptions out of a handler.
"""

from __future__ import annotations


class ModelRolloutError(Exception):
    """The root of every error the operator raises on purpose."""


class SpecError(ModelRolloutError):
    """The ModelDeployment cannot be acted on as written; the message names the field."""


class ClusterError(ModelRolloutError):
    """A call to the Kubernetes API failed."""


class ClusterUnavailable(ClusterError):
    """Temporary: unreachable, throttled, conflicting or failing server; retry later."""


class ClusterRejected(ClusterError):
    """The API server refused what the operator sent; retrying the same thing will not help."""


class MetricsError(ModelRolloutError):
    """A metric could not be obtained."""


class MetricUnavailable(MetricsError):
    """The query failed, timed out, or answered something that is not a usable number."""


class EndpointError(ModelRolloutError):
    """The model server could not be reached for a smoke test."""
