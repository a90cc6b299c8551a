#!/usr/bin/env bash
# The kind provider of the e2e world, for hosts with a Docker engine (it cannot run without one).
#
#   E2E_CLUSTER=kind make cluster-up     # kind cluster + pools + Prometheus + Gateway + images
#   E2E_CLUSTER=kind make cluster-down
#
# Workers are labelled and tainted as the pools of e2e/nodepools.yaml, with GPU capacity patched
# onto their status (kind nodes have no GPUs; the scheduler only counts). Real pods run the model
# server image, Prometheus scrapes them through the chart's PodMonitor relabelling, Envoy Gateway
# routes HTTPRoutes, and the load generator runs in the cluster. It writes the same .e2e/env as the
# local world, so the e2e suite is identical for both providers.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
name=${KIND_CLUSTER_NAME:-modelrollout-e2e}
state="$repo/.e2e"
verb=${1:-up}

need() { command -v "$1" >/dev/null || { echo "kind provider: $1 is required" >&2; exit 1; }; }

nodes_config() {  # one worker per node of every pool
  python3 - "$repo/e2e/nodepools.yaml" <<'PY'
import sys, yaml
pools = yaml.safe_load(open(sys.argv[1]))["pools"]
print("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane")
for pool in pools:
    for i in range(pool["nodes"]):
        print(f"- role: worker\n  labels: {{modelrollout.io/pool: {pool['name']}}}")
PY
}

pools_onto_nodes() {  # taints, product labels and GPU capacity, pool by pool
  python3 - "$repo/e2e/nodepools.yaml" <<'PY' | bash
import sys, yaml
for pool in yaml.safe_load(open(sys.argv[1]))["pools"]:
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

up() {
  need kind; need docker; need kubectl; need helm
  mkdir -p "$state"
  kind get clusters | grep -qx "$name" || kind create cluster --name "$name" --config <(nodes_config) --wait 120s
  kind get kubeconfig --name "$name" > "$state/kubeconfig"
  export KUBECONFIG="$state/kubeconfig"
  pools_onto_nodes
  docker build -t modelrollout/modelserver:e2e -f "$repo/e2e/kind/modelserver.Dockerfile" "$repo"
  docker build -t modelrollout/operator:e2e "$repo"
  kind load docker-image --name "$name" modelrollout/modelserver:e2e modelrollout/operator:e2e
  kubectl apply --server-side -f "$(cat "$(bash "$repo/e2e/cluster/build.sh" | tail -1)/share.path")/crds/"
  helm upgrade --install eg oci://docker.io/envoyproxy/gateway-helm -n envoy-gateway-system --create-namespace --wait
  helm upgrade --install prometheus prometheus --repo https://prometheus-community.github.io/helm-charts \
    -n monitoring --create-namespace --set alertmanager.enabled=false --set prometheus-pushgateway.enabled=false \
    --wait
  kubectl apply -f "$here/in-cluster.yaml"   # Gateway, model-server image mapping, the load generator
  kubectl -n monitoring port-forward svc/prometheus-server 39090:80 >/dev/null 2>&1 &
  echo $! > "$state/port-forward.pid"
  cat > "$state/env" <<ENV
# The kind world. \`source .e2e/env\` puts these settings, kubectl and helm into the shell.
export KUBECONFIG=$state/kubeconfig
export PROMETHEUS_URL=http://127.0.0.1:39090
export E2E_BIN=$(dirname "$(command -v kubectl)")
export E2E_CLUSTER=kind
export PATH="\$E2E_BIN:\$PATH"
ENV
  echo "kind world up; source $state/env"
}

down() {
  [ -f "$state/port-forward.pid" ] && kill "$(cat "$state/port-forward.pid")" 2>/dev/null || true
  kind delete cluster --name "$name" 2>/dev/null || true
  rm -f "$state/env" "$state/port-forward.pid"
}

case "$verb" in
  up) up ;;
  down) down ;;
  status) kind get clusters 2>/dev/null | grep -qx "$name" && echo healthy || { echo "not running"; exit 1; } ;;
  build) echo "the kind provider builds images during up" ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
