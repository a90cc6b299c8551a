#!/usr/bin/env bash
# Assembles a kind node image without a registry, as `kind build node-image` does but with every
# image built here (it fetches all but four from registries, which this machine cannot reach):
#
#   1. a base: Debian with systemd and kind's packages (e2e/kind/base.sh), kind's own files from
#      its module (images/base/files: entrypoint, systemd units, containerd config), containerd 2.x
#      and pause (e2e/realnode/build.sh), runc and the CNI plugins (Debian) plus flannel's;
#   2. kubeadm, kubelet and kubectl in /usr/bin, /kind/version, /kind/manifests;
#   3. the images kubeadm and the manifests need, built here and imported into containerd's
#      k8s.io namespace (pinned, not unpacked): kube-apiserver, kube-controller-manager,
#      kube-scheduler, kube-proxy, etcd, CoreDNS, pause and flanneld, named `e2e.local/...` with
#      their real versions (the cluster's kubeadm configuration names that repository);
#   4. `docker commit` with kind's entrypoint.
#
# Cached by content: the image is tagged with a hash of its inputs and rebuilt only when they change.
#
#   e2e/kind/node-image.sh       # prints the image's name on its last line
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=../cluster/versions.env
source "$repo/e2e/cluster/versions.env"
export PATH=$PATH:/usr/sbin:/sbin GOTOOLCHAIN=local
cache=${MODELROLLOUT_CACHE:-$HOME/.cache/modelrollout}
mkdir -p "$cache/images"

