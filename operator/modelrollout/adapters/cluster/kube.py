"""A small generic Kubernetes client: server-side apply, get, list, delete and status patches.

The operator writes a handful of kinds (Deployments, Services, ControllerRevisions, HTTPRoutes,
VirtualServices, ModelDeployment status), always as plain dicts and always through
server-side apply with one field manager, so a table of resource paths is all the typing the
API needs. Built on the official client's ApiClient for its kubeconfig and in-cluster auth.

Conflicts (409), throttling (429) and server errors (5xx) are retried here with a short
jittered back-off (a 429's Retry-After is honoured, and pauses every caller of this client);
requests go through a client-side token bucket (`Bucket`, QPS 20 and burst 30 by default),
and each one is reported to `observe(verb, resource, code)`. Whatever still fails is raised
as `errors.ClusterUnavailable` (temporary) or `errors.ClusterRejected` (the object is
invalid), never as a raw ApiException. Watches (`watch`) and paged LISTs (`list_chunk`) feed
the watch-backed caches; `apply` skips a body a cache shows the cluster already carries.
A fenced write (one that carries the resourceVersion its decision was based on) is not retried
on 409: it raises `errors.Conflict`, and the caller decides again. Before every write, and every
retry of one, the `gate` runs: leader election makes it raise `errors.NotLeader` once this
replica may not write.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import urllib3.exceptions
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from modelrollout import errors

FIELD_MANAGER = "modelrollout"
RETRY_STATUSES = frozenset({409, 429, 500, 502, 503, 504})
RETRY_DELAYS_S = (0.1, 0.3, 1.0, 2.0)

Body = dict[str, Any]
Page = tuple[list[Body], str, str]
"""One page of a LIST: its items, the list's resourceVersion, the continue token ("" on the last)."""
INTENT = "modelrollout.io/intent"
"""Annotation on every object the operator applies: a hash of the applied body, so an apply
whose body has not changed since can be skipped (see `Kube.known`)."""


def intent_of(body: Mapping[str, Any]) -> str:
    """A short hash of a body to apply, its own intent annotation left out (stable across key order).

        intent_of({"a": 1, "b": 2}) == intent_of({"b": 2, "a": 1})
    """
    meta = dict(body.get("metadata") or {})
    meta["annotations"] = {k: v for k, v in (meta.get("annotations") or {}).items() if k != INTENT}
    canon = json.dumps({**body, "metadata": meta}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(canon.encode(), digest_size=12).hexdigest()


def unchanged(body: Mapping[str, Any], seen: Mapping[str, Any] | None) -> bool:
    """Whether `seen` (what a watch holds of the object) already carries `body`: the same intent,
    and the same replicas (another writer, an HPA or `kubectl scale`, may have changed those)."""
    if seen is None:
        return False
    if ((seen.get("metadata") or {}).get("annotations") or {}).get(INTENT) != intent_of(body):
        return False
    wanted = (body.get("spec") or {}).get("replicas")
    return wanted is None or (seen.get("spec") or {}).get("replicas") == wanted


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


class Bucket:
    """A thread-safe token bucket: `qps` tokens a second, at most `burst` saved; `pause` holds
    every caller until a deadline (a 429's Retry-After).

        Bucket(qps=20, burst=30): 30 requests at once, then one every 50 ms
    """

    def __init__(self, qps: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.qps, self.burst = qps, max(1, burst)
        self.clock, self.sleep = clock, sleep
        self._tokens = float(self.burst)
        self._at = clock()
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def _wait(self) -> float:
        """Takes a token if one is there (0.0), else says how long to wait for one."""
        with self._lock:
            now = self.clock()
            if now < self._paused_until:
                return self._paused_until - now
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.qps)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return max(0.001, (1 - self._tokens) / self.qps)

    def acquire(self) -> float:
        """Blocks until a token is taken; returns the seconds waited."""
        waited = 0.0
        while (wait := self._wait()) > 0:
            self.sleep(wait)
            waited += wait
        return waited

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, self.clock() + seconds)


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """A Retry-After header in seconds (the API server sends whole seconds), or None."""
    value = (headers or {}).get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _segments(path: str) -> list[str]:
    """A REST path after its group, version and namespace: [plural, name?, subresource?]."""
    parts = [p for p in path.split("?")[0].split("/") if p]
    parts = parts[2:] if parts[:1] == ["api"] else parts[3:]
    if parts[:1] == ["namespaces"] and len(parts) > 2:
        parts = parts[2:]
    return parts


