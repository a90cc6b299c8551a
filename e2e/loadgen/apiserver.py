"""Reads, once a second, what the routing needs from the API server.

The official kubernetes client is synchronous, so `fetch` runs in a worker thread. CRDs that
are not installed (ModelDeployment, HTTPRoute, VirtualService) read as empty lists; any other
failure raises, and the caller keeps the previous snapshot, as a gateway's data plane keeps
its last configuration when the control plane goes away.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from e2e.loadgen.routing import Snapshot

log = logging.getLogger("loadgen.apiserver")

#: (connect, read) timeout of every call, seconds.
TIMEOUT = (2.0, 5.0)


@dataclass(frozen=True)
class Kind:
    """A custom resource: group, the versions to try in order, plural."""

    group: str
    versions: tuple[str, ...]
    plural: str


MODELDEPLOYMENTS = Kind("modelrollout.io", ("v1alpha1",), "modeldeployments")
HTTPROUTES = Kind("gateway.networking.k8s.io", ("v1",), "httproutes")
VIRTUALSERVICES = Kind("networking.istio.io", ("v1", "v1beta1"), "virtualservices")


class ApiServer:
    """Lists the objects of a Snapshot with one kubeconfig's credentials."""

    def __init__(self, kubeconfig: str) -> None:
        cfg = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)  # type: ignore[no-untyped-call, unused-ignore]
        cfg.retries = 1  # fail fast: the next refresh is a second away
        self._api = client.ApiClient(cfg)
        self._core = client.CoreV1Api(self._api)
        self._custom = client.CustomObjectsApi(self._api)
        self._missing: set[str] = set()

    def _items(self, response: Any) -> list[dict[str, Any]]:
        items = json.loads(response.data).get("items") or []
        return [i for i in items if isinstance(i, dict)]

    def _custom_items(self, kind: Kind) -> list[dict[str, Any]]:
        for version in kind.versions:
            try:
                response = self._custom.list_cluster_custom_object(
                    kind.group, version, kind.plural, _preload_content=False, _request_timeout=TIMEOUT
                )
            except ApiException as e:
                if e.status == 404:  # this version (or the whole CRD) is not served
                    continue
                raise
            self._note(kind, f"{kind.group}/{version}", present=True)
            return self._items(response)
        self._note(kind, kind.group, present=False)
        return []

    def _note(self, kind: Kind, api: str, present: bool) -> None:
        """Logs when a CRD appears or disappears, not every second."""
        if present and kind.plural in self._missing:
            self._missing.discard(kind.plural)
            log.info("%s served (%s)", kind.plural, api)
        elif not present and kind.plural not in self._missing:
            self._missing.add(kind.plural)
            log.info("%s not served by the API server: skipped until it is", kind.plural)

    def fetch(self) -> Snapshot:
        """One pass over every namespace. Raises on errors other than an absent CRD."""
        services = self._items(
            self._core.list_service_for_all_namespaces(_preload_content=False, _request_timeout=TIMEOUT)
        )
        return Snapshot(
            modeldeployments=self._custom_items(MODELDEPLOYMENTS),
            services=services,
            httproutes=self._custom_items(HTTPROUTES),
            virtualservices=self._custom_items(VIRTUALSERVICES),
        )

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call, unused-ignore]
