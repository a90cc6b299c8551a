"""GPU arithmetic: how many pods of one ModelDeployment may exist at once.

Accelerators are the scarce resource of a model server rollout: a blue-green preview can need
as many GPUs again as the stable pods, and a pod that cannot get one stays Pending. So every
plan is bounded by a *budget*, counted in pods of this ModelDeployment, all revisions together:

    cap = max(N, min(N + maxExtraGPUs / g, (held + free) / g))      (g: GPUs per pod, N: spec.replicas)

The stable's normal use (N pods) is always allowed in a rollout's budget, whatever the pool
says: it is what runs when no rollout does. A scale-up of a serving ModelDeployment beyond the
pool is cut to what fits before it gets here (`stepping.fit_stable`), so pods are not left Pending.
Above that a rollout may use gpuPool.maxExtraGPUs more, but only as much as the pool really has:
the GPUs our scheduled pods hold plus the free ones. When the cap leaves no room for the next
candidate pods, the stable scales down as the candidate scales up (dynamic stable scaling, see
`replicas`); strategies that need both side by side (blue-green, shadow) hold instead, with a
message that says how many GPUs are missing.

Without a gpuPool (or with pods that ask for none) nothing is counted and the cap is 2N, the
most any plan asks for.
"""

from __future__ import annotations

import dataclasses

from modelrollout.api import spec as api_spec
from modelrollout.core import observation


@dataclasses.dataclass(frozen=True)
class Budget:
    """How many pods of this ModelDeployment may exist at once."""

    normal: int
    """spec.replicas: the stable's normal size, always within the budget."""

    cap: int
    """Pods in total, every revision together; at least `normal`."""

    per_pod: int = 0
    """GPUs one pod asks for; 0 when GPUs are not counted."""

    resource: str = "nvidia.com/gpu"
    max_extra: int | None = None
    """gpuPool.maxExtraGPUs; None without a gpuPool."""

    free: int | None = None
    """Free GPUs in the pool, when it was observed."""

    pool: str = ""

    @property
    def counted(self) -> bool:
        return self.per_pod > 0

    @property
    def extra(self) -> int:
        """Pods allowed beyond the stable's normal size."""
        return self.cap - self.normal

    def gpus(self, pods: int) -> int:
        return pods * self.per_pod

    def shortfall(self, pods: int) -> str:
        """Why `pods` more pods do not fit, in numbers.

            Budget(4, 4, 2, free=4, pool="a100").shortfall(4)
                -> "needs 8 more nvidia.com/gpu, 4 free in pool a100: 4 missing"
        """
        if not self.counted:
            return f"needs room for {pods} more pods"
        needed = self.gpus(pods)
        if self.free is not None and (self.max_extra is None or self.free < self.max_extra):
            return (f"needs {needed} more {self.resource}, {self.free} free in pool {self.pool}: "
                    f"{needed - self.free} missing")
        return f"needs {needed} more {self.resource}, gpuPool.maxExtraGPUs allows {self.max_extra}"

    def scale_shortfall(self, asked: int, fits: int) -> str:
        """A scale-up the pool cannot hold, in numbers.

            Budget(3, 3, 1, free=0, pool="l4").scale_shortfall(5, 3)
                -> "scaling to 5 replicas: 3 fit, 2 missing (2 more nvidia.com/gpu, 0 free in pool l4)"
        """
        missing = asked - fits
        return (f"scaling to {asked} replicas: {fits} fit, {missing} missing "
                f"({self.gpus(missing)} more {self.resource}, {self.free} free in pool {self.pool})")

    def pending(self, pods: int, track: str) -> str:
        """Pods Pending for capacity, in words.

            Budget(4, 4, 1, free=0, pool="a100").pending(2, "canary")
                -> "2 canary pods Pending: needs 2 more nvidia.com/gpu, 0 free in pool a100"
        """
        pending = f"{pods} {track} pod{'' if pods == 1 else 's'} Pending"
        if not self.counted:
            return f"{pending}: no node has room for {'it' if pods == 1 else 'them'}"
        return f"{pending}: needs {self.gpus(pods)} more {self.resource}, " + (
            f"{self.free} free in pool {self.pool}" if self.free is not None else f"pool {self.pool} is full"
        )


def cap(normal: int, per_pod: int, max_extra: int, held: int | None, free: int | None) -> int:
    """Pods of one ModelDeployment that fit the budget (see the module docstring).

        cap(4, 1, 2, held=4, free=10)  -> 6     maxExtraGPUs bounds the surge
        cap(4, 1, 2, held=4, free=1)   -> 5     the pool has only one GPU free
        cap(4, 2, 8, held=2, free=0)   -> 4     the stable's normal use is always allowed
    """
    if per_pod <= 0:
        return 2 * normal
    limit = normal * per_pod + max_extra
    if held is not None and free is not None:
        limit = min(limit, held + free)
    return max(normal, limit // per_pod)


def budget(spec: api_spec.ModelDeploymentSpec, pool: observation.Pool | None) -> Budget:
    """The budget of a ModelDeployment given what its pool looks like now."""
    normal = spec.replicas
    section = spec.gpu_pool
    per_pod = spec.gpus_per_pod()
    if section is None or per_pod <= 0:
        return Budget(normal, cap(normal, 0, 0, None, None))
    name = pool.name if pool is not None and pool.name else ",".join(sorted(section.node_selector.values()))
    return Budget(
        normal=normal,
        cap=cap(normal, per_pod, section.max_extra_gpus, pool.held if pool else None, pool.free if pool else None),
        per_pod=per_pod,
        resource=section.resource,
        max_extra=section.max_extra_gpus,
        free=pool.free if pool is not None else None,
        pool=name,
    )
