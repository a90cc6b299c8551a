#!/usr/bin/env bash
# The kind provider of the e2e world, for hosts with a Docker engine (it cannot run without one).
#
#   E2E_CLUSTER=kind make cluster-up     # kind cluster + pools + images, all built offline
#   E2E_CLUSTER=kind make cluster-down
#
# kind, its node image and every image in it are built here (e2e/kind/build.sh, node-image.sh):
# no registry is reached. Workers are labelled and tainted as the pools of e2e/nodepools.yaml
# (as many workers as e2e/nodepools.yaml says, at most KIND_WORKERS_PER_POOL, default 3, each),
# with GPU capacity patched onto their status
# (kind nodes have no GPUs; the scheduler only counts). The project's images are loaded with
# `kind load`. e2e/kind/world.py then adds what the suite needs beside the cluster (Prometheus
# in it, routes to the pods, the load generator) and writes .e2e/env.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
name=${KIND_CLUSTER_NAME:-modelrollout-e2e}
state=${E2E_DIR:-$repo/.e2e}
py=${E2E_PYTHON:-$repo/.venv/bin/python}  # the project's venv (make setup): the host side is Python
# shellcheck source=../cluster/versions.env
source "$repo/e2e/cluster/versions.env"
verb=${1:-up}

need() { command -v "$1" >/dev/null || { echo "kind provider: $1 is required" >&2; exit 1; }; }

# KIND_POOLS (comma-separated pool names, default every pool) picks the pools that get workers:
# CI's smoke test needs only the a100 pool its example asks for.
selected_pools() {  # e2e/nodepools.yaml's pools, as JSON, those KIND_POOLS names only
  python3 - "$repo/e2e/nodepools.yaml" "${KIND_POOLS:-}" <<'PY'
import json, sys, yaml
pools, wanted = yaml.safe_load(open(sys.argv[1]))["pools"], [p for p in sys.argv[2].split(",") if p]
unknown = sorted(set(wanted) - {pool["name"] for pool in pools})
if unknown:
    sys.exit(f"KIND_POOLS: no pool {', '.join(unknown)} in e2e/nodepools.yaml")
print(json.dumps([pool for pool in pools if not wanted or pool["name"] in wanted]))
PY
}

cluster_config() {  # POOLS_JSON: the control plane and each pool's workers (at most KIND_WORKERS_PER_POOL, default 3)
  python3 - "$1" "${KIND_WORKERS_PER_POOL:-3}" "$ETCD_VERSION" <<'PY'
import json, sys, yaml
pools = json.loads(sys.argv[1])
per_pool, etcd = int(sys.argv[2]), sys.argv[3]
nodes = [{"role": "control-plane"}]
for pool in pools:
    nodes += [{"role": "worker", "labels": {"modelrollout.io/pool": pool["name"]}}] * min(per_pool, pool["nodes"])
patches = [
    # Every image is built here and named e2e.local/... (e2e/kind/node-image.sh).
    {"kind": "ClusterConfiguration", "imageRepository": "e2e.local", "etcd": {"local": {"imageTag": etcd}}},
    # This host runs cgroup v1; kubelets of 1.35 and later refuse it unless told otherwise.
    {"kind": "KubeletConfiguration", "failCgroupV1": False},
]
config = {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "nodes": nodes,
          "kubeadmConfigPatches": [yaml.safe_dump(p) for p in patches]}
# Where the host withholds CAP_SYS_RESOURCE even from root (as here), runc cannot lower a pod's
# oom_score_adj (-998 for sandboxes) and every pod fails with "can't get final child's PID".
with open("/proc/self/status") as status:
    bounding = int(next(line for line in status if line.startswith("CapBnd:")).split()[1], 16)
if not bounding >> 24 & 1:  # CAP_SYS_RESOURCE
    config["containerdConfigPatches"] = [
        '[plugins."io.containerd.grpc.v1.cri"]\n  restrict_oom_score_adj = true\n']
print(yaml.safe_dump(config))
PY
}

