#!/usr/bin/env bash
# Installs the Debian packages the local world needs if missing: Prometheus, promtool and openssl;
# docker.io and debootstrap, which build and run the images (`make images`); what the real
# kubelet node runs on (runc, CNI plugins, nftables, conntrack). Then starts a Docker
# engine if none answers (e2e/dockerd.sh). Used by `make system`, `make demo`, `make test` and
# .ci/run; asks for sudo only when not root.
set -euo pipefail
# dockerd and debootstrap live in sbin, which a user's PATH (or an `env -i` one) may lack.
export PATH=$PATH:/usr/sbin:/sbin
here=$(cd "$(dirname "$0")" && pwd)

missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v promtool >/dev/null || missing+=(prometheus)
command -v openssl >/dev/null || missing+=(openssl)
# dockerd, not docker: a docker client alone (e.g. in /usr/local/bin) runs nothing.
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
# The real kubelet node (e2e/realnode): runc for containerd's shim, the CNI plugins (bridge,
# host-local, loopback), nftables and conntrack for kube-proxy, iproute2 for the node's bridge.
# containerd is built (e2e/realnode/build.sh); Debian's 1.6 only for E2E_REALNODE_CONTAINERD=system.
command -v runc >/dev/null || missing+=(runc)
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] \
  || missing+=(containernetworking-plugins)
command -v nft >/dev/null || missing+=(nftables)
command -v conntrack >/dev/null || missing+=(conntrack)
command -v ip >/dev/null || missing+=(iproute2)
if [ "${E2E_REALNODE_CONTAINERD:-built}" = system ]; then
  command -v containerd >/dev/null || missing+=(containerd)
fi
sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo

install() {
  echo "installing with apt: $*"
  # The packages would start Prometheus (on every interface) and dockerd as system daemons:
  # forbid that while installing (the world starts its own, on loopback or a unix socket only),
  # and put back whatever policy was there.
  local policy=/usr/sbin/policy-rc.d saved=""
  if [ -e "$policy" ]; then saved=$(mktemp) && $sudo cp "$policy" "$saved"; fi
  # shellcheck disable=SC2317  # called by the trap
  restore() { if [ -n "$saved" ]; then $sudo cp "$saved" "$policy"; rm -f "$saved"; else $sudo rm -f "$policy"; fi; }
  trap restore EXIT
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod +x "$policy"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y --no-install-recommends "$@" \
    || { $sudo apt-get update -q && $sudo apt-get install -y --no-install-recommends "$@"; }
  restore
  trap - EXIT
}

if [ ${#missing[@]} -eq 0 ]; then echo "system packages present"; else install "${missing[@]}"; fi
bash "$here/dockerd.sh" up
