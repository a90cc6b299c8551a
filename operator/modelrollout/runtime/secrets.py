"""Values of Secrets that ModelDeployments name (Prometheus credentials, notification URLs).

A missing Secret or key is the spec's problem, not the cluster's: a SpecError that names the
field and the Secret, which makes the ModelDeployment Degraded until it exists.

A Secret that was found is kept for KEPT_FOR seconds: an analysing ModelDeployment reads its
Prometheus credentials at every tick, and a GET per tick per Secret is most of what an
otherwise idle fleet would ask of the API server. A rotated credential is used within that time.
A missing one is never kept, so the Secret that fixes it is read at the next tick.
"""

from __future__ import annotations

import base64
import dataclasses
import threading
import time
from collections.abc import Callable

from modelrollout import errors
from modelrollout.adapters.cluster import kube

SECRET = kube.Kind("v1", "Secret", "secrets")
KEPT_FOR = 30.0

Data = dict[str, str]


@dataclasses.dataclass
class SecretCache:
    """The `data` of Secrets read lately, by (namespace, name)."""

    clock: Callable[[], float] = time.monotonic
    _kept: dict[tuple[str | None, str], tuple[float, Data]] = dataclasses.field(default_factory=dict)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def data(self, client: kube.Kube, namespace: str | None, name: str, fresh: bool = False) -> Data | None:
        """The Secret's data (base64 values), or None when there is no such Secret; `fresh` reads it
        again whatever is kept."""
        now = self.clock()
        with self._lock:
            kept = self._kept.get((namespace, name))
            if kept is not None and now - kept[0] < KEPT_FOR and not fresh:
                return kept[1]
        secret = client.get(SECRET, namespace, name)
        if secret is None:
            with self._lock:
                self._kept.pop((namespace, name), None)
            return None
        found: Data = dict(secret.get("data") or {})
        with self._lock:
            self._kept[(namespace, name)] = (now, found)
        return found


def value(cache: SecretCache, client: kube.Kube, namespace: str | None, name: str, key: str, field: str) -> str:
    """The decoded value of `key` in Secret `namespace/name`, without surrounding whitespace."""
    data = cache.data(client, namespace, name)
    if data is not None and key not in data:
        data = cache.data(client, namespace, name, fresh=True)  # the key may have been added since
    if data is None or key not in data:
        raise errors.SpecError(f"{field}: Secret {namespace}/{name} with key {key!r} not found")
    return base64.b64decode(data[key]).decode().strip()
