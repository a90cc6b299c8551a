"""Which cluster and namespace the plugin talks to, decided the way kubectl decides it.

kubectl hands a plugin only its command line and environment (it stopped exporting
KUBECTL_PLUGINS_CURRENT_NAMESPACE in 1.12), so the plugin reads the kubeconfig itself:
`--kubeconfig`, else $KUBECONFIG (a list of files, merged), else ~/.kube/config; the context
named by `--context`, else the current one; the namespace from `-n`, else the context's, else
`default`. In a pod without a kubeconfig it uses the pod's service account and namespace.

Every failure is a `ConnectError` with a one-line message that says what to do.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

from kubernetes import client, config

from modelrollout.adapters.cluster import kube

SERVICE_ACCOUNT_NAMESPACE = pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DEFAULT_KUBECONFIG = "~/.kube/config"


class ConnectError(Exception):
    """No usable kubeconfig or context."""


@dataclasses.dataclass(frozen=True)
class Target:
    api_client: client.ApiClient
    namespace: str
    server: str
    """The API server's URL, for error messages."""


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Target:
    files = kubeconfig or os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG
    found = [f for f in files.split(os.pathsep) if f and pathlib.Path(f).expanduser().is_file()]
    if not found:
        if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            return _in_cluster(namespace)
        where = "--kubeconfig" if kubeconfig else "$KUBECONFIG" if os.environ.get("KUBECONFIG") else "the default"
        raise ConnectError(f"no kubeconfig: {files} ({where}) does not exist; "
                           "set KUBECONFIG or pass --kubeconfig")
    path = os.pathsep.join(found)
    try:
        contexts, current = config.list_kube_config_contexts(config_file=path)
        chosen = current if context is None else next((c for c in contexts if c["name"] == context), None)
        if chosen is None:
            names = ", ".join(sorted(c["name"] for c in contexts)) or "none"
            raise ConnectError(f"context {context!r} is not in {path} (it has: {names})")
        api_client = kube.load_api_client(path, chosen["name"])
    except config.ConfigException as error:
        raise ConnectError(f"kubeconfig {path}: {error}") from None
    except (OSError, ValueError) as error:  # unreadable file, bad certificate data
        raise ConnectError(f"kubeconfig {path}: {error}") from None
    space = namespace or chosen.get("context", {}).get("namespace") or "default"
    return Target(api_client, space, str(api_client.configuration.host))


def _in_cluster(namespace: str | None) -> Target:
    try:
        config.load_incluster_config()
    except config.ConfigException as error:
        raise ConnectError(f"in-cluster configuration: {error}") from None
    api_client = client.ApiClient()
    own = SERVICE_ACCOUNT_NAMESPACE.read_text().strip() if SERVICE_ACCOUNT_NAMESPACE.exists() else "default"
    return Target(api_client, namespace or own, str(api_client.configuration.host))