pools_onto_nodes() {  # POOLS_JSON: taints, product labels and GPU capacity, pool by pool
  python3 - "$1" <<'PY' | bash
import json, sys
for pool in json.loads(sys.argv[1]):
    sel = f"-l modelrollout.io/pool={pool['name']}"
    for taint in pool.get("taints", []):
        print(f"kubectl taint nodes {sel} {taint} --overwrite")
    if pool.get("product"):
        print(f"kubectl label nodes {sel} nvidia.com/gpu.product={pool['product']} --overwrite")
    gpus = pool["capacity"].get("nvidia.com/gpu")
    if gpus:
        patch = ('{"status":{"capacity":{"nvidia.com/gpu":"%s"},"allocatable":{"nvidia.com/gpu":"%s"}}}' % (gpus, gpus))
        print(f"for n in $(kubectl get nodes {sel} -o name); do kubectl patch $n --subresource=status --type=merge -p '{patch}'; done")
PY
}

# The kind world that .e2e/env describes answers (API server and Prometheus): `up` is then
# idempotent without building anything, as the local world's is (a shell with another $HOME
# has no build cache to find).
already_up() {
  [ -f "$state/env" ] && grep -qx 'export E2E_CLUSTER=kind' "$state/env" || return 1
  (. "$state/env" && kubectl get --raw /readyz >/dev/null 2>&1 \
    && python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/-/ready", timeout=5)' \
      "$PROMETHEUS_URL" 2>/dev/null)
}

up() {
  need docker
  if already_up; then
    echo "kind cluster $name already up; source $state/env"; return
  fi
  local kind_bin cluster_bin image pools
  pools=$(selected_pools)
  kind_bin=$(bash "$here/build.sh" | tail -1)
  cluster_bin=$(bash "$repo/e2e/cluster/build.sh" | tail -1)
  image=$(bash "$here/node-image.sh" | tail -1)
  export PATH="$kind_bin:$cluster_bin:$PATH"
  mkdir -p "$state"
  if ! kind get clusters 2>/dev/null | grep -qx "$name"; then
    cluster_config "$pools" > "$state/kind-config.yaml"
    kind create cluster --name "$name" --image "$image" --config "$state/kind-config.yaml" --wait 300s
  fi
  kind get kubeconfig --name "$name" > "$state/kubeconfig"
  export KUBECONFIG="$state/kubeconfig"
  pools_onto_nodes "$pools"
  bash "$repo/e2e/images/build.sh" >&2   # modelrollout:dev and modelrollout-modelserver:dev
  kind load docker-image --name "$name" modelrollout:dev modelrollout-modelserver:dev
  kubectl apply --server-side -f "$repo/crds/"
  kubectl apply --server-side -f "$(cat "$cluster_bin/share.path")/crds/"
  # Routes to the pods, Prometheus, the model server's image names, the load generator, .e2e/env.
  (cd "$repo" && "$py" -m e2e.kind.world up --name "$name" --kind-bin "$kind_bin" --cluster-bin "$cluster_bin" \
    --node-bin "$(bash "$repo/e2e/realnode/build.sh" | tail -1)")
  echo "kind cluster $name up ($image); source $state/env"
}

down() {  # builds nothing: without a kind binary there is no cluster of ours to delete
  local kind_bin
  kind_bin=$(bash "$here/build.sh" --where)
  (cd "$repo" && "$py" -m e2e.kind.world down)
  if [ -x "$kind_bin/kind" ]; then "$kind_bin/kind" delete cluster --name "$name" 2>/dev/null || true; fi
  rm -f "$state/kubeconfig" "$state/kind-config.yaml"
}

case "$verb" in
  up) up ;;
  down) down ;;
  status) "$(bash "$here/build.sh" --where)/kind" get clusters 2>/dev/null | grep -qx "$name" && echo healthy \
    || { echo "not running"; exit 1; } ;;
  build) echo "the kind provider builds images during up" ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
