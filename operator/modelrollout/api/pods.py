"""The pod template of a ModelDeployment: a Kubernetes PodTemplateSpec, mostly left open.

The API server validates the real pod spec when the operator applies the Deployments, so the
CRD does not copy the whole PodSpec schema (thousands of lines that would age with every
Kubernetes release). It declares only what the operator itself reads, so that a mistake there
is refused when the ModelDeployment is applied rather than much later, as a Degraded rollout:
the containers and their names and images, the ports (the Service targets one by name), the
resources (the GPU budget counts them) and the labels (some are reserved for the operator).
Everything else is kept as written (`x-kubernetes-preserve-unknown-fields`).
"""

from __future__ import annotations

from typing import Annotated

import pydantic

from modelrollout.api import labels, wire

RESERVED_LABELS = wire.Rule(
    cel=f"!self.exists(k, k.startsWith('{labels.PREFIX}'))",
    message=f"labels starting with {labels.PREFIX} are set by the operator and cannot be set here",
)


class PodMetadata(wire.OpenObject):
    """Labels and annotations for the pods; the operator adds its own labels to them."""

    labels: dict[str, str] | None = pydantic.Field(
        default=None, max_length=64, json_schema_extra=wire.validations(RESERVED_LABELS)
    )
    """Pod labels. Keys under modelrollout.io/ are reserved: the operator sets name, track and revision."""

    annotations: dict[str, str] | None = None
    """Pod annotations."""

    @pydantic.field_validator("labels")
    @classmethod
    def _no_reserved_labels(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        RESERVED_LABELS.check(not any(key.startswith(labels.PREFIX) for key in value or {}))
        return value


class ContainerPort(wire.OpenObject):
    """A port the container listens on."""

    name: str | None = pydantic.Field(default=None, min_length=1, max_length=15)
    """The port's name; traffic.targetPort may name it (an IANA service name, at most 15 characters)."""

    container_port: int = pydantic.Field(ge=1, le=65535)
    """The port number."""


Quantity = int | Annotated[str, pydantic.StringConstraints(max_length=64)]
"""A resource quantity: 2, "500m", "16Gi" (as in Kubernetes CRDs, a bare fraction like 0.5 is refused)."""


class Resources(wire.OpenObject):
    """Compute resources; the GPU budget counts gpuPool.resource in limits (or else requests)."""

    limits: dict[str, Quantity] | None = pydantic.Field(default=None, max_length=32)
    """Resource limits, e.g. {cpu: "2", nvidia.com/gpu: 1}."""

    requests: dict[str, Quantity] | None = pydantic.Field(default=None, max_length=32)
    """Resource requests."""

    def count(self, resource: str) -> int:
        """Whole units of an extended resource such as nvidia.com/gpu; 0 when not asked for.

        Extended resources cannot be overcommitted, so limits and requests agree when both are
        given; limits win when they do not.
        """
        for amounts in (self.limits, self.requests):
            if amounts and resource in amounts:
                return _whole_units(amounts[resource], resource)
        return 0


class Container(wire.OpenObject):
    """A container of the model server pod."""

    name: str = pydantic.Field(min_length=1, max_length=63)
    """The container's name."""

    image: str = pydantic.Field(min_length=1, max_length=1024)
    """The container image."""

    ports: list[ContainerPort] | None = pydantic.Field(default=None, max_length=32)
    """Ports the container listens on."""

    resources: Resources | None = None
    """Compute resources, including the accelerators the GPU budget counts."""


class PodSpec(wire.OpenObject):
    """The pod spec; only the containers are checked here."""

    containers: list[Container] = pydantic.Field(min_length=1, max_length=32)
    """The pod's containers, at least one."""


class PodTemplate(wire.OpenObject):
    """A PodTemplateSpec for the model server. The operator adds labels, selectors and model env vars."""

    metadata: PodMetadata | None = None
    """Pod labels and annotations."""

    spec: PodSpec
    """The pod spec."""

    def count(self, resource: str) -> int:
        """Units of `resource` one pod asks for, summed over its containers."""
        return sum(container.resources.count(resource) for container in self.spec.containers if container.resources)

    def asks_for(self, resource: str) -> bool:
        """Whether some container names `resource` in its limits or requests (even as 0)."""
        return any(
            resource in (container.resources.limits or {}) or resource in (container.resources.requests or {})
            for container in self.spec.containers
            if container.resources
        )

    def whole_units(self, resource: str) -> bool:
        """Whether every amount of `resource` in the containers is a whole number (1, "2", not "500m")."""
        return all(
            str(amounts[resource]).isdigit()
            for container in self.spec.containers
            if container.resources
            for amounts in (container.resources.limits, container.resources.requests)
            if amounts and resource in amounts
        )

    def port_names(self) -> set[str]:
        return {
            port.name
            for container in self.spec.containers
            for port in container.ports or ()
            if port.name is not None
        }


def _whole_units(amount: Quantity, resource: str) -> int:
    text = str(amount)
    if not text.isdigit():
        raise ValueError(f"{resource}: {amount!r} is not a whole number of units")
    return int(text)