log() { printf '[kind-node-image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
content_hash() { (cd "$repo" && cat "$@" | sha256sum | cut -c1-12); }

kind_bin=$(bash "$here/build.sh" | tail -1)
node_bin=$(bash "$repo/e2e/realnode/build.sh" | tail -1)
cluster_bin=$(bash "$repo/e2e/cluster/build.sh" | tail -1)
kind_files=$(cd /tmp && go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')/images/base/files
pause="e2e.local/pause:$(cat "$node_bin/pause.version")"

base_key=$(content_hash e2e/kind/base.sh)
base_image=modelrollout-kind-base:bookworm-$base_key
# The versions of what goes into the node, not all of versions.env: a bump elsewhere keeps it.
parts="$K8S_VERSION $ETCD_VERSION $CONTAINERD_VERSION $KIND_VERSION $COREDNS_VERSION $FLANNEL_VERSION $FLANNEL_CNI_PLUGINS_VERSION $pause"
key=$(echo "$base_key $parts $(content_hash e2e/kind/node-image.sh e2e/kind/default-cni.yaml)" | sha256sum | cut -c1-12)
image=modelrollout-kind-node:$K8S_VERSION-$key

if docker image inspect "$image" >/dev/null 2>&1; then log "$image present"; echo "$image"; exit 0; fi
# A new node image replaces the older ones (about 1.2 GB each).
docker images --format '{{.Repository}}:{{.Tag}}' modelrollout-kind-node | xargs -r docker rmi >/dev/null 2>&1 || true
started=$SECONDS

if ! docker image inspect "$base_image" >/dev/null 2>&1; then
  tarball=$cache/images/kind-base-$base_key.tar.gz
  if [ ! -s "$tarball" ]; then
    log "base: debootstrap bookworm with systemd and kind's packages (cold: a minute or two)"
    bash "$here/base.sh" "$tarball"
  fi
  docker import "$tarball" "$base_image" >/dev/null
fi

# The images, from scratch or (kube-proxy and flanneld, which run iptables from /usr/sbin) from the base.
context=$(mktemp -d)
build=""
trap 'rm -rf "$context"; [ -n "$build" ] && docker rm -f "$build" >/dev/null 2>&1 || true' EXIT
component() {  # NAME TAG FROM BINARY PATH-IN-IMAGE
  local name=$1 tag=$2 from=$3 binary=$4 path=$5 dir="$context/$1"
  mkdir -p "$dir" && cp "$binary" "$dir/binary"
  printf 'FROM %s\nCOPY binary %s\nENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nENTRYPOINT ["%s"]\n' \
    "$from" "$path" "$path" > "$dir/Dockerfile"
  docker build -q -t "e2e.local/$name:$tag" "$dir" >/dev/null
  echo "e2e.local/$name:$tag"
}
images=(
  "$(component kube-apiserver "$K8S_VERSION" scratch "$cluster_bin/kube-apiserver" /usr/local/bin/kube-apiserver)"
  "$(component kube-controller-manager "$K8S_VERSION" scratch "$cluster_bin/kube-controller-manager" /usr/local/bin/kube-controller-manager)"
  "$(component kube-scheduler "$K8S_VERSION" scratch "$cluster_bin/kube-scheduler" /usr/local/bin/kube-scheduler)"
  "$(component kube-proxy "$K8S_VERSION" "$base_image" "$node_bin/kube-proxy" /usr/local/bin/kube-proxy)"
  "$(component etcd "$ETCD_VERSION" scratch "$cluster_bin/etcd" /usr/local/bin/etcd)"
  "$(component coredns "$COREDNS_VERSION" scratch "$kind_bin/coredns" /coredns)"
  "$(component flanneld "$FLANNEL_VERSION" "$base_image" "$kind_bin/flanneld" /opt/bin/flanneld)"
)
docker save "${images[@]}" > "$context/images.tar"

build=kind-node-build-$$
docker run -d --init --name "$build" --entrypoint=sleep --security-opt seccomp=unconfined "$base_image" infinity >/dev/null
in_build() { docker exec "$build" bash -c "$1"; }

# kind's files, with the modes its Dockerfile gives them.
docker cp "$kind_files/." "$build:/"
in_build 'chmod 0755 /usr/local/bin/entrypoint /usr/local/bin/clean-install /kind /kind/bin /kind/bin/*
  find /etc/containerd /etc/default /etc/sysctl.d /etc/systemd/system /etc/crictl.yaml /kind/README.txt -type f -exec chmod 0644 {} +'
for b in containerd ctr containerd-shim-runc-v2; do docker cp "$node_bin/$b" "$build:/usr/local/bin/$b"; done
for b in kubeadm; do docker cp "$kind_bin/$b" "$build:/usr/bin/$b"; done
docker cp "$node_bin/kubelet" "$build:/usr/bin/kubelet"
docker cp "$cluster_bin/kubectl" "$build:/usr/bin/kubectl"
in_build 'mkdir -p /opt/cni/bin && cp /usr/lib/cni/* /opt/cni/bin/'
docker cp "$kind_bin/flannel" "$build:/opt/cni/bin/flannel"
in_build "chown root:root /usr/bin/kube* /usr/local/bin/c* /opt/cni/bin/* && chmod 0755 /usr/bin/kube* /opt/cni/bin/*"

# As kind's base Dockerfile: systemd as init in a container, the services kind starts.
in_build 'set -e
  find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete
  rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
    /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
    /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
  echo "ReadKMsg=no" >> /etc/systemd/journald.conf
  ln -sf /usr/lib/systemd/systemd /sbin/init
  systemctl enable kubelet.service containerd.service undo-mount-hacks.service
  systemctl mask systemd-binfmt.service
  mkdir -p /etc/kubernetes/manifests
  ctr oci spec | jq ".hooks.createContainer[.hooks.createContainer| length] |= . + {\"path\": \"/kind/bin/mount-product-files.sh\"}" \
    | jq "del(.process.rlimits)" > /etc/containerd/cri-base.json'
# The sandbox image is ours (kind names registry.k8s.io/pause).
in_build "sed -i -E 's#^([[:space:]]*sandbox_image = ).*#\\1\"$pause\"#' /etc/containerd/config.toml && grep -q '$pause' /etc/containerd/config.toml"

in_build "mkdir -p /kind/manifests && echo $K8S_VERSION > /kind/version"
sed "s/FLANNEL_VERSION/$FLANNEL_VERSION/g" "$here/default-cni.yaml" | docker exec -i "$build" tee /kind/manifests/default-cni.yaml >/dev/null
# No storage driver: kind's own fallback, a StorageClass of the in-tree host-path provisioner (no image).
docker exec -i "$build" tee /kind/manifests/default-storage.yaml >/dev/null <<'YAML'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/host-path
YAML

# The images into containerd's k8s.io namespace, as kind's importer does (pinned, not unpacked).
in_build 'nohup containerd > /var/log/containerd-build.log 2>&1 &
  for i in $(seq 1 30); do [ -S /run/containerd/containerd.sock ] && ctr version >/dev/null 2>&1 && break; sleep 0.5; done'
import='ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests -'
docker exec -i "$build" bash -c "$import" < "$context/images.tar" >/dev/null
docker exec -i "$build" bash -c "$import" < "$node_bin/pause-$(cat "$node_bin/pause.version").tar" >/dev/null
in_build "ctr --namespace=k8s.io images tag --force registry.k8s.io/pause:$(cat "$node_bin/pause.version") $pause >/dev/null
  ctr --namespace=k8s.io images rm registry.k8s.io/pause:$(cat "$node_bin/pause.version") >/dev/null
  ctr --namespace=k8s.io images label $pause io.cri-containerd.pinned=pinned >/dev/null
  pkill containerd; while pgrep -x containerd >/dev/null; do sleep 0.2; done
  rm -rf /var/log/containerd-build.log /tmp/*"

docker commit --change 'ENV container=docker' "$build" "$image-committed" >/dev/null
# `docker commit` cannot set STOPSIGNAL: one more (empty) layer does, with kind's entrypoint.
printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\nENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]\n' "$image-committed" \
  | docker build -q -t "$image" - >/dev/null
docker rmi "$image-committed" >/dev/null
log "$image built in $((SECONDS - started)) s"
echo "$image"
