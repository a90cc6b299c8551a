#!/usr/bin/env bash
# Builds the e2e world's binaries from pinned Go modules into a versioned cache outside the
# checkout, so a fresh clone (and CI on the same machine) starts warm. Idempotent: a component
# whose binaries are present is skipped.
#
#   e2e/cluster/build.sh            # prints the bin folder on its last line
#   MODELROLLOUT_CACHE=/elsewhere e2e/cluster/build.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=k8s-build.sh
source "$here/k8s-build.sh"
cache=${MODELROLLOUT_CACHE:-$HOME/.cache/modelrollout}
bin="$cache/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION-helm-$HELM_VERSION"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
mkdir -p "$bin" "$cache/build"

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
# Each real build appends "component seconds date" here; `make bench` reports the cold times.
record() { printf '%s %s %s\n' "$1" "$2" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$cache/build-times.log"; }

build_kubernetes() {
  local want=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  local missing=0 b
  for b in "${want[@]}"; do [ -x "$bin/$b" ] || missing=1; done
  [ "$missing" = 0 ] && { log "kubernetes $K8S_VERSION cached"; return; }
  local started=$SECONDS
  log "building kubernetes $K8S_VERSION (cold: about 5 min on 2 cores)"
  k8s_build "$cache/build/k8s-$K8S_VERSION" "$bin" selinux,notest "${want[@]}"
  "$bin/kube-apiserver" --version >&2
  log "kubernetes built in $((SECONDS - started)) s"; record kubernetes-$K8S_VERSION $((SECONDS - started))
}

# etcd's server module carries replace directives too, so it goes through a wrapper as well.
build_etcd() {
  [ -x "$bin/etcd" ] && { log "etcd $ETCD_VERSION cached"; return; }
  local started=$SECONDS w="$cache/build/etcd-$ETCD_VERSION"
  log "building etcd $ETCD_VERSION"
  rm -rf "$w" && mkdir -p "$w" && cd "$w"
  go mod init e2e.local/etcdbuild >/dev/null 2>&1
  go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null
  go build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3
  log "etcd built in $((SECONDS - started)) s"; record etcd-$ETCD_VERSION $((SECONDS - started))
}

build_plain() {  # name module@version: modules without replace directives install directly
  local name=$1 pkg=$2 stamp="$bin/$1.version"
  # A binary built with its version stamped beside it is rebuilt when the version changes.
  if [ -x "$bin/$name" ] && { [ ! -e "$stamp" ] || [ "$(cat "$stamp")" = "${pkg##*@}" ]; }; then
    log "$name cached"; return
  fi
  local started=$SECONDS
  log "building $pkg"
  GOBIN="$bin" go install -trimpath -ldflags "-s -w" "$pkg"
  echo "${pkg##*@}" > "$stamp"
  log "$name built in $((SECONDS - started)) s"; record "$name-${pkg##*@}" $((SECONDS - started))
}

# prometheus-adapter serves the custom metrics API that HorizontalPodAutoscalers read. Its module
# has no version list on the proxy, so `go install mod@version` fails on the deprecation lookup:
# build it through a wrapper module. Its version is stamped beside the binary (not in the folder
# name, which would rebuild Kubernetes for an adapter bump).
build_adapter() {
  local stamp="$bin/prometheus-adapter.version"
  if [ -x "$bin/prometheus-adapter" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$PROMETHEUS_ADAPTER_VERSION" ]; then
    log "prometheus-adapter cached"; return
  fi
  local started=$SECONDS w="$cache/build/prometheus-adapter-$PROMETHEUS_ADAPTER_VERSION" p=sigs.k8s.io/prometheus-adapter
  log "building $p@$PROMETHEUS_ADAPTER_VERSION (cold: about 3 min)"
  rm -rf "$w" && mkdir -p "$w" && cd "$w"
  go mod init e2e.local/adapterbuild >/dev/null 2>&1
  go mod edit -require="$p@$PROMETHEUS_ADAPTER_VERSION"
  go get "$p/cmd/adapter@$PROMETHEUS_ADAPTER_VERSION" 2>&1 | grep -v '^go: \(downloading\|added\|upgraded\)' >&2 || true
  grep -q "$p $PROMETHEUS_ADAPTER_VERSION" go.mod || { log "go get did not pin $PROMETHEUS_ADAPTER_VERSION"; exit 1; }
  go build -trimpath -ldflags "-s -w" -o "$bin/prometheus-adapter" "$p/cmd/adapter"
  echo "$PROMETHEUS_ADAPTER_VERSION" > "$stamp"
  log "prometheus-adapter built in $((SECONDS - started)) s"; record "prometheus-adapter-$PROMETHEUS_ADAPTER_VERSION" $((SECONDS - started))
}

# Data files the world needs from Go modules: the traffic providers' CRDs (the module proxy
# serves the YAML) and kwok's stage definitions, copied to a versioned folder beside the bins.
# Written whole, by rename: parallel e2e workers build (and read) at once, and a reader must
# never see the file truncated by a writer's `>`.
write_share_path() {
  printf '%s\n' "$1" > "$bin/share.path.$$" && mv -f "$bin/share.path.$$" "$bin/share.path"
}

fetch_share() {
  local dir="$cache/share/gateway-api-$GATEWAY_API_VERSION-istio-$ISTIO_API_VERSION-kwok-$KWOK_VERSION-keda-$KEDA_VERSION"
  if [ -s "$dir/crds/virtualservices.networking.istio.io.yaml" ] && [ -s "$dir/kwok-stages/pod-ready.yaml" ] \
     && [ -s "$dir/crds/keda.sh_scaledobjects.yaml" ]; then
    log "CRDs and kwok stages cached"; write_share_path "$dir"; return
  fi
  mkdir -p "$dir/crds" "$dir/kwok-stages" && cd "$cache/build"
  local gw istio kwok
  gw=$(go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  istio=$(go mod download -json "istio.io/api@$ISTIO_API_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  kwok=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  # KEDA's ScaledObject CRD only, so the API server checks examples/autoscaling/keda-scaledobject.yaml
  # against KEDA's own schema (KEDA itself does not run in the world).
  keda=$(go mod download -json "github.com/kedacore/keda/v2@$KEDA_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  cp "$gw"/config/crd/standard/*.yaml "$dir/crds/"
  cp "$keda/config/crd/bases/keda.sh_scaledobjects.yaml" "$dir/crds/"
  python3 - "$istio/kubernetes/customresourcedefinitions.gen.yaml" "$dir/crds/virtualservices.networking.istio.io.yaml" <<'PY'
import sys
docs = open(sys.argv[1]).read().split("\n---\n")
wanted = [d for d in docs if "\n  name: virtualservices.networking.istio.io\n" in d]
assert len(wanted) == 1, "VirtualService CRD not found in istio.io/api"
open(sys.argv[2], "w").write(wanted[0].strip() + "\n")
PY
  cp "$kwok"/kustomize/stage/node/fast/node-initialize.yaml "$kwok"/kustomize/stage/node/heartbeat/node-heartbeat.yaml \
     "$kwok"/kustomize/stage/pod/fast/pod-ready.yaml "$kwok"/kustomize/stage/pod/fast/pod-complete.yaml \
     "$kwok"/kustomize/stage/pod/fast/pod-delete.yaml "$dir/kwok-stages/"
  chmod -R u+w "$dir"
  write_share_path "$dir"
  log "CRDs and kwok stages copied to $dir"
}

# Helm's release builds stamp its version and the Kubernetes version it assumes offline
# (`helm template` checks a chart's kubeVersion against it); do the same.
build_helm() {
  if [ -x "$bin/helm" ] && "$bin/helm" version --short 2>/dev/null | grep -q "^$HELM_VERSION"; then
    log "helm cached"; return
  fi
  local started=$SECONDS minor p=helm.sh/helm/v3
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  log "building $p/cmd/helm@$HELM_VERSION"
  GOBIN="$bin" go install -trimpath -ldflags "-s -w -X $p/internal/version.version=$HELM_VERSION \
    -X $p/pkg/chartutil.k8sVersionMajor=1 -X $p/pkg/chartutil.k8sVersionMinor=$minor" "$p/cmd/helm@$HELM_VERSION"
  log "helm built in $((SECONDS - started)) s"; record "helm-$HELM_VERSION" $((SECONDS - started))
}

total=$SECONDS
build_kubernetes
build_etcd
build_plain kwok "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
build_plain registry "github.com/distribution/distribution/v3/cmd/registry@$DISTRIBUTION_VERSION"
build_helm
build_adapter
fetch_share
log "all binaries ready in $((SECONDS - total)) s"
echo "$bin"