def resource_of(path: str) -> str:
    """The resource a REST path names, subresource included.

        resource_of("/api/v1/namespaces/ml/pods") -> "pods"
        resource_of("/apis/modelrollout.io/v1alpha1/namespaces/ml/modeldeployments/x/status")
            -> "modeldeployments/status"
    """
    parts = _segments(path)
    if not parts:
        return ""
    return parts[0] + (f"/{parts[2]}" if len(parts) > 2 else "")


def verb_of(method: str, path: str) -> str:
    """The API server's verb: a GET of a collection is a LIST.

        verb_of("GET", "/api/v1/nodes") -> "LIST";  verb_of("GET", "/api/v1/nodes/n1") -> "GET"
    """
    if method != "GET":
        return method
    return "LIST" if len(_segments(path)) == 1 else "GET"


class Kube:
    """Blocking calls; the kopf handlers run them in a worker thread."""

    def __init__(self, api_client: client.ApiClient, field_manager: str = FIELD_MANAGER,
                 retry_delays: tuple[float, ...] = RETRY_DELAYS_S, timeout: float = 30,
                 bucket: Bucket | None = None, gate: Callable[[], None] | None = None) -> None:
        self.api_client = api_client
        self.field_manager = field_manager
        self.retry_delays = retry_delays  # a command-line tool answers at once rather than retrying
        self.timeout = timeout
        self.bucket = bucket
        self.observe: Callable[[str, str, str], None] | None = None
        """Told (verb, resource, code) of every request, "error" as the code when none came back."""
        self.known: Callable[[Body], Body | None] | None = None
        """What a watch-backed cache holds of the object a body names; with it, `apply` skips bodies
        the cluster already carries."""
        self.cached: Callable[[Kind, str, str], tuple[bool, Body | None]] | None = None
        """A watch-backed cache's read: (whether it watches that kind, the object or None)."""
        self.skipped = 0
        self.gate = gate  # runs before each write; raises errors.NotLeader to stop it

    def _request(self, method: str, path: str, query: Mapping[str, str] | None = None,
                 body: Any = None, content_type: str = "application/json", fenced: bool = False) -> Body | None:
        url = path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = {"Accept": "application/json", "Content-Type": content_type}
        verb = verb_of(method, path)
        for attempt, delay in enumerate((*self.retry_delays, None)):
            if self.bucket is not None:
                self.bucket.acquire()
            if method != "GET" and self.gate is not None:  # after the bucket's wait: the Lease may be gone
                self.gate()
            try:
                params = self.api_client.param_serialize(
                    method=method, resource_path=url, header_params=headers, body=body, auth_settings=["BearerToken"])
                response = self.api_client.call_api(*params, _request_timeout=self.timeout)
                response.read()
            # connection refused, TLS, a truncated answer; urllib3 gives up with its own errors
            except (ApiException, OSError, ValueError, urllib3.exceptions.HTTPError) as error:
                self._count(verb, path, "error")
                if delay is not None:
                    time.sleep(delay * (attempt + 1) * random.uniform(0.5, 1.5))
                    continue
                raise errors.ClusterUnavailable(f"{method} {path}: {connection_failure(error)}") from None
            status, data = response.status, response.data
            self._count(verb, path, str(status))
            if status == 404:
                return None
            if status == 409 and fenced:
                raise errors.Conflict(str(_translate(status, data, method, path)))
            if status >= 400:
                if status in RETRY_STATUSES and delay is not None:
                    wait = delay * (attempt + 1) * random.uniform(0.5, 1.5)
                    after = retry_after(response.headers) if status == 429 else None
                    if after is not None:
                        if self.bucket is not None:
                            self.bucket.pause(after)
                        wait = max(wait, after * random.uniform(1.0, 1.5))
                    time.sleep(wait)
                    continue
                raise _translate(status, data, method, path)
            return json.loads(data) if data else None
        raise AssertionError("unreachable")

    def _count(self, verb: str, path: str, code: str) -> None:
        if self.observe is not None:
            self.observe(verb, resource_of(path), code)

    def apply(self, body: Body, force: bool = True) -> Body:
        """Server-side apply of a whole object, as the operator's field manager."""
        kind = kind_of(body)
        body = {**body, "metadata": dict(body["metadata"])}
        meta = body["metadata"]
        meta["annotations"] = {**(meta.get("annotations") or {}), INTENT: intent_of(body)}
        if self.known is not None:
            seen = self.known(body)
            if seen is not None and unchanged(body, seen):
                self.skipped += 1
                return seen
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

    def read(self, kind: Kind, namespace: str, name: str) -> Body | None:
        """From the watch-backed cache when one is attached and watches the kind, else a GET."""
        if self.cached is not None:
            watched, body = self.cached(kind, namespace, name)
            if watched:
                return body
        return self.get(kind, namespace, name)

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

    def list_chunk(self, kind: Kind, namespace: str | None, selector: str = "", fields: str = "",
                   limit: int = 500, token: str = "") -> Page:
        """One page of a LIST (chunked by `limit`, the next asked for with `token`)."""
        query = {k: v for k, v in (("labelSelector", selector), ("fieldSelector", fields), ("limit", str(limit)),
                                   ("continue", token)) if v}
        result = self._request("GET", kind.path(namespace), query) or {}
        meta = result.get("metadata") or {}
        return result.get("items") or [], str(meta.get("resourceVersion", "")), str(meta.get("continue") or "")

    def watch(self, kind: Kind, namespace: str | None, resource_version: str, selector: str = "",
              fields: str = "", timeout_s: int = 300) -> Iterator[tuple[str, Body]]:
        """The events of a WATCH from `resource_version`, bookmarks included, until the server ends it
        (after `timeout_s`); raises `errors.ClusterUnavailable` when the stream cannot be opened or breaks."""
        query = {k: v for k, v in (
            ("watch", "true"), ("allowWatchBookmarks", "true"), ("resourceVersion", resource_version),
            ("timeoutSeconds", str(timeout_s)), ("labelSelector", selector), ("fieldSelector", fields)) if v}
        url = kind.path(namespace) + "?" + urllib.parse.urlencode(query)
        if self.bucket is not None:
            self.bucket.acquire()
        try:
            params = self.api_client.param_serialize(method="GET", resource_path=url,
                                                     header_params={"Accept": "application/json"},
                                                     auth_settings=["BearerToken"])
            response = self.api_client.call_api(*params, _request_timeout=(10, timeout_s + 30))
        except (ApiException, OSError, ValueError, urllib3.exceptions.HTTPError) as error:
            self._count("WATCH", kind.path(namespace), "error")
            raise errors.ClusterUnavailable(f"WATCH {kind.path(namespace)}: {connection_failure(error)}") from None
        self._count("WATCH", kind.path(namespace), str(response.status))
        raw = response.response
        try:
            if response.status >= 400:
                raise _translate(response.status, raw.read(), "WATCH", kind.path(namespace))
            pending = b""
            for chunk in raw.stream(65536, decode_content=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        event = json.loads(line)
                        yield str(event.get("type", "")), event.get("object") or {}
        except (OSError, ValueError, urllib3.exceptions.HTTPError) as error:
            raise errors.ClusterUnavailable(f"WATCH {kind.path(namespace)}: {connection_failure(error)}") from None
        finally:
            raw.release_conn()

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
