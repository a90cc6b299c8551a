#!/usr/bin/env bash
# Builds what a real kubelet node of the e2e world needs, into a versioned cache outside the
# checkout: kubelet and kube-proxy (the control plane's Kubernetes release), containerd 2.x and
# ctr (Debian bookworm ships 1.6, which kubelet 1.36 still runs with a fallback warning, and
# E2E_REALNODE_CONTAINERD=system uses; containerd 1.x support is on its way out), and the pod sandbox
# ("pause") image as an OCI tarball, and Prometheus. Idempotent: whatever is present is skipped.
#
#   e2e/realnode/build.sh            # prints the bin folder on its last line
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../cluster/versions.env
source "$here/../cluster/versions.env"
# shellcheck source=../cluster/k8s-build.sh
source "$here/../cluster/k8s-build.sh"
PAUSE_VERSION=3.10-e2e
cache=${MODELROLLOUT_CACHE:-$HOME/.cache/modelrollout}
bin="$cache/bin/realnode-k8s-$K8S_VERSION-containerd-$CONTAINERD_VERSION"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
mkdir -p "$bin" "$cache/build"
# One build at a time (the real node's tests and the kind provider both ask, perhaps at once): a
# second caller waits, then finds everything built.
exec 8>"$cache/realnode-build.lock"
flock 8

log() { printf '[realnode-build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
record() { printf '%s %s %s\n' "$1" "$2" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$cache/build-times.log"; }

build_kubelet() {
  [ -x "$bin/kubelet" ] && [ -x "$bin/kube-proxy" ] && { log "kubelet $K8S_VERSION cached"; return; }
  local started=$SECONDS
  log "building kubelet and kube-proxy $K8S_VERSION (cold: a few minutes on 2 cores)"
  k8s_build "$cache/build/realnode-k8s-$K8S_VERSION" "$bin" selinux,notest kubelet kube-proxy
  "$bin/kubelet" --version >&2
  log "kubelet built in $((SECONDS - started)) s"; record "kubelet-$K8S_VERSION" $((SECONDS - started))
}

# containerd 2.x through a wrapper module too (its go.mod has replace directives). Static, without
# the snapshotters that need cgo or kernel headers: overlayfs and native are enough here.
build_containerd() {
  [ -x "$bin/containerd" ] && [ -x "$bin/ctr" ] && [ -x "$bin/containerd-shim-runc-v2" ] \
    && { log "containerd $CONTAINERD_VERSION cached"; return; }
  local started=$SECONDS w="$cache/build/containerd-$CONTAINERD_VERSION" c=github.com/containerd/containerd/v2
  log "building containerd $CONTAINERD_VERSION"
  rm -rf "$w" && mkdir -p "$w" && cd "$w"
  go mod init e2e.local/containerdbuild >/dev/null 2>&1
  go get -tool "$c/cmd/containerd@$CONTAINERD_VERSION" "$c/cmd/ctr@$CONTAINERD_VERSION" \
    "$c/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" 2>&1 | grep -v '^go: downloading' >&2 || true
  local ldf="-s -w -X $c/version.Version=$CONTAINERD_VERSION -X $c/version.Revision=e2e"
  go build -trimpath -tags "no_btrfs,no_devmapper,no_zfs,no_aufs,no_dynamic_plugins,urfave_cli_no_docs" \
    -ldflags "$ldf" -o "$bin/" "$c/cmd/containerd" "$c/cmd/ctr" "$c/cmd/containerd-shim-runc-v2"
  "$bin/containerd" --version >&2
  log "containerd built in $((SECONDS - started)) s"; record "containerd-$CONTAINERD_VERSION" $((SECONDS - started))
}

# The sandbox image cannot be pulled: a static Go program that sleeps until SIGTERM/SIGINT,
# packed as a one-layer OCI image tarball (no Docker needed) for `ctr images import`.
build_pause() {
  local out="$bin/pause-$PAUSE_VERSION.tar"
  [ -s "$out" ] && { log "pause image cached"; return; }
  local w="$cache/build/pause-$PAUSE_VERSION"
  rm -rf "$w" && mkdir -p "$w/src" "$w/rootfs" && cd "$w/src"
  cat > main.go <<'GO'
// pause: the pod sandbox's init. Reaps nothing, holds the namespaces until told to stop.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
GO
  go mod init e2e.local/pause >/dev/null 2>&1
  go build -trimpath -ldflags "-s -w" -o "$w/rootfs/pause" .
  python3 - "$w/rootfs" "$out" "registry.k8s.io/pause:$PAUSE_VERSION" /pause <<'PY'
# A minimal OCI image layout tarball: one layer (the rootfs), a config, a manifest, an index
# carrying the reference name that containerd imports it under.
import gzip, hashlib, io, json, sys, tarfile
rootfs, out, ref, entry = sys.argv[1:]
blobs = {}
def blob(data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return digest
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w") as layer:
    layer.add(rootfs, arcname=".", filter=lambda t: (setattr(t, "uid", 65535), setattr(t, "gid", 65535), t)[-1])
diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
layer_gz = gzip.compress(raw.getvalue(), mtime=0)
config = json.dumps({"architecture": "amd64", "os": "linux",
                     "config": {"Entrypoint": [entry], "User": "65535:65535"},
                     "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(config), "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": blob(layer_gz),
                "size": len(layer_gz)}]}).encode()
index = json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": blob(manifest), "size": len(manifest),
    "annotations": {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref}}]}).encode()
with tarfile.open(out, "w") as tar:
    def add(name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name); info.size = len(data); tar.addfile(info, io.BytesIO(data))
    add("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
    add("index.json", index)
    for digest, data in blobs.items():
        add("blobs/sha256/" + digest.split(":")[1], data)
PY
  log "pause image written: $out"
}

# Prometheus with its Kubernetes service discovery (Debian's package is built without it), from
# its Go module, whose versions are v0.<minor>.<patch> for release 3.<minor>.<patch>. Only the
# Kubernetes discovery of its many (its own build tags), and no web UI assets (the tests use the API).
build_prometheus() {
  local stamp="$bin/prometheus.version" module
  if [ -x "$bin/prometheus" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$PROMETHEUS_VERSION" ]; then
    log "prometheus $PROMETHEUS_VERSION cached"; return
  fi
  local started=$SECONDS p=github.com/prometheus/prometheus minor
  minor=$(echo "$PROMETHEUS_VERSION" | cut -d. -f2)
  module="v0.$((300 + minor)).$(echo "$PROMETHEUS_VERSION" | cut -d. -f3)"  # v3.16.0 -> v0.316.0
  log "building prometheus $PROMETHEUS_VERSION ($p@$module; cold: several minutes)"
  GOBIN="$bin" go install -trimpath -tags remove_all_sd,enable_kubernetes_sd -ldflags "-s -w -X github.com/prometheus/common/version.Version=${PROMETHEUS_VERSION#v}" \
    "$p/cmd/prometheus@$module" 2>&1 | grep -v '^go: downloading' >&2 || true
  [ -x "$bin/prometheus" ] || { log "building prometheus failed"; exit 1; }
  echo "$PROMETHEUS_VERSION" > "$stamp"
  log "prometheus built in $((SECONDS - started)) s"; record "prometheus-$PROMETHEUS_VERSION" $((SECONDS - started))
}

build_kubelet
build_containerd
build_pause
build_prometheus
echo "$PAUSE_VERSION" > "$bin/pause.version"
echo "$bin"
