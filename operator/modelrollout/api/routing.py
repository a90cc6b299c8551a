"""spec.traffic: how requests reach the tracks, and which system splits or mirrors them.

Each provider has its own small section, and only the section of the chosen provider may be
given, so a ModelDeployment never carries settings that silently do nothing.
"""

from __future__ import annotations

import enum
from typing import Annotated

import pydantic

from modelrollout.api import wire


class Provider(enum.StrEnum):
    """The system that splits traffic between the tracks.

    GatewayAPI and Istio weight the routes and can mirror requests (shadow). ReplicaRatio needs
    no mesh: one Service selects the pods of both tracks, so the split follows the replica
    counts, is only as fine as one pod, and cannot mirror.
    """

    GATEWAY_API = "GatewayAPI"
    ISTIO = "Istio"
    REPLICA_RATIO = "ReplicaRatio"

    @property
    def can_mirror(self) -> bool:
        return self is not Provider.REPLICA_RATIO


class ParentRef(wire.Object):
    """A Gateway (or other parent) the operator's HTTPRoute attaches to."""

    name: str = pydantic.Field(min_length=1, max_length=253)
    """The parent's name."""

    namespace: str | None = pydantic.Field(default=None, max_length=63)
    """The parent's namespace; default the ModelDeployment's."""

    section_name: str | None = pydantic.Field(default=None, max_length=253)
    """A listener of the Gateway."""

    port: int | None = pydantic.Field(default=None, ge=1, le=65535)
    """A port of the Gateway."""

    group: str = pydantic.Field(default="gateway.networking.k8s.io", max_length=253)
    """The parent's API group."""

    kind: str = pydantic.Field(default="Gateway", max_length=63)
    """The parent's kind."""


class GatewayAPI(wire.Object):
    """Gateway API settings: the operator owns one HTTPRoute, `<name>`, weighted over the tracks."""

    parent_refs: list[ParentRef] = pydantic.Field(min_length=1, max_length=32)
    """Where the HTTPRoute attaches."""

    hostnames: list[str] | None = pydantic.Field(default=None, max_length=16)
    """Host names the route answers for; default all of its parents'."""


class Istio(wire.Object):
    """Istio settings: the operator owns one VirtualService, `<name>`, weighted over the tracks."""

    hosts: list[str] = pydantic.Field(min_length=1, max_length=16)
    """The VirtualService's hosts."""

    gateways: list[str] | None = pydantic.Field(default=None, max_length=16)
    """Istio gateways to bind to; default the mesh."""


_GATEWAY_REQUIRED = wire.Rule(
    cel="self.provider != 'GatewayAPI' || has(self.gatewayAPI)",
    message="provider GatewayAPI needs the gatewayAPI section (parentRefs)",
    field_path=".gatewayAPI",
    reason=wire.Reason.REQUIRED,
)
_GATEWAY_FORBIDDEN = wire.Rule(
    cel="self.provider == 'GatewayAPI' || !has(self.gatewayAPI)",
    message="the gatewayAPI section is only used with provider GatewayAPI",
    field_path=".gatewayAPI",
    reason=wire.Reason.FORBIDDEN,
)
_ISTIO_REQUIRED = wire.Rule(
    cel="self.provider != 'Istio' || has(self.istio)",
    message="provider Istio needs the istio section (hosts)",
    field_path=".istio",
    reason=wire.Reason.REQUIRED,
)
_ISTIO_FORBIDDEN = wire.Rule(
    cel="self.provider == 'Istio' || !has(self.istio)",
    message="the istio section is only used with provider Istio",
    field_path=".istio",
    reason=wire.Reason.FORBIDDEN,
)


class Traffic(wire.Object):
    """How requests reach the model: one Service per track on `port`, split by `provider`."""

    model_config = pydantic.ConfigDict(
        json_schema_extra=wire.validations(_GATEWAY_REQUIRED, _GATEWAY_FORBIDDEN, _ISTIO_REQUIRED, _ISTIO_FORBIDDEN)
    )

    provider: Provider
    """GatewayAPI, Istio or ReplicaRatio."""

    port: int = pydantic.Field(default=80, ge=1, le=65535)
    """The port of the Services (and routes) in front of the model."""

    target_port: int | Annotated[str, pydantic.StringConstraints(min_length=1, max_length=15)] = "http"
    """The container port the Services send to: a number or the name of a port in the template."""

    gateway_api: GatewayAPI | None = pydantic.Field(default=None, alias="gatewayAPI")
    """Gateway API settings, with provider GatewayAPI."""

    istio: Istio | None = None
    """Istio settings, with provider Istio."""

    @pydantic.model_validator(mode="after")
    def _sections_match_provider(self) -> Traffic:
        _GATEWAY_REQUIRED.check(self.provider is not Provider.GATEWAY_API or self.gateway_api is not None)
        _GATEWAY_FORBIDDEN.check(self.provider is Provider.GATEWAY_API or self.gateway_api is None)
        _ISTIO_REQUIRED.check(self.provider is not Provider.ISTIO or self.istio is not None)
        _ISTIO_FORBIDDEN.check(self.provider is Provider.ISTIO or self.istio is None)
        return self
