"""GPU node pools from `e2e/nodepools.yaml`: parsed, checked, and turned into Node objects.

A malformed file is refused with the line that is wrong, because a typo in a pool would
otherwise surface much later as a pod that never schedules.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

POOL_LABEL = "modelrollout.io/pool"
PRODUCT_LABEL = "nvidia.com/gpu.product"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_TAINT = re.compile(
    r"^(?P<key>[A-Za-z0-9./_-]+)(=(?P<value>[A-Za-z0-9._-]*))?:(?P<effect>NoSchedule|PreferNoSchedule|NoExecute)$"
)
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$")


class NodePoolError(ValueError):
    """The node-pool file is malformed; the message names the file and line."""


@dataclasses.dataclass(frozen=True)
class Pool:
    name: str
    nodes: int
    capacity: Mapping[str, str]
    product: str | None = None
    taints: tuple[tuple[str, str, str], ...] = ()


def _fail(path: Path, node: yaml.Node, message: str) -> NodePoolError:
    return NodePoolError(f"{path}:{node.start_mark.line + 1}: {message}")


def _mapping(path: Path, node: yaml.Node, what: str) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        raise _fail(path, node, f"{what} must be a mapping")
    out: dict[str, yaml.Node] = {}
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            raise _fail(path, key, f"{what}: keys must be plain strings")
        out[str(key.value)] = value
    return out


def _scalar(path: Path, node: yaml.Node, what: str) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise _fail(path, node, f"{what} must be a single value")
    return str(node.value)


def _pool(path: Path, node: yaml.Node, index: int) -> Pool:
    where = f"pools[{index}]"
    fields = _mapping(path, node, where)
    unknown = set(fields) - {"name", "nodes", "product", "capacity", "taints"}
    if unknown:
        raise _fail(path, fields[sorted(unknown)[0]], f"{where}: unknown field {sorted(unknown)[0]!r}")
    for required in ("name", "nodes", "capacity"):
        if required not in fields:
            raise _fail(path, node, f"{where}: missing {required!r}")
    name = _scalar(path, fields["name"], f"{where}.name")
    if not _NAME.match(name):
        raise _fail(path, fields["name"], f"{where}.name {name!r} is not a DNS label")
    nodes_text = _scalar(path, fields["nodes"], f"{where}.nodes")
    if not nodes_text.isdigit() or not 1 <= int(nodes_text) <= 50:
        raise _fail(path, fields["nodes"], f"{where}.nodes must be an integer from 1 to 50, not {nodes_text!r}")
    capacity: dict[str, str] = {}
    for key, value_node in _mapping(path, fields["capacity"], f"{where}.capacity").items():
        value = _scalar(path, value_node, f"{where}.capacity.{key}")
        if not _QUANTITY.match(value):
            raise _fail(path, value_node, f"{where}.capacity.{key}: {value!r} is not a quantity")
        capacity[key] = value
    taints: list[tuple[str, str, str]] = []
    if "taints" in fields:
        taint_nodes = fields["taints"]
        if not isinstance(taint_nodes, yaml.SequenceNode):
            raise _fail(path, taint_nodes, f"{where}.taints must be a list")
        for taint_node in taint_nodes.value:
            text = _scalar(path, taint_node, f"{where}.taints[]")
            match = _TAINT.match(text)
            if not match:
                raise _fail(path, taint_node, f"{where}.taints: {text!r} is not key=value:Effect")
            taints.append((match["key"], match["value"] or "", match["effect"]))
    product = _scalar(path, fields["product"], f"{where}.product") if "product" in fields else None
    return Pool(name=name, nodes=int(nodes_text), capacity=capacity, product=product, taints=tuple(taints))


def load(path: Path) -> list[Pool]:
    try:
        root = yaml.compose(path.read_text())
    except yaml.YAMLError as error:
        raise NodePoolError(f"{path}: not valid YAML: {error}") from error
    if root is None:
        raise NodePoolError(f"{path}: empty file")
    top = _mapping(path, root, "the file")
    if "pools" not in top or not isinstance(top["pools"], yaml.SequenceNode):
        raise _fail(path, root, "expected a top-level 'pools:' list")
    pools = [_pool(path, node, i) for i, node in enumerate(top["pools"].value)]
    seen: set[str] = set()
    for pool, node in zip(pools, top["pools"].value, strict=True):
        if pool.name in seen:
            raise _fail(path, node, f"pool name {pool.name!r} is used twice")
        seen.add(pool.name)
    return pools


def nodes(pools: list[Pool]) -> list[dict[str, Any]]:
    """Node objects for kwok to manage; status is set on create, which nodes allow."""
    out: list[dict[str, Any]] = []
    for pool in pools:
        for i in range(pool.nodes):
            name = f"{pool.name}-{i}"
            labels = {
                POOL_LABEL: pool.name,
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            }
            if pool.product:
                labels[PRODUCT_LABEL] = pool.product
            out.append({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": name, "labels": labels, "annotations": {"kwok.x-k8s.io/node": "fake"}},
                "spec": {"taints": [{"key": k, "value": v, "effect": e} for k, v, e in pool.taints]},
                "status": {"capacity": dict(pool.capacity), "allocatable": dict(pool.capacity)},
            })
    return out
