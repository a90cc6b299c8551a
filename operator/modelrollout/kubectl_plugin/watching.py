"""Following one ModelDeployment with the API server's watch, not by polling.

`follow` yields the object as it is, then again at every change the API server reports, until a
deadline. A watch that the server ends (its timeout, a restart) is resumed from the last
resourceVersion seen; one whose resourceVersion is too old (410 Gone) starts over from a fresh
list. Failures come out as the operator's `errors.ClusterError`s with one-line messages.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import urllib3.exceptions
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from modelrollout import errors
from modelrollout.adapters.cluster import kube
from modelrollout.api import resources

Body = dict[str, Any]
LONGEST_WATCH_S = 300  # the server ends each watch by then; it is resumed from where it stopped


class Gone(errors.ClusterRejected):
    """The object does not exist (any more)."""


def follow(api_client: client.ApiClient, namespace: str, name: str, deadline: float | None) -> Iterator[Body]:
    """The object now, then after every change, until `deadline` (time.monotonic()) if given."""
    api = client.CustomObjectsApi(api_client)
    where = (resources.GROUP, resources.VERSION, namespace, resources.PLURAL)
    selector = f"metadata.name={name}"
    version: str | None = None
    while deadline is None or time.monotonic() < deadline:
        try:
            if version is None:
                listing = api.list_namespaced_custom_object(*where, field_selector=selector)
                if not listing.get("items"):
                    raise Gone(f"modeldeployment {namespace}/{name} not found")
                version = listing["metadata"]["resourceVersion"]
                yield listing["items"][0]
            remaining = LONGEST_WATCH_S if deadline is None else deadline - time.monotonic()
            seconds = max(1, min(LONGEST_WATCH_S, int(remaining + 0.999)))
            for event in watch.Watch().stream(api.list_namespaced_custom_object, *where, field_selector=selector,
                                              resource_version=version, timeout_seconds=seconds,
                                              allow_watch_bookmarks=True):
                body: Body = event["raw_object"]
                if event["type"] == "DELETED":
                    raise Gone(f"modeldeployment {namespace}/{name} was deleted")
                version = body.get("metadata", {}).get("resourceVersion", version)
                if event["type"] != "BOOKMARK":
                    yield body
                if deadline is not None and time.monotonic() >= deadline:
                    return
        except ApiException as error:
            if error.status == 410:  # too old to resume: list again
                version = None
                continue
            raise _rejected(error, namespace) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise errors.ClusterUnavailable(f"watching {namespace}/{name}: {kube.connection_failure(error)}") from None


def _rejected(error: ApiException, namespace: str) -> errors.ClusterError:
    try:
        message = json.loads(error.body or "{}").get("message", "")
    except ValueError:
        message = ""
    text = f"{error.status} {message or error.reason}"
    if error.status in (401, 429) or (error.status or 0) >= 500:
        return errors.ClusterUnavailable(text)
    return errors.ClusterRejected(text)
