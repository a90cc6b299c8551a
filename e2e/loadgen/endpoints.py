"""Reads the endpoints file that the harness's pod runner writes.

Format (JSON): `{"pods": [{"namespace": str, "name": str, "host": str, "port": int, "labels": {str: str},
"ready": bool}]}`; each entry's model server listens on host:port (host: 127.0.0.1 for the pod
runner's processes, the pod IP for the real node's containers; 127.0.0.1 when left out). The writer should
replace the file atomically (write a temporary file, then rename); a half-written or missing
file is reported and the last good list kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from e2e.loadgen.routing import Pod


class EndpointsError(ValueError):
    """The file exists but cannot be used; the message says why."""


def parse(doc: Any) -> list[Pod]:
    """The decoded JSON document -> pods. Entries without a usable port are refused.

    >>> parse({"pods": [{"namespace": "ml", "name": "a-1", "port": 9001, "ready": True}]})[0].port
    9001
    """
    if not isinstance(doc, Mapping) or not isinstance(doc.get("pods"), list):
        raise EndpointsError('expected an object with a "pods" list')
    pods = []
    for i, entry in enumerate(doc["pods"]):
        if not isinstance(entry, Mapping):
            raise EndpointsError(f"pods[{i}] is not an object")
        port = entry.get("port")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise EndpointsError(f"pods[{i}].port is not a port number: {port!r}")
        host = entry.get("host", "127.0.0.1")
        if not isinstance(host, str) or not host:
            raise EndpointsError(f"pods[{i}].host is not an address: {host!r}")
        labels = entry.get("labels") or {}
        if not isinstance(labels, Mapping):
            raise EndpointsError(f"pods[{i}].labels is not an object")
        pods.append(Pod(
            namespace=str(entry.get("namespace", "default")),
            name=str(entry.get("name", "")),
            port=port,
            host=host,
            labels={str(k): str(v) for k, v in labels.items()},
            ready=bool(entry.get("ready", False)),
        ))
    return pods


def read(path: Path) -> list[Pod]:
    """Reads and parses the file; a missing file means no pods yet."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    try:
        return parse(json.loads(text))
    except json.JSONDecodeError as e:
        raise EndpointsError(f"{path}: not JSON ({e})") from None
