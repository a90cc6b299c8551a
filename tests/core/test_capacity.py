"""The GPU budget: the docstring examples as a table, and the bounds it must keep."""

from __future__ import annotations

import hypothesis
import pytest
from hypothesis import strategies as st

from modelrollout.core import capacity, observation
from tests.core import world


@pytest.mark.parametrize(
    "args, expected",
    [
        ((4, 1, 2, 4, 10), 6),
        ((4, 1, 2, 4, 1), 5),
        ((4, 2, 8, 2, 0), 4),
        ((4, 2, 8, 8, 8), 8),
        ((4, 2, 3, None, None), 5),  # 11 GPUs hold 5 pods of 2
        ((3, 0, 0, None, None), 6),  # nothing counted: the most any plan asks for
    ],
)
def test_cap(args: tuple[int, int, int, int | None, int | None], expected: int) -> None:
    assert capacity.cap(*args) == expected


@hypothesis.given(st.integers(1, 50), st.integers(1, 8), st.integers(0, 64), st.integers(0, 400), st.integers(0, 400))
def test_the_cap_keeps_the_stable_and_never_exceeds_the_extra_gpus_or_the_pool(
    normal: int, per_pod: int, max_extra: int, held: int, free: int
) -> None:
    pods = capacity.cap(normal, per_pod, max_extra, held, free)
    assert pods >= normal
    assert (pods - normal) * per_pod <= max_extra
    assert pods * per_pod <= max(normal * per_pod, held + free)


def test_the_budget_of_a_spec_reads_the_pool() -> None:
    spec = world.make_spec(replicas=4, gpus=2, max_extra=8)
    pool = observation.Pool(allocatable=16, requested=12, held=8, name="a100")
    budget = capacity.budget(spec, pool)
    assert (budget.cap, budget.per_pod, budget.free, budget.pool) == (6, 2, 4, "a100")
    assert budget.shortfall(4) == "needs 8 more nvidia.com/gpu, 4 free in pool a100: 4 missing"
    assert budget.pending(2, "canary") == "2 canary pods Pending: needs 4 more nvidia.com/gpu, 4 free in pool a100"


def test_without_a_pool_observation_only_max_extra_gpus_bounds_the_surge() -> None:
    budget = capacity.budget(world.make_spec(replicas=4, gpus=1, max_extra=2), None)
    assert budget.cap == 6 and budget.shortfall(3) == "needs 3 more nvidia.com/gpu, gpuPool.maxExtraGPUs allows 2"


def test_the_pool_name_defaults_to_the_node_selector() -> None:
    budget = capacity.budget(world.make_spec(), observation.Pool(8, 0))
    assert budget.pool == "a100"


def test_without_gpus_nothing_is_counted() -> None:
    budget = capacity.budget(world.make_spec(replicas=3, gpus=None), None)
    assert (budget.cap, budget.counted) == (6, False)
    assert budget.pending(1, "preview") == "1 preview pod Pending: no node has room for it"
