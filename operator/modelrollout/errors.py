"""The operator's exceptions, and how each kind maps to kopf's retry semantics.

    ModelRolloutError
    ├── SpecError                 the object asks for something that cannot be done (Degraded; no retry
    │                             until the spec changes)
    ├── ClusterError
    │   ├── ClusterUnavailable    the API server could not be reached or asked to retry (temporary)
    │   ├── ClusterRejected       the API server refused an object the operator built (permanent for
    │   │                         this spec: a bug or a user template the API server will not take)
    │   └── Conflict              a fenced write met a newer resourceVersion: decide again from fresh state
    ├── NotLeader                 this replica does not hold the Lease (or no longer may act on it): write
    │                             nothing, park until it leads again
    ├── MetricsError
    │   └── MetricUnavailable     a query failed or answered garbage: Verdict ERROR, never a promotion
    └── EndpointError             the model endpoint could not be reached for the smoke test

Handlers turn `ClusterUnavailable` into `kopf.TemporaryError` (retry with a delay); `SpecError` and
`ClusterRejected` mark the ModelDeployment Degraded with the message; `Conflict` and `NotLeader` end
the tick without touching status (it starts over from fresh state, at once or once this replica
leads again); metric and endpoint errors are evidence for the decision core, not exceptions out of
a handler.
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


class Conflict(ClusterError):
    """A write carrying the resourceVersion its decision was based on met a newer object (409)."""


class NotLeader(ModelRolloutError):
    """This replica may not write: it does not hold the Lease, or its renewal deadline has passed."""


class MetricsError(ModelRolloutError):
    """A metric could not be obtained."""


class MetricUnavailable(MetricsError):
    """The query failed, timed out, or answered something that is not a usable number."""


class EndpointError(ModelRolloutError):
    """The model server could not be reached for a smoke test."""
