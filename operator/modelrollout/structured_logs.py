"""Structured JSON logs: one object per line, with the ModelDeployment and revision on every line.

A tick sets `CURRENT` (namespace, name, revision) for its task; asyncio tasks and the worker
threads started with `asyncio.to_thread` inherit it, so every line written while a tick runs,
ours and kopf's and the clients', says which rollout it is about. kopf's per-object loggers
also carry the object they log for (`k8s_ref`), which fills the same fields.

    {"time": "...", "level": "INFO", "logger": "kopf.objects", "message": "...",
     "namespace": "ml", "modeldeployment": "scorer", "revision": "7b21aa0c4e"}
"""

from __future__ import annotations

import contextvars
import dataclasses
import datetime
import json
import logging
from typing import Any


@dataclasses.dataclass(frozen=True)
class Subject:
    namespace: str
    name: str
    revision: str | None = None


CURRENT: contextvars.ContextVar[Subject | None] = contextvars.ContextVar("modelrollout_subject", default=None)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        subject = CURRENT.get()
        reference = getattr(record, "k8s_ref", None)
        if subject is not None:
            line.update(namespace=subject.namespace, modeldeployment=subject.name, revision=subject.revision)
        elif isinstance(reference, dict) and reference.get("kind") == "ModelDeployment":
            line.update(namespace=reference.get("namespace"), modeldeployment=reference.get("name"))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(level: str, form: str) -> None:
    handler = logging.StreamHandler()
    if form == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
