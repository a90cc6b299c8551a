"""The ModelDeployment resource: who it is (group, version, kind, names) and the whole object.

kopf handlers, the kubectl plugin, the CRD renderer and the tests all address the resource by
these names; they live here so that none of them spells them out. `ModelDeployment` parses a
whole object, e.g. a kopf body: `resources.ModelDeployment.model_validate(body)`.
"""

from __future__ import annotations

import datetime
import re
from typing import Any, Literal

import pydantic

from modelrollout.api import spec, status, wire

GROUP = "modelrollout.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ModelDeployment"
PLURAL = "modeldeployments"
SINGULAR = "modeldeployment"
SHORT_NAMES = ("mdep",)
CATEGORIES = ("modelrollout",)
CRD_NAME = f"{PLURAL}.{GROUP}"

MAX_NAME_LENGTH = 50
"""A ModelDeployment's name is at most this long: the operator names Services and routes
`<name>-<track>` (up to 8 more characters) and Service names are DNS labels of 63 at most."""

NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
"""A DNS-1035 label, as Service names must be."""


class ObjectMeta(wire.Record):
    """The parts of metadata the operator reads."""

    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    creation_timestamp: datetime.datetime | None = None
    deletion_timestamp: datetime.datetime | None = None
    labels: dict[str, str] = pydantic.Field(default_factory=dict)
    annotations: dict[str, str] = pydantic.Field(default_factory=dict)

    @pydantic.field_validator("name")
    @classmethod
    def _name_fits(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > MAX_NAME_LENGTH or not re.match(NAME_PATTERN, value)):
            raise ValueError(
                f"metadata.name must be a DNS-1035 label of at most {MAX_NAME_LENGTH} characters: {value!r}"
            )
        return value


# Aliases: inside the class body the field names `spec` and `status` hide the modules.
_Spec = spec.ModelDeploymentSpec
_Status = status.ModelDeploymentStatus


class ModelDeployment(wire.Record):
    """A model server whose new versions are rolled out progressively (canary, blue-green or shadow),
    judged at each step with Prometheus against the running version, and rolled back automatically."""

    api_version: Literal["modelrollout.io/v1alpha1"] = "modelrollout.io/v1alpha1"
    kind: Literal["ModelDeployment"] = "ModelDeployment"
    metadata: ObjectMeta = ObjectMeta()
    spec: _Spec
    status: _Status = _Status()

    def body(self) -> dict[str, Any]:
        """The object as the API takes it (camelCase, no empty fields)."""
        return self.model_dump(mode="json", exclude_none=True)
