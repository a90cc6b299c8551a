#!/usr/bin/env bash
# Builds what a kind cluster needs without a registry, into a versioned cache outside the
# checkout: kind itself, kubeadm (the control plane's Kubernetes release; kubelet, kube-proxy,
# containerd and pause come from e2e/realnode/build.sh, the control-plane binaries and etcd from
# e2e/cluster/build.sh), CoreDNS, and the CNI: flanneld with its host-gw backend and the flannel
# CNI plugin, all from their Go modules. Idempotent: whatever is present is skipped.
#
# Why flannel: kind's own CNI daemon, kindnetd, is a module nested in kind's repository that the
# Go module proxy does not serve (nor aojea/kindnet, nor flannel-io/cni-plugin). flanneld is, and
# its host-gw backend does what kindnetd does on kind's one Docker network: a route per node's pod
# CIDR via that node. Its CNI plugin comes from containernetworking/plugins v0.9.1, the last
# release that carried it; it hands the pod to the bridge plugin (Debian's, in the node image).
#
#   e2e/kind/build.sh            # prints the bin folder on its last line
#   e2e/kind/build.sh --where    # prints it without building
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../cluster/versions.env
source "$here/../cluster/versions.env"
# shellcheck source=../cluster/k8s-build.sh
source "$here/../cluster/k8s-build.sh"
cache=${MODELROLLOUT_CACHE:-$HOME/.cache/modelrollout}
bin="$cache/bin/kind-$KIND_VERSION-k8s-$K8S_VERSION-coredns-$COREDNS_VERSION-flannel-$FLANNEL_VERSION"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
# --where: the bin folder only, built or not (cluster.sh down finds kind there without building it)
[ "${1:-}" = "--where" ] && { echo "$bin"; exit 0; }
mkdir -p "$bin" "$cache/build"

log() { printf '[kind-build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
record() { printf '%s %s %s\n' "$1" "$2" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$cache/build-times.log"; }

build_kind() {
  [ -x "$bin/kind" ] && { log "kind $KIND_VERSION cached"; return; }
  local started=$SECONDS
  log "building kind $KIND_VERSION"
  GOBIN="$bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kind@$KIND_VERSION" 2>&1 \
    | grep -v '^go: downloading' >&2 || true
  "$bin/kind" version >&2
  log "kind built in $((SECONDS - started)) s"; record "kind-$KIND_VERSION" $((SECONDS - started))
}

build_kubeadm() {
  [ -x "$bin/kubeadm" ] && { log "kubeadm $K8S_VERSION cached"; return; }
  local started=$SECONDS
  log "building kubeadm $K8S_VERSION"
  k8s_build "$cache/build/kind-k8s-$K8S_VERSION" "$bin" "" kubeadm
  "$bin/kubeadm" version -o short >&2
  log "kubeadm built in $((SECONDS - started)) s"; record "kubeadm-$K8S_VERSION" $((SECONDS - started))
}

# CoreDNS with the plugins kubeadm's Corefile names (cmd/kubeadm/app/phases/addons/dns), as
# CoreDNS documents custom builds: a main package that imports coremain and those plugins. Its own
# main links all 60 plugins with their cloud SDKs (route53, azure, clouddns, trace), which cost a
# cold build minutes and serve nothing here. A Corefile naming another plugin fails to load.
COREDNS_PLUGINS="errors health ready kubernetes metrics forward cache loop reload loadbalance"
build_coredns() {
  [ -x "$bin/coredns" ] && { log "coredns $COREDNS_VERSION cached"; return; }
  local started=$SECONDS w="$cache/build/kind-coredns-$COREDNS_VERSION" p
  log "building coredns $COREDNS_VERSION (plugins: $COREDNS_PLUGINS)"
  rm -rf "$w" && mkdir -p "$w" && cd "$w"
  go mod init e2e.local/coredns >/dev/null 2>&1
  {
    echo 'package main'
    echo 'import ('
    for p in $COREDNS_PLUGINS; do echo "  _ \"github.com/coredns/coredns/plugin/$p\""; done
    echo '  "github.com/coredns/coredns/coremain"'
    echo ')'
    echo 'func main() { coremain.Run() }'
  } > main.go
  go mod edit -require="github.com/coredns/coredns@$COREDNS_VERSION"
  go mod tidy 2>&1 | grep -v '^go: \(downloading\|finding\)' >&2 || true
  grep -q "github.com/coredns/coredns $COREDNS_VERSION" go.mod || { echo "go mod tidy moved coredns off $COREDNS_VERSION" >&2; exit 1; }
  go build -trimpath -ldflags "-s -w" -o coredns .
  ./coredns -version >&2
  for p in $(echo "$COREDNS_PLUGINS" | sed 's/metrics/prometheus/'); do  # metrics registers "prometheus"
    ./coredns -plugins | grep -qw "$p" || { echo "coredns: the $p plugin is missing" >&2; exit 1; }
  done
  mv coredns "$bin/coredns"
  log "coredns built in $((SECONDS - started)) s"; record "coredns-$COREDNS_VERSION" $((SECONDS - started))
}

# flanneld's main package is its module's root, with every backend linked in. Two cannot be built
# here: tencentvpc needs an SDK module the proxy does not serve, and udp needs cgo. So its main.go
# is built from a wrapper module without those two imports (host-gw is the one used), with a stub
# standing in for the SDK's module, which nothing imports then.
build_flannel() {
  [ -x "$bin/flanneld" ] && [ -x "$bin/flannel" ] && { log "flannel $FLANNEL_VERSION cached"; return; }
  local started=$SECONDS w="$cache/build/kind-flannel-$FLANNEL_VERSION" source sdk
  log "building flanneld $FLANNEL_VERSION and the flannel CNI plugin ($FLANNEL_CNI_PLUGINS_VERSION)"
  rm -rf "$w" && mkdir -p "$w/flanneld" "$w/cni" && cd "$w/flanneld"
  source=$(go mod download -json "github.com/flannel-io/flannel@$FLANNEL_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  go mod init e2e.local/flanneld >/dev/null 2>&1
  install -m 0644 "$source/main.go" main.go
  sed -i -e '/pkg\/backend\/tencentvpc"/d' -e '/pkg\/backend\/udp"/d' main.go
  sdk=github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc
  mkdir stub && echo "module $sdk" > stub/go.mod
  go mod edit -require="github.com/flannel-io/flannel@$FLANNEL_VERSION" -replace="$sdk=./stub"
  go mod tidy 2>&1 | grep -v '^go: \(downloading\|finding\)' >&2 || true
  go build -trimpath -ldflags "-s -w -X github.com/flannel-io/flannel/pkg/version.Version=$FLANNEL_VERSION" \
    -o "$bin/flanneld" .
  cd "$w/cni"
  go mod init e2e.local/flannelcni >/dev/null 2>&1
  go get "github.com/containernetworking/plugins/plugins/meta/flannel@$FLANNEL_CNI_PLUGINS_VERSION" 2>&1 | grep -v '^go: downloading' >&2 || true
  go build -trimpath -ldflags "-s -w" -o "$bin/flannel" github.com/containernetworking/plugins/plugins/meta/flannel
  "$bin/flanneld" --version >&2
  log "flannel built in $((SECONDS - started)) s"; record "flannel-$FLANNEL_VERSION" $((SECONDS - started))
}

build_kind
build_kubeadm
build_coredns
build_flannel
echo "$bin"
