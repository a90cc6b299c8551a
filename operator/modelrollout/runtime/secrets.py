"""Values of Secrets that ModelDeployments name (Prometheus credentials, notification URLs).

A missing Secret or key is the spec's problem, not the cluster's: a SpecError that names the
field and the Secret, which makes the ModelDeployment Degraded until it exists.
"""

from __future__ import annotations

import base64

from modelrollout import errors
from modelrollout.adapters.cluster import kube
from modelrollout.runtime import shared

SECRET = kube.Kind("v1", "Secret", "secrets")


def value(runtime: shared.Runtime, namespace: str | None, name: str, key: str, field: str) -> str:
    """The decoded value of `key` in Secret `namespace/name`, without surrounding whitespace."""
    secret = runtime.kube.get(SECRET, namespace, name)
    if secret is None or key not in (secret.get("data") or {}):
        raise errors.SpecError(f"{field}: Secret {namespace}/{name} with key {key!r} not found")
    return base64.b64decode(secret["data"][key]).decode().strip()
