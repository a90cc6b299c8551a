"""A small generic Kubernetes client: server-side apply, get, list, delete and status patches.

The operator writes a handful of kinds (Deployments, Services, ControllerRevisions, HTTPRoutes,
VirtualServices, ModelDeployment status), always as plain dicts and always through
server-side apply with one field manager, so a table of resource paths is all the typing the
API needs. Built on the official client's ApiClient for its kubeconfig and in-cluster auth.

Conflicts (409), throttling (429) and server errors (5xx) are retried here with a short
back-off; whatever still fails is raised as `errors.ClusterUnavailable` (temporary) or
`errors.ClusterRejected` (the object is invalid), never as a raw ApiException. A fenced write (one
that carries the resourceVersion its decision was based on) is not retried on 409: it raises
`errors.Conflict`, and the caller decides again. Before every write, and every retry of one, the
`gate` runs: leader election makes it raise `errors.NotLeader` once this replica may not write.
"""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import urllib3.exceptions
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from modelrollout import errors

FIELD_MANAGER = "modelrollout"
RETRY_STATUSES = frozenset({409, 429, 500, 502, 503, 504})
RETRY_DELAYS_S = (0.1, 0.3, 1.0, 2.0)

Body = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Kind:
    """Where a kind lives in the REST API."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None, name: str | None = None, subresource: str | None = None) -> str:
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        parts = [prefix]
        if self.namespaced and namespace is not None:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name is not None:
            parts.append(name)
        if subresource is not None:
            parts.append(subresource)
        return "/".join(parts)


DEPLOYMENT = Kind("apps/v1", "Deployment", "deployments")
SERVICE = Kind("v1", "Service", "services")
POD = Kind("v1", "Pod", "pods")
NODE = Kind("v1", "Node", "nodes", namespaced=False)
CONTROLLER_REVISION = Kind("apps/v1", "ControllerRevision", "controllerrevisions")
EVENT = Kind("v1", "Event", "events")
HTTP_ROUTE = Kind("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes")
VIRTUAL_SERVICE = Kind("networking.istio.io/v1", "VirtualService", "virtualservices")
MODEL_DEPLOYMENT = Kind("modelrollout.io/v1alpha1", "ModelDeployment", "modeldeployments")
LEASE = Kind("coordination.k8s.io/v1", "Lease", "leases")

KINDS = {(k.api_version, k.kind): k for k in (
    DEPLOYMENT, SERVICE, POD, NODE, CONTROLLER_REVISION, EVENT, HTTP_ROUTE, VIRTUAL_SERVICE, MODEL_DEPLOYMENT,
    LEASE)}


def kind_of(body: Mapping[str, Any]) -> Kind:
    try:
        return KINDS[(body["apiVersion"], body["kind"])]
    except KeyError:
        kind = f"{body.get('apiVersion')}/{body.get('kind')}"
        raise errors.ClusterRejected(f"the operator does not write {kind}") from None


def load_api_client(kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    """In-cluster credentials when running in a pod, else the kubeconfig (default location or given)
    and its current context (or the one named)."""
    if kubeconfig is None and context is None:
        try:
            config.load_incluster_config()
            return client.ApiClient()
        except config.ConfigException:
            pass
    configuration = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
    return client.ApiClient(configuration)


def connection_failure(error: BaseException) -> str:
    """The cause of a failed connection in a few words, without urllib3's object reprs.

        MaxRetryError(... NewConnectionError('<...HTTPSConnection object at 0x7f>: Failed to establish
        a new connection: [Errno 111] Connection refused'))  -> "Failed to establish a new connection:
        [Errno 111] Connection refused"
    """
    cause: BaseException = error
    while isinstance(cause, urllib3.exceptions.MaxRetryError) and cause.reason is not None:
        cause = cause.reason
    text = str(cause)
    if text.startswith("<") and ">: " in text:  # "<urllib3.connection.HTTPSConnection object at 0x...>: ..."
        text = text.split(">: ", 1)[1]
    return text or type(cause).__name__


class Kube:
    """Blocking calls; the kopf handlers run them in a worker thread."""

    def __init__(self, api_client: client.ApiClient, field_manager: str = FIELD_MANAGER,
                 retry_delays: tuple[float, ...] = RETRY_DELAYS_S, timeout: float = 30,
                 gate: Callable[[], None] | None = None) -> None:
        self.api_client = api_client
        self.field_manager = field_manager
        self.retry_delays = retry_delays  # a command-line tool answers at once rather than retrying
        self.timeout = timeout
        self.gate = gate  # runs before each write; raises errors.NotLeader to stop it

    def _request(self, method: str, path: str, query: Mapping[str, str] | None = None,
                 body: Any = None, content_type: str = "application/json", fenced: bool = False) -> Body | None:
        url = path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = {"Accept": "application/json", "Content-Type": content_type}
        for attempt, delay in enumerate((*self.retry_delays, None)):
            if method != "GET" and self.gate is not None:
                self.gate()
            try:
                params = self.api_client.param_serialize(
                    method=method, resource_path=url, header_params=headers, body=body, auth_settings=["BearerToken"])
                response = self.api_client.call_api(*params, _request_timeout=self.timeout)
                response.read()
            # connection refused, TLS, a truncated answer; urllib3 gives up with its own errors
            except (ApiException, OSError, ValueError, urllib3.exceptions.HTTPError) as error:
                if delay is not None:
                    time.sleep(delay * (attempt + 1))
                    continue
                raise errors.ClusterUnavailable(f"{method} {path}: {connection_failure(error)}") from None
            status, data = response.status, response.data
            if status == 404:
                return None
            if status == 409 and fenced:
                raise errors.Conflict(str(_translate(status, data, method, path)))
            if status >= 400:
                if status in RETRY_STATUSES and delay is not None:
                    time.sleep(delay * (attempt + 1))
                    continue
                raise _translate(status, data, method, path)
            return json.loads(data) if data else None
        raise AssertionError("unreachable")

    def apply(self, body: Body, force: bool = True) -> Body:
        """Server-side apply of a whole object, as the operator's field manager."""
        kind = kind_of(body)
        meta = body["metadata"]
        query = {"fieldManager": self.field_manager, "force": "true" if force else "false"}
        result = self._request("PATCH", kind.path(meta.get("namespace"), meta["name"]), query,
                               body=body, content_type="application/apply-patch+yaml")
        if result is None:
            raise errors.ClusterUnavailable(f"apply {kind.kind} {meta['name']}: the API server answered nothing")
        return result

    def apply_status(self, kind: Kind, namespace: str, name: str, status: Mapping[str, Any]) -> Body | None:
        body = {"apiVersion": kind.api_version, "kind": kind.kind,
                "metadata": {"name": name, "namespace": namespace}, "status": dict(status)}
        query = {"fieldManager": self.field_manager, "force": "true"}
        return self._request("PATCH", kind.path(namespace, name, "status"), query,
                             body=body, content_type="application/apply-patch+yaml")

    def merge_patch_status(self, kind: Kind, namespace: str, name: str, status: Mapping[str, Any],
                           resource_version: str | None = None) -> Body | None:
        """Replaces the listed status fields (null removes one) through the status subresource.

        With `resource_version` (the one the decision was based on) the patch is a compare-and-swap:
        the API server answers 409 if the object changed since, and this raises `errors.Conflict`."""
        body: Body = {"status": dict(status)}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        return self._request("PATCH", kind.path(namespace, name, "status"), {"fieldManager": self.field_manager},
                             body=body, content_type="application/merge-patch+json",
                             fenced=resource_version is not None)

    def merge_patch(self, kind: Kind, namespace: str | None, name: str, patch: Mapping[str, Any]) -> Body | None:
        return self._request("PATCH", kind.path(namespace, name), {"fieldManager": self.field_manager},
                             body=dict(patch), content_type="application/merge-patch+json")

    def get(self, kind: Kind, namespace: str | None, name: str) -> Body | None:
        return self._request("GET", kind.path(namespace, name))

    def list(self, kind: Kind, namespace: str | None = None, labels: Mapping[str, str] | None = None,
             fields: str | None = None) -> list[Body]:
        query: dict[str, str] = {}
        if labels:
            query["labelSelector"] = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        if fields:
            query["fieldSelector"] = fields
        result = self._request("GET", kind.path(namespace), query)
        items: list[Body] = (result or {}).get("items", [])
        return items

    def delete(self, kind: Kind, namespace: str | None, name: str) -> None:
        self._request("DELETE", kind.path(namespace, name), {"propagationPolicy": "Background"})

    def replace(self, body: Body) -> Body | None:
        """PUT a whole object; its metadata.resourceVersion makes it a compare-and-swap (409: `errors.Conflict`)."""
        kind = kind_of(body)
        meta = body["metadata"]
        return self._request("PUT", kind.path(meta.get("namespace"), meta["name"]), body=body, fenced=True)

    def create(self, body: Body) -> Body | None:
        kind = kind_of(body)
        return self._request("POST", kind.path(body["metadata"].get("namespace")), body=body)

    def served(self, kind: Kind) -> bool:
        """Whether the API server serves this kind (an optional CRD such as HTTPRoute is installed)."""
        group_path = "/api/v1" if kind.api_version == "v1" else f"/apis/{kind.api_version}"
        try:
            result = self._request("GET", group_path)
        except errors.ClusterError:
            return False
        return any(r.get("name") == kind.plural for r in (result or {}).get("resources", []))


def _translate(status: int, data: bytes | None, method: str, path: str) -> errors.ClusterError:
    message = ""
    try:
        message = json.loads(data or b"{}").get("message", "")
    except ValueError:
        message = (data or b"").decode(errors="replace")[:500]
    text = f"{method} {path}: {status} {message}"
    if status in RETRY_STATUSES or status == 401:
        return errors.ClusterUnavailable(text)
    return errors.ClusterRejected(text)
