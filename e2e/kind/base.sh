#!/usr/bin/env bash
# The root filesystem of the kind node image's base: Debian bookworm (debootstrap minbase) with
# the packages kind's images/base/Dockerfile installs, less those for storage drivers (nfs,
# iscsi, e2fsprogs: the suite mounts no volumes), plus runc and the CNI plugins (bridge,
# host-local, loopback, portmap), which kind builds from source and Debian ships.
#
#   e2e/kind/base.sh TARBALL    # writes it as a gzipped tarball
#
# e2e/kind/node-image.sh keys the tarball by this file's content hash.
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin
out=$1
sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo

mirror=${DEBIAN_MIRROR:-$(cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
  | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -1 | tr -d ' ' || true)}
mirror=${mirror:-http://deb.debian.org/debian}

packages=systemd,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz
packages=$packages,fuse-overlayfs,bash,ca-certificates,curl,jq,procps,runc,containernetworking-plugins

root=$(mktemp -d)
trap '$sudo rm -rf "$root"' EXIT
$sudo debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" \
  > "$out.log" 2>&1 || { tail -20 "$out.log" >&2; exit 1; }
$sudo rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/log/* \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
$sudo tar --numeric-owner -C "$root" -c . | gzip -1 > "$out.tmp"
mv "$out.tmp" "$out"
